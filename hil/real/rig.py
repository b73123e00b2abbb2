"""The real backend: the scenario API (hil/rig.py) on a Raspberry Pi rig with one DUT.

    rig = RealRig.from_config("hil/rig.toml")   # RigUnavailable(reason) if anything is missing
    s = rig.session(("button",))                # Unsupported if the DUT is another kind

A session starts a local mosquitto (mutual TLS, ACL: hil/sim/broker.py) as the platform, the
real hub (`python -m hub run`) on the Pi's adapter with the DUT as its one device, the
platform consumer, the DUT's console reader and GPIO lines, and power-cycles the DUT so it
starts fresh. Presses, PIR pulses and power go through GPIO; patterns and sleep come from the
console (the DUT is provisioned with "log": true and runs hil/real/device/rig_main.py); a
bracelet's IMU samples are streamed over the console from hil/sim/imu.Wrist, the same
signal the sim uses. hil/real/rig.example.toml shows the config; docs/hil.md the wiring.

Tested offline (no rig in CI; tests/hil/test_real_rig_{config,console,device}.py): the config
checks, a session's refusals and its clean-up when the hardware is missing (mosquitto started
for real), the console reader through pyserial on pseudo-terminals (unplug and replug too),
the line formats both ways (imu_line -> device/rig_hooks.py under MicroPython; the hooks' and
the firmware's prints -> the console), the device files with mpy-cross and mypy. NOT run here:
gpio.py on a GPIO chip (gpiod 2.x), the hub on a Bluetooth adapter, a real DUT: a session end
to end (docs/hil.md, "What the rig has not proven yet").
"""

from __future__ import annotations

import glob
import itertools
import os
import re
import shutil
import tempfile
import threading
import time
import tomllib
from pathlib import Path

from hil.rig import Session, Unsupported
from hil.sim.broker import Broker, mosquitto_path
from hil.sim.hubconf import DeviceSpec, write_hub_config
from hil.sim.hubproc import HubProcess
from hil.sim.imu import Wrist
from hil.sim.platform import Platform

HUB_ID, COUNTY = "hub-rig", "rig-county"
KINDS = ("button", "pir", "bracelet")
_HEX8, _HEX32 = re.compile(r"[0-9a-fA-F]{8}"), re.compile(r"[0-9a-fA-F]{32}")
# The config's tables: key -> (type, required); hil/real/rig.example.toml shows each one.
_SCHEMA: dict[str, dict[str, tuple[type, bool]]] = {
    "": {"name": (str, False), "dut": (dict, True), "gpio": (dict, False), "hub": (dict, False)},
    "dut": {"kind": (str, True), "device_id": (str, True), "key": (str, True),
            "serial": (str, True), "baud": (int, False), "board": (str, False),
            "room": (str, False), "location": (str, False), "heartbeat_min": (int, False),
            "config": (dict, False)},
    "gpio": {"chip": (str, False), **{f"{line}{suffix}": (typ, False)
                                      for line in ("button", "pir", "power")
                                      for suffix, typ in (("", int), ("_active_high", bool))}},
    "hub": {"adapter": (str, False)},
}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "a table"}


class RigUnavailable(Exception):
    """The rig's hardware or config is missing: the real backend is skipped with this."""


def _need(ok: bool, why: str) -> None:
    if not ok:
        raise RigUnavailable(why)


def check_config(cfg: dict, path: Path) -> None:
    """RigUnavailable naming the file and the key (`hil/rig.toml: dut.key: ...`) for a
    missing, unknown or mistyped key, before any hardware is looked at."""
    for table, keys in _SCHEMA.items():
        t = cfg if not table else cfg.get(table, {})
        where = f"{table}." if table else ""
        for k, v in t.items():
            _need(k in keys, f"{path}: {where}{k}: unknown key (a typo?); "
                             f"known: {', '.join(keys)}")
            typ = keys[k][0]
            _need(isinstance(v, typ) and (typ is bool or not isinstance(v, bool)),
                  f"{path}: {where}{k}: {v!r} is not {_TYPE_NAMES[typ]}")
        for k, (_typ, required) in keys.items():
            _need(k in t or not required, f"{path}: {where}{k}: missing (required)")
    dut, gpio = cfg["dut"], cfg.get("gpio", {})
    _need(dut["kind"] in KINDS, f"{path}: dut.kind: {dut['kind']!r} is not {' | '.join(KINDS)}")
    _need(bool(_HEX8.fullmatch(dut["device_id"])) and int(dut["device_id"], 16) != 0,
          f"{path}: dut.device_id: {dut['device_id']!r} is not 8 hex digits (not all zero)")
    _need(bool(_HEX32.fullmatch(dut["key"])), f"{path}: dut.key: not 32 hex digits (128 bits)")
    _need(bool(dut["serial"]), f"{path}: dut.serial: empty (the DUT's console, /dev/ttyACM0)")
    for k in ("baud", "heartbeat_min"):
        _need(dut.get(k, 1) > 0, f"{path}: dut.{k}: {dut.get(k)!r} must be > 0")
    for line in ("button", "pir", "power"):
        _need(gpio.get(line, 0) >= 0,
              f"{path}: gpio.{line}: {gpio.get(line)!r} is not a line offset (>= 0)")


