"""The sim backend of the rig: scenarios run on the simulated home (hil/rig.py).

    rig = SimRig(run_dir)
    s = rig.session(("button",), clock="virtual", device_cfg={"button": {"sos_hold_min": 1}})
    s.press(); s.wait_event("manual_alarm", "button"); s.close()

clock="virtual": `VirtualSession`, the hub's core in-process on the virtual clock (weeks in
seconds; hub processing time is measured, hil/sim/hub_sink.py). clock="real":
`LiveSession`, the real hub process, the BlueZ double and mosquitto (hil/sim/live.py).
"""

from __future__ import annotations

import calendar
import itertools
import shutil
import time
from pathlib import Path

from hil.rig import Session
from hil.sim.home import SimHome
from hil.sim.hub_sink import VirtualHub, VirtualPlatform
from hil.sim.hubconf import write_hub_config
from hil.sim.live import LiveHome
from hil.sim.medium import Medium, Radio

HUB_ID, COUNTY = "hub-sim", "sim-county"
# The standard home: the button by the bed, a PIR in the living room, the bracelet on the
# resident (who is in the living room).
DEVICES = {
    "button": dict(device_id=0x0000A1B2, room="bedroom", location="bedside, left of the bed"),
    "pir": dict(device_id=0x0000C3D4, room="living room", location="corner above the door"),
    "bracelet": dict(device_id=0x0000E5F6, room="living room", hub_room="",
                     location="worn on the left wrist"),
    # more buttons, for scenarios that press several at once
    "button2": dict(device_id=0x0000A1B3, room="bathroom", location="by the toilet"),
    "button3": dict(device_id=0x0000A1B4, room="kitchen", location="next to the cooker"),
    "button4": dict(device_id=0x0000A1B5, room="living room", location="armchair side table"),
}
# Monday 2 March 2026, 07:00 local time (UTC+1): when every simulated day starts.
EPOCH_MS = calendar.timegm((2026, 3, 2, 6, 0, 0)) * 1000
UTC_OFFSET_S = 3600


def furnish(home: SimHome, names, device_cfg: dict | None = None, power_on: bool = True) -> None:
    """Devices by name ("button", "button2", "pir", "bracelet"); the kind is the name less
    its number; device_cfg[name] overrides the firmware config (and heartbeat_min, room)."""
    for name in names:
        home.add(name, name.rstrip("0123456789"), power_on=power_on,
                 **{**DEVICES[name], **(device_cfg or {}).get(name, {})})


class _SimSession(Session):
    backend = "sim"
    home: SimHome

    def device_hex(self, kind: str) -> str:
        return self.home.devs[kind].spec.hex

    def _dev(self, kind: str):
        self.need(kind)
        return self.home.devs[kind]


class VirtualSession(_SimSession):
    clock = "virtual"

    def __init__(self, workdir: Path, kinds, *, radio: Radio | None = None,
                 inactivity: dict | None = None, device_cfg: dict | None = None,
                 tick_ms: int = 10_000, hub_ms: float = 15.0, broker_ms: float = 2.0,
                 seed: int = 1):
        super().__init__()
        self.kinds = tuple(kinds)
        self.home = SimHome(Medium(radio or Radio(seed=seed)), seed=seed)
        furnish(self.home, kinds, device_cfg, power_on=False)
        m = self.home.medium
        self.platform = VirtualPlatform(m, broker_ms)
        cfg = write_hub_config(workdir / "hub", HUB_ID, COUNTY, self.home.specs(),
                               url="mqtt://localhost:1883", inactivity=inactivity)
        self.hub = VirtualHub(m, cfg, self.platform, epoch_ms=EPOCH_MS, utc_offset_s=UTC_OFFSET_S,
                              tick_ms=tick_ms, hub_ms=hub_ms)
        m.sink = self.hub
        self.hub.start()
        for k in kinds:
            self.home.power_on(k)
        self._tx = itertools.count(1)
        self._compacted = 0

    def now(self) -> int:
        return self.home.now

    def wall_ms(self, t: float) -> float:
        return EPOCH_MS + t

    def _advance(self, ms: int) -> None:
        self.home.world.run_for(ms)
        if self.home.now - self._compacted > 60_000:  # keep input scripts short (long runs)
            self.home.compact()
            self._compacted = self.home.now

    def _events(self):
        p = self.platform
        return {r: (e, p.arrived_ms[r]) for r, e in p.events.items()}

    def _arrived_since(self, since):
        return self.platform.since(since)

    @property
    def duplicates(self) -> int:
        return self.platform.duplicates

    def availability(self, kind: str) -> bool | None:
        return self.platform.availability.get(self.device_hex(kind))

    def press(self, kind="button", hold_ms=150):
        return self.home.press(self._dev(kind).name, hold_ms)

    def double_press(self, kind="button"):
        return self.home.double_press(self._dev(kind).name)

    def triple_press(self, kind="button"):
        return self.home.triple_press(self._dev(kind).name)

    def hold(self, kind="button", ms=3500):
        return self.home.hold(self._dev(kind).name, ms)

    def motion(self, kind="pir"):
        return self.home.motion(self._dev(kind).name)

    def fall(self, kind="bracelet"):
        return self.home.fall(self._dev(kind).name)

    def power(self, kind, on):
        (self.home.power_on if on else self.home.power_off)(self._dev(kind).name)

    def asleep(self, kind):
        return self._dev(kind).dev.state == "deep"

    def patterns(self, kind, since=0):
        return [n for _t, n in self.home.patterns(self._dev(kind).name, since)]

    def operator_ack(self, ref, operator="op-rig"):
        self.platform.request("ack", {"v": 1, "transaction": f"tx-{next(self._tx)}", "ref": ref,
                                      "operator": operator})

    def uplink(self, up):
        self.platform.set_up(up)

    def kill_hub(self):
        self.hub.kill()

    def start_hub(self):
        self.hub.start()

    def inactivity(self):
        return self.hub.inactivity_state()

    def out_of_range(self, kind: str, gone: bool) -> None:
        d = self._dev(kind)
        self.home.move(d.name, "outside" if gone else DEVICES[kind]["room"])

    def close(self):
        self.hub.stop()


