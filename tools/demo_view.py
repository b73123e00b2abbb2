"""What the demo prints: the elder-side patterns, platform events, frames on the air, status."""

from __future__ import annotations

import contextlib
import threading
import time

from hub import contract
from shared import frame as F

ALARM_PRIORITY = contract.EVENT_TYPES["manual_alarm"][3]  # an elder's call (docs/mqtt.md)

# firmware/feedback.py patterns as the elder sees and hears them (docs/device-behaviour.md)
PATTERNS = {
    "SENDING": "double blink + short beep every second: calling for help...",
    "NOT_DELIVERED": "three long flashes, three long LOW beeps: not delivered yet",
    "RECEIVED": "light on ~1 s, two rising beeps: the hub has it",
    "CALLING": "light on ~2 s, three rising beeps: help is being called",
    "HELP": "light on ~7 s, slow three-note chime twice: HELP IS ON THE WAY",
    "CANCELLED": "light off, a falling pair of tones: cancelled",
    "TEST_OK": "two blinks, two quick high beeps: test recorded",
    "FALL_WINDOW": "pulse + beep every second: a fall? hold the button 3 s if you are fine",
    "LOW_BATTERY": "three quick flashes and chirps: battery low",
    "FAULT": "light on 1 s, one long low tone: fault",
}
ROUTINE = {F.T_ACTIVITY: "activity summary", F.T_MOTION: "first motion after a still spell",
           F.T_WORN: "worn again", F.T_NOT_WORN: "taken off", F.T_HEARTBEAT: "heartbeat",
           F.T_LOW_BATTERY: "battery low"}
KEYS = """keys:  p  press the bedroom button      h  hold it 3 s (cancel)     t  test (3 presses)
       1  bedroom  2  living room  3  kitchen  4  bathroom  5  hall   (walk into a room)
       f  fall (bracelet)   c  hold the bracelet's button 3 s ("I'm fine": cancel)
       o  go out (out of range)   i  come back in
       a  acknowledge the latest alarm, as the operator
       s  status   ?  these keys   q / Ctrl-C  quit"""


class Out:
    """Plain, timestamped lines, from any thread; optionally copied to a log file."""

    def __init__(self, log_path: str | None = None):
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115

    def __call__(self, who: str, text: str) -> None:
        t = time.monotonic() - self.t0
        line = f"{int(t // 60):02d}:{t % 60:06.3f}  {who:<9} {text}"
        self.raw(line)

    def raw(self, line: str) -> None:
        with self.lock:
            with contextlib.suppress(OSError, ValueError):  # the terminal may be gone (SIGHUP)
                print(line, flush=True)
            if self.log:
                self.log.write(line + "\n")

    def close(self) -> None:
        if self.log:
            self.log.close()


def describe_event(ev: dict) -> str:
    dev = ev.get("device") or {}
    where = f"{dev.get('kind')} ({dev.get('room') or dev.get('location') or '-'})" if dev else \
        "the hub"
    kind = ev["type"]
    if ev.get("cause"):
        kind += f" ({ev['cause']})"
    if ev.get("cancels"):
        kind += f", cancels {ev['cancels']}"
    if ev.get("fault"):
        kind += f" {ev['fault'].get('name', ev['fault'].get('code'))}"
    if ev.get("info"):
        kind += f" {ev['info'].get('kind')}"
    # an alarm, or a fault at an alarm's priority (the elder may have called: call them)
    loud = ev["type"] in ("manual_alarm", "automatic_alarm") or (
        ev["type"] == "fault" and ev.get("priority", 9) <= ALARM_PRIORITY)
    text = (ev.get("fault") or {}).get("text")
    said = f": {text}" if text else ""  # what the operator should do about a fault
    return f"{'ALARM ' if loud else ''}{kind} from {where}  {ev['ref']}{said}"


def describe_frame(f) -> str | None:
    """A routine frame worth showing (what the hub hears besides alarms), or None."""
    if f.mtype == F.T_ACTIVITY:
        return f"activity: {f.arg >> 8} in the last {f.arg & 0xFF} min"
    if f.mtype == F.T_MOTION:
        return f"motion after {f.arg} min of stillness"
    if f.mtype in ROUTINE and f.mtype != F.T_HEARTBEAT:
        return ROUTINE[f.mtype]
    return None


def render_status(st: dict | None, devices: dict) -> list[str]:
    if not st:
        return ["hub: no status yet"]
    up, radio = st["uplink"], st["radio"]
    lines = [f"hub {st['hub']}: platform {'connected' if up['connected'] else 'NOT CONNECTED'}, "
             f"radio {radio['status']}, {st['pending']['events']} event(s) pending"]
    if st.get("inactivity"):
        i = st["inactivity"]
        lines.append(f"home: {i['state']}, still {i['still_min']} min (pre-alarm at "
                     f"{i['threshold_min']} min, {i['learned_days']} days learned)")
    for d in st["devices"]:
        name = devices.get(d["id"], d["id"])
        lines.append(f"  {name:<9} {d['availability']:<8} battery "
                     f"{'-' if d['battery'] is None else str(d['battery']) + ' %'}, rssi "
                     f"{d['rssi'] if d['rssi'] is not None else '-'} dBm")
    return lines