def imu_line(samples) -> str:
    """The console line device/rig_hooks.py queues as IMU samples: `I x,y,z;x,y,z` (milli-g)."""
    return "I " + ";".join(f"{int(x)},{int(y)},{int(z)}" for x, y, z in samples)


class RealRig:
    backend = "real"

    def __init__(self, cfg: dict, path: Path):
        self.cfg, self.path = cfg, path
        self.name = cfg.get("name", "rig")
        self.workdir = Path(tempfile.mkdtemp(prefix="carebeacon-rig-"))
        self._n = itertools.count(1)

    @classmethod
    def from_config(cls, path: str | Path) -> RealRig:
        p = Path(path)
        _need(p.is_file(), f"no rig config at {p} (copy hil/real/rig.example.toml; docs/hil.md)")
        try:
            cfg = tomllib.loads(p.read_bytes().decode())
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise RigUnavailable(f"{p}: not valid TOML: {e}") from None
        check_config(cfg, p)
        # The hardware, in the order a bench is set up. The DUT's port may be any tty (a
        # /dev/serial/by-id/ link, the Pi's UART): the USB ones are listed only as a hint.
        port = cfg["dut"]["serial"]
        ports = sorted(glob.glob("/dev/ttyUSB*") + glob.glob("/dev/ttyACM*"))
        _need(os.path.exists(port), f"{p}: dut.serial: the DUT's port {port} is not there "
                                    f"(USB serial ports here: {', '.join(ports) or 'none'}; "
                                    "is the DUT plugged?)")
        from hil.real.gpio import require_gpiod

        require_gpiod()
        chip = cfg.get("gpio", {}).get("chip", "/dev/gpiochip0")
        _need(os.path.exists(chip), f"{p}: gpio.chip: no GPIO chip {chip}")
        adapter = cfg.get("hub", {}).get("adapter", "hci0")
        _need(os.path.exists(f"/sys/class/bluetooth/{adapter}"),
              f"{p}: hub.adapter: no Bluetooth adapter {adapter}")
        try:
            mosquitto_path()
        except RuntimeError as e:
            raise RigUnavailable(str(e)) from None
        return cls(cfg, p)

    def session(self, kinds=("button",), clock: str = "real", *, device_cfg: dict | None = None,
                inactivity: dict | None = None, **_sim_only) -> RealSession:
        kind = self.cfg["dut"]["kind"]
        if kind not in {k.rstrip("0123456789") for k in kinds}:
            raise Unsupported(f"the rig's DUT is a {kind}; this scenario needs {', '.join(kinds)}")
        d = self.workdir / f"home-{next(self._n)}"
        d.mkdir(parents=True)
        return RealSession(self, d, kind, device_cfg=(device_cfg or {}).get(kind, {}),
                           inactivity=inactivity)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class RealSession(Session):
    backend, clock = "real", "real"

    def __init__(self, rig: RealRig, workdir: Path, kind: str, *, device_cfg: dict,
                 inactivity: dict | None):
        super().__init__()
        cfg, dut = rig.cfg, rig.cfg["dut"]
        provisioned = dut.get("config", {})
        for k, v in device_cfg.items():  # firmware settings cannot change per scenario...
            if k != "heartbeat_min" and provisioned.get(k) != v:  # ...the hub sends this one
                raise Unsupported(f"the DUT must be provisioned with {k} = {v!r} "
                                  f"(has {provisioned.get(k)!r}); docs/hil.md")
        self.kinds = (kind,)
        self.kind = kind
        if "power" not in cfg.get("gpio", {}):
            raise Unsupported("the rig config has no [gpio] power line: the DUT cannot be reset")
        self.spec = DeviceSpec(int(dut["device_id"], 16), bytes.fromhex(dut["key"]), kind,
                               dut.get("room", "rig bench"), dut.get("location", "rig"),
                               device_cfg.get("heartbeat_min", dut.get("heartbeat_min", 60)))
        self.t0 = time.monotonic()
        self._tx = itertools.count(1)
        self._imu_stop = False
        try:
            self._start(workdir, cfg, dut, kind, inactivity)
        except BaseException:
            self.close()
            raise

    def _start(self, workdir: Path, cfg: dict, dut: dict, kind: str, inactivity) -> None:
        self.broker = Broker(county=COUNTY, hubs=[HUB_ID], platforms=["platform"],
                             new_session=True)
        self.broker.start()
        config = write_hub_config(
            workdir / "hub", HUB_ID, COUNTY, [self.spec],
            url=f"mqtts://{self.broker.host}:{self.broker.port}", tls=self.broker.tls(HUB_ID),
            inactivity=inactivity, radio={"adapter": cfg.get("hub", {}).get("adapter", "hci0")})
        self.hub = HubProcess(workdir / "hub", config)
        self.platform = Platform(self.broker.host, self.broker.port, county=COUNTY,
                                 tls=self.broker.tls("platform")).wait_connected()
        from hil.real.console import Console
        from hil.real.gpio import Lines

        g = cfg.get("gpio", {})
        lines = {n: (int(g[n]), bool(g.get(f"{n}_active_high", True)))
                 for n in ("button", "pir", "power") if n in g}
        self.lines = Lines(g.get("chip", "/dev/gpiochip0"), lines)
        self.console = Console(dut["serial"], int(dut.get("baud", 115200))).start()
        self.wrist = Wrist() if kind == "bracelet" else None
        self.hub.start()
        self.hub.wait_ready(30)
        self.power(kind, False)
        time.sleep(1)
        self.power(kind, True)
        if self.wrist is not None:
            threading.Thread(target=self._stream_imu, name="imu", daemon=True).start()

    # -- time and the platform ---------------------------------------------------------------
    def now(self) -> int:
        return int((time.monotonic() - self.t0) * 1000)

    def _advance(self, ms: int) -> None:
        time.sleep(ms / 1000)
        if not self.hub.alive and not getattr(self, "_hub_killed", False):
            raise RuntimeError(f"the hub exited:\n{self.hub.log_tail()}")

    def _events(self):
        return {r: (e, (t - self.t0) * 1000) for r, e, t in self.platform.snapshot()}

    @property
    def duplicates(self) -> int:
        return self.platform.duplicates

    def availability(self, kind):
        return self.platform.availability.get(self.spec.hex)

    def device_hex(self, kind):
        self.need(kind)
        return self.spec.hex

    # -- the DUT -------------------------------------------------------------------------------
    def _line(self, kind: str) -> str:
        self.need(kind)
        line = "pir" if kind == "pir" else "button"
        if line not in self.lines.offsets:
            raise Unsupported(f"the rig has no GPIO line for the DUT's {line}")
        return line

    def press(self, kind="button", hold_ms=150):
        self.lines.pulse(self._line(kind), hold_ms)
        return self.now()

    def double_press(self, kind="button"):
        line, t = self._line(kind), self.now()
        self.lines.pulse(line, 120)
        self.lines.pulse(line, 120, delay_ms=370)
        return t

    def triple_press(self, kind="button"):
        line, t = self._line(kind), self.now()
        for k in range(3):
            self.lines.pulse(line, 150, delay_ms=k * 950)
        return t

    def hold(self, kind="button", ms=3500):
        return self.press(kind, ms)

    def motion(self, kind="pir"):
        self.lines.pulse(self._line(kind), 2000)
        return self.now()

    def fall(self, kind="bracelet"):
        self.need(kind)
        t = self.now() + 500
        self.wrist.fall(t)
        return t

    def power(self, kind, on):
        self.need(kind)
        if "power" not in self.lines.offsets:
            raise Unsupported("the rig has no power switch line for the DUT")
        self.lines.set("power", on)

    def asleep(self, kind):
        self.need(kind)
        return self.console.asleep()

    def patterns(self, kind, since=0):
        self.need(kind)
        return self.console.patterns(self.t0 + since / 1000)

    def _stream_imu(self) -> None:
        """50 samples a second from the Wrist model, 5 per line, to device/rig_hooks.py."""
        start, n = time.monotonic(), 0
        t_ms = self.now()
        while not self._imu_stop:
            batch = [self.wrist(t_ms + 20 * (n + i)) for i in range(5)]
            self.console.write_line(imu_line(batch))
            n += 5
            time.sleep(max(0.0, start + n * 0.02 - time.monotonic()))

    # -- hub and platform --------------------------------------------------------------------
    def operator_ack(self, ref, operator="op-rig"):
        self.platform.request("ack", {"ref": ref, "operator": operator}, hub=HUB_ID)

    def uplink(self, up):
        (self.broker.start if up else self.broker.stop)()

    def kill_hub(self):
        self._hub_killed = True
        self.hub.kill9()

    def start_hub(self):
        self.hub.start()
        self.hub.wait_ready(30)
        self._hub_killed = False

    def inactivity(self):
        st = self.hub.status() or {}
        return (st.get("inactivity") or {}).get("state")

    def close(self):
        self._imu_stop = True
        for name, method in (("hub", "stop"), ("platform", "close"), ("console", "close"),
                             ("lines", "close"), ("broker", "close")):
            part = getattr(self, name, None)
            if part is not None:
                try:
                    getattr(part, method)()
                except Exception:
                    pass