class LiveSession(_SimSession):
    clock = "real"

    def __init__(self, workdir: Path, kinds, *, radio: Radio | None = None,
                 inactivity: dict | None = None, device_cfg: dict | None = None, seed: int = 1):
        super().__init__()
        self.kinds = tuple(kinds)
        self.live = LiveHome(workdir, radio=radio, hub_id=HUB_ID, county=COUNTY,
                             inactivity=inactivity, seed=seed)
        self.home = self.live.home
        furnish(self.home, kinds, device_cfg, power_on=False)
        self.live.start()
        self.live.power_on_all()

    def now(self) -> int:
        return self.live.now_ms()

    def _advance(self, ms: int) -> None:
        time.sleep(ms / 1000)
        errors = self.live.runner.errors
        if errors:
            raise RuntimeError("the simulated home stopped") from errors[0]

    def _events(self):
        t0 = self.live.runner.t0
        return {r: (e, (t - t0) * 1000) for r, e, t in self.live.platform.snapshot()}

    @property
    def duplicates(self) -> int:
        return self.live.platform.duplicates

    def availability(self, kind):
        return self.live.platform.availability.get(self.device_hex(kind))

    def _do(self, fn):
        return self.live.call(fn)

    def press(self, kind="button", hold_ms=150):
        return self._do(lambda: self.home.press(self._dev(kind).name, hold_ms))

    def double_press(self, kind="button"):
        return self._do(lambda: self.home.double_press(self._dev(kind).name))

    def triple_press(self, kind="button"):
        return self._do(lambda: self.home.triple_press(self._dev(kind).name))

    def hold(self, kind="button", ms=3500):
        return self._do(lambda: self.home.hold(self._dev(kind).name, ms))

    def motion(self, kind="pir"):
        return self._do(lambda: self.home.motion(self._dev(kind).name))

    def fall(self, kind="bracelet"):
        return self._do(lambda: self.home.fall(self._dev(kind).name))

    def power(self, kind, on):
        name = self._dev(kind).name
        self._do(lambda: (self.home.power_on if on else self.home.power_off)(name))

    def asleep(self, kind):
        return self._do(lambda: self._dev(kind).dev.state == "deep")

    def patterns(self, kind, since=0):
        return self._do(lambda: [n for _t, n in self.home.patterns(self._dev(kind).name, since)])

    def operator_ack(self, ref, operator="op-rig"):
        self.live.platform.request("ack", {"ref": ref, "operator": operator}, hub=HUB_ID)

    def uplink(self, up):
        (self.live.broker.start if up else self.live.broker.stop)()

    def kill_hub(self):
        self.live.hub.kill9()

    def start_hub(self):
        self.live.hub.start()
        self.live.hub.wait_ready()

    def inactivity(self):
        st = self.live.hub.status() or {}
        return (st.get("inactivity") or {}).get("state")

    def close(self):
        self.live.close()


class SimRig:
    """The `rig` fixture of the sim backend: one fresh home per session()."""

    backend = "sim"
    name = "sim"

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self._n = itertools.count(1)

    def session(self, kinds=("button",), clock: str = "virtual", **kw) -> Session:
        d = self.workdir / f"home-{next(self._n)}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        if clock == "virtual":
            return VirtualSession(d, kinds, **kw)
        kw.pop("tick_ms", None)
        kw.pop("hub_ms", None)
        return LiveSession(d, kinds, **kw)
