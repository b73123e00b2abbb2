"""The main job of `./run demo`: a simulated home around the REAL hub, on this machine.

It starts, and shows as it goes:
- the county platform: a local mosquitto with its own CA, mutual TLS and the ACL, as in
  production (hil/sim/broker.py), and a platform console subscribed to the hub's events;
- the radio: a private D-Bus system bus with the BlueZ double, where the hub's bleak finds
  an "adapter" (no BLE hardware needed);
- the hub: `python -m hub run`, its own process;
- three devices running the real firmware on the simulated air (hil/sim/): the SOS button
  by the bed, a PIR in the living room, the bracelet on the resident's wrist.

Then the keys (shown on screen) let you press the button, walk from room to room, fall,
go out and come back, cancel, and acknowledge an alarm as the operator: each alarm shows
up on the platform's side with its press -> platform latency, and the devices' light and
sound patterns change as the alarm climbs to "help is on the way". Ctrl-C (or q, or
SIGTERM) stops everything it started and checks that nothing is left running.

    python -m tools.demo [--log FILE] [--seed N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
import termios
import time

from firmware.feedback import NAMES
from hil.sim.home import OUTSIDE
from hil.sim.live import LiveHome
from hil.sim.medium import Radio
from shared import frame as F
from tools.demo_view import KEYS, PATTERNS, Out, describe_event, describe_frame, render_status

HUB_ID, COUNTY = "hub-demo", "demo-county"
ROOMS = {"1": "bedroom", "2": "living room", "3": "kitchen", "4": "bathroom", "5": "hall"}
TIMED = ("manual_alarm", "automatic_alarm", "cancel", "test")


class Demo:
    def __init__(self, out: Out, seed: int = 1):
        self.out = out
        self.live = LiveHome(radio=Radio(seed=seed), hub_id=HUB_ID, county=COUNTY,
                             household="hh-demo", on_event=self._on_event, seed=seed)
        h = self.live.home
        h.add("button", "button", room="bedroom", device_id=0x0000A1B2,
              location="bedside, left of the bed", power_on=False)
        h.add("pir", "pir", room="living room", device_id=0x0000C3D4,
              location="corner above the door", power_on=False, summary_min=1, still_min=5)
        h.add("bracelet", "bracelet", room="living room", hub_room="", device_id=0x0000E5F6,
              location="worn on the left wrist", power_on=False)
        self.names = {s.spec.hex: name for name, s in h.devs.items()}
        self.codecs = {s.spec.id: F.Codec(s.spec.id, s.spec.key) for s in h.devs.values()}
        self.inputs: dict[str, tuple[int, str]] = {}  # device hex -> (world ms, what)
        self.alarms: list[str] = []
        self.acked: set[str] = set()
        self.heard: set[tuple[int, int]] = set()
        self.seen_traces = {name: 0 for name in h.devs}
        self.room = "living room"
        self.next_motion = 0.0
        self.stopping = False
        self.pids: dict[str, int] = {}

    # -- bring-up ------------------------------------------------------------------------------
    def start(self) -> None:
        out = self.out
        out("setup", f"work dir {self.live.dir}")
        self.live.start(progress=lambda text: out("setup", text.strip()))
        self.live.platform.on_response = self._on_response
        self.pids = {"hub": self.live.hub.pid, "mosquitto": self.live.broker.pid,
                     "dbus-daemon": getattr(self.live.bus._proc, "pid", None)}
        out("setup", "started: " + ", ".join(f"{k} pid {v}" for k, v in self.pids.items()))
        self.live.home.medium.observers.append(self._on_air)
        out("setup", "devices on: button by the bed, PIR in the living room, bracelet on "
                     "the resident's wrist (firmware from firmware/apps, simulated boards)")
        self.live.power_on_all()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.stopping:
            online = [n for h, n in self.names.items() if self.live.platform.availability.get(h)]
            if len(online) == len(self.names):
                break
            time.sleep(0.1)
        out("setup", "the hub hears: " + ", ".join(
            f"{n} {'online' if self.live.platform.availability.get(h) else 'NOT YET'}"
            for h, n in self.names.items()) + "  (the PIR ignores motion in its first 60 s)")
        self.out.raw(KEYS)
        out("demo", "ready: press a key")

    # -- what happens ----------------------------------------------------------------------------
    def _on_event(self, ev: dict, arrived: float) -> None:
        text = describe_event(ev)
        dev = (ev.get("device") or {}).get("id")
        if ev["type"] in ("manual_alarm", "automatic_alarm"):
            self.alarms.append(ev["ref"])
        inp = self.inputs.get(dev) if dev else None
        if inp and ev["type"] in TIMED and self.live.runner:
            t, what = inp
            lat = (arrived - self.live.mono(t)) * 1000
            if lat >= 0:
                text += f"   {what} -> platform {lat:.0f} ms"
                if ev["type"] != "automatic_alarm" or ev.get("cause") != "fall_suspected":
                    self.inputs.pop(dev, None)
        self.out("platform", text)

    def _on_response(self, kind: str, msg: dict) -> None:
        self.out("platform", f"hub answers {kind}: result {msg.get('result')} "
                             f"{msg.get('text') or ''}".rstrip())

    def _on_air(self, device, adv, rssi) -> None:
        data = F.frame_from_adv(adv)
        try:
            f = self.codecs[F.peek_device_id(data)].verify(data)
        except (F.FrameError, KeyError, TypeError):
            return
        if (f.device_id, f.seq) in self.heard:
            return
        self.heard.add((f.device_id, f.seq))
        text = describe_frame(f)
        if text:
            self.out("air", f"{device.plat.name} -> hub: {text} (seq {f.seq}, {rssi} dBm)")

    def poll(self) -> None:
        """Elder-side patterns as they start; the resident moving about."""
        for name, s in self.live.home.devs.items():
            traces = s.plat.traces
            i = self.seen_traces[name]
            for _t, what, v in traces[i:]:
                if what == "pattern":
                    pat = NAMES[v]
                    self.out(name, f"light/sound {pat}: {PATTERNS.get(pat, '')}")
            self.seen_traces[name] = len(traces)
        if self.room == "living room" and time.monotonic() >= self.next_motion:
            self.next_motion = time.monotonic() + 20
            self.live.call(lambda: self.live.home.motion("pir"))

    # -- keys --------------------------------------------------------------------------------------
    def key(self, k: str) -> None:
        h, out = self.live.home, self.out
        if k == "p":
            t = self.live.call(lambda: h.press("button"))
            self._mark("button", t, "press")
            out("resident", "presses the button by the bed")
        elif k in ("h", "c"):
            name = "button" if k == "h" else "bracelet"
            t = self.live.call(lambda: h.hold(name, 3500))
            self._mark(name, t + 3000, "3 s hold")
            if name == "bracelet":
                self.live.call(lambda: h.get_up("bracelet", t + 3500))
            what = "the button" if name == "button" else "the bracelet's button"
            out("resident", f"holds {what} for 3.5 s (cancel)")
        elif k == "t":
            t = self.live.call(lambda: h.triple_press("button"))
            self._mark("button", t, "first press")
            out("resident", "presses the button three times, about a second apart (weekly test)")
        elif k in ROOMS:
            self._walk(ROOMS[k])
        elif k == "f":
            t = self.live.call(lambda: h.fall("bracelet"))
            self._mark("bracelet", t, "impact")
            self.room = "floor"
            out("resident", "falls (the bracelet feels the impact, then she lies still)")
        elif k == "o":
            self.live.call(lambda: h.leave("bracelet"))
            self.room = OUTSIDE
            out("resident", "goes out: the bracelet is out of range (the hub counts her away "
                            "after 15 min without it)")
        elif k == "i":
            self._walk("hall")
        elif k == "a":
            self._operator_ack()
        elif k == "s":
            st = self.live.hub.status()
            for line in render_status(st, self.names):
                out("status", line)
        elif k == "?":
            out.raw(KEYS)
        elif k in ("q", "\x03", "\x04"):
            self.stopping = True

    def _mark(self, name: str, t: int, what: str) -> None:
        self.inputs[self.live.home.devs[name].spec.hex] = (t, what)

    def _walk(self, room: str) -> None:
        h = self.live.home

        def move():
            h.move("bracelet", room)
            h.get_up("bracelet")
        self.live.call(move)
        self.room = room
        self.next_motion = 0
        self.out("resident", f"walks into the {room}" + ("" if room != "living room" else
                                                         " (the PIR sees her)"))

    def _operator_ack(self) -> None:
        todo = [r for r in self.alarms if r not in self.acked]
        if not todo:
            self.out("operator", "no alarm to acknowledge")
            return
        ref = todo[-1]
        self.acked.add(ref)
        self.live.platform.request("ack", {"ref": ref, "operator": "demo operator"}, hub=HUB_ID)
        self.out("operator", f"acknowledges {ref}: help is on the way")

    # -- tear-down -----------------------------------------------------------------------------
    def close(self) -> None:
        self.out("demo", "stopping: hub, platform console, devices, D-Bus, mosquitto ...")
        self.live.close()
        left = [f"{k} {p}" for k, p in self.pids.items() if p and _alive(p)]
        if left:
            self.out("demo", "STILL RUNNING: " + ", ".join(left))
        else:
            self.out("demo", "stopped; nothing left running ("
                     + ", ".join(f"{k} {p}" for k, p in self.pids.items() if p) + " gone)")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@contextlib.contextmanager
def keyboard():
    """Keys one at a time without echo; Ctrl-C arrives as a key (the demo stops in order)."""
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd) if os.isatty(fd) else None
    if old is not None:
        new = termios.tcgetattr(fd)
        new[3] &= ~(termios.ICANON | termios.ECHO | termios.ISIG)
        new[6][termios.VMIN], new[6][termios.VTIME] = 1, 0
        termios.tcsetattr(fd, termios.TCSANOW, new)
    try:
        yield fd
    finally:
        if old is not None:
            termios.tcsetattr(fd, termios.TCSANOW, old)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="tools.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--log", help="also write every line to this file")
    ap.add_argument("--seed", type=int, default=1, help="the simulated air's random seed")
    args = ap.parse_args(argv)
    out = Out(args.log)
    out.raw("carebeacon demo: a simulated home around the real hub (Ctrl-C stops it)")
    demo = Demo(out, args.seed)

    def stop(signum, frame):
        demo.stopping = True
        if not demo.live.runner:  # still starting: interrupt it (close() cleans up)
            raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: the terminal went away
        signal.signal(sig, stop)
    code = 0
    try:
        with keyboard() as fd:
            demo.start()
            eof = False
            while not demo.stopping:
                ready = [] if eof else select.select([fd], [], [], 0.1)[0]
                if eof:
                    time.sleep(0.1)
                if ready:
                    data = os.read(fd, 64).decode(errors="ignore")
                    eof = data == ""
                    for k in data:
                        demo.key(k)
                demo.poll()
    except KeyboardInterrupt:
        pass
    except Exception as e:  # say what failed, still stop everything
        out("demo", f"FAILED: {type(e).__name__}: {e}")
        code = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        demo.close()
        out.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
