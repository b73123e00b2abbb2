"""The simulated home in real time around the REAL hub process (the demo, real-time scenarios).

    live = LiveHome(workdir)                      # nothing started yet
    live.home.add("button", "button", room="bedroom", device_id=0xA1B2, power_on=False)
    live.start(progress=print)                    # broker, bus, BlueZ double, hub, platform,
                                                  # then the devices are switched on
    live.call(lambda: live.home.press("button"))  # anything touching the home: on its loop
    live.close()                                  # everything it started is stopped

Pieces, each real but the radio: mosquitto with mutual TLS and the ACL as the county
platform (hil/sim/broker.py); a private dbus-daemon with the BlueZ double (hil/sim/bluez.py);
`python -m hub run` as its own process (hil/sim/hubproc.py) whose bleak talks to the double;
the platform consumer (hil/sim/platform.py); the devices' firmware on the simulated air
(hil/sim/medium.py) driven on the wall clock (hil/sim/bluez_sink.py). The home's loop runs
in a thread ("air"); everything that touches the home goes through `call`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
from pathlib import Path

from hil.sim.bluez_sink import HomeBlueZ, RealTime
from hil.sim.broker import Broker
from hil.sim.dbus_session import PrivateSystemBus
from hil.sim.home import SimHome
from hil.sim.hubconf import write_hub_config
from hil.sim.hubproc import HubProcess
from hil.sim.medium import Medium, Radio
from hil.sim.platform import Platform


class LiveHome:
    def __init__(self, workdir: Path | str | None = None, *, radio: Radio | None = None,
                 hub_id: str = "hub-sim", county: str = "sim-county", household: str = "hh-sim",
                 inactivity: dict | None = None, on_event=None, seed: int = 1):
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="carebeacon-home-"))
        self.hub_id, self.county, self.household = hub_id, county, household
        self.inactivity = inactivity or {}
        self.on_event = on_event
        self.home = SimHome(Medium(radio or Radio(seed=seed)), seed=seed)
        self.broker: Broker | None = None
        self.bus: PrivateSystemBus | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.double: HomeBlueZ | None = None
        self.runner: RealTime | None = None
        self.hub: HubProcess | None = None
        self.platform: Platform | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Future | None = None

    # -- bring-up ------------------------------------------------------------------------------
    def start(self, progress=lambda text: None, hub_ready_s: float = 30.0) -> LiveHome:
        try:
            self._start(progress, hub_ready_s)
        except BaseException:
            self.close()
            raise
        return self

    def _start(self, say, hub_ready_s: float) -> None:
        say("county platform: mosquitto with mutual TLS and an ACL")
        self.broker = Broker(county=self.county, hubs=[self.hub_id], platforms=["platform"],
                             new_session=True)
        self.broker.start()
        say(f"  listening on mqtts://{self.broker.host}:{self.broker.port}")
        say("radio: a private D-Bus system bus with the BlueZ double (no BLE adapter needed)")
        self.bus = PrivateSystemBus()
        self.bus.start()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="air", daemon=True)
        self._thread.start()
        self.double = HomeBlueZ(self.bus.address)
        self._await(self.double.start())
        self.platform = Platform(self.broker.host, self.broker.port, county=self.county,
                                 tls=self.broker.tls("platform"), on_event=self.on_event)
        self.platform.wait_connected()
        hubdir = self.dir / "hub"
        config = write_hub_config(
            hubdir, self.hub_id, self.county, self.home.specs(),
            url=f"mqtts://{self.broker.host}:{self.broker.port}",
            tls=self.broker.tls(self.hub_id), household=self.household,
            inactivity=self.inactivity, radio={"ack_connect_timeout_s": 10})
        say("hub: python -m hub run (its own process; bleak on the double)")
        self.hub = HubProcess(hubdir, config, bus_address=self.bus.address)
        self.hub.start()
        self.hub.wait_ready(hub_ready_s)
        say(f"  scanning (pid {self.hub.pid}, log {self.hub.log_path})")

        async def begin():
            self.runner = RealTime(self.home, self.double)
            self._task = asyncio.ensure_future(self.runner.run())
        self._await(begin())

    def power_on_all(self) -> None:
        def on():
            for name, s in self.home.devs.items():
                if not s.powered:
                    self.home.power_on(name)
        self.call(on)

    # -- using it --------------------------------------------------------------------------------
    def _await(self, coro, timeout: float = 20.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, timeout: float = 10.0):
        """Run fn() on the home's loop, with the world brought up to now first."""
        async def go():
            if self.runner is not None:
                if self.runner.errors:
                    raise RuntimeError("the simulated home stopped") from self.runner.errors[0]
                self.runner.sync()
            out = fn()
            if self.runner is not None:
                self.runner.kick()
            return out
        return self._await(go(), timeout)

    def now_ms(self) -> int:
        return self.runner.now_ms() if self.runner else 0

    def mono(self, t_ms: float) -> float:
        return self.runner.mono(t_ms)

    def register_new_devices(self) -> None:
        def reg():
            for s in self.home.devs.values():
                self.runner.register(s.address)
        self.call(reg)

    # -- tear-down -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop everything this started, in order: hub (SIGTERM, then SIGKILL), platform client,
        the air, the bus, the broker; remove the temp dirs."""
        steps = [
            lambda: self.hub and self.hub.stop(),
            lambda: self.platform and self.platform.close(),
            lambda: self.runner and self.loop.call_soon_threadsafe(self.runner.stop),
            lambda: self.double and self._await(self.double.stop(), 5),
            lambda: self.loop and self.loop.call_soon_threadsafe(self.loop.stop),
            lambda: self._thread and self._thread.join(5),
            lambda: self.bus and self.bus.stop(),
            lambda: self.broker and self.broker.close(),
        ]
        for step in steps:
            with contextlib.suppress(Exception):
                step()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
