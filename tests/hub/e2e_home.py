"""A whole simulated home around the REAL hub process, for the end-to-end tests and the bench.

    home = Home(broker, tmp_path)     the air (tests/hub/e2e_air.py), the platform consumer
                                      (hil/sim/platform.py), hub.toml + secrets.toml
                                      (hil/sim/hubconf.py) and the hub as its own process
                                      (hil/sim/hubproc.py), the air's private bus as its BlueZ
    home.dev[0xA1B2].send()           a button press: an SOS on the air, retried until HELP
    home.platform.wait_event(ref)     the county platform's view, deduplicated on `ref`
    home.hub.kill9(); home.hub.start().wait_ready()

What is the e2e tests' own: the devices they assume (device_spec's defaults, default_devices)
and a hub config that makes the radio quick to test (active scanning, 5 s ack connects).
"""

from __future__ import annotations

import os
from pathlib import Path

from e2e_air import HUB, Air

from hil.sim.broker import Broker
from hil.sim.hubconf import DeviceSpec, write_hub_config
from hil.sim.hubproc import HubProcess
from hil.sim.platform import Platform


def device_spec(dev_id: int, kind: str = "button", room: str = "bedroom",
                location: str = "by the bed") -> DeviceSpec:
    """A device of the test home, with a fresh random key."""
    return DeviceSpec(dev_id, os.urandom(16), kind, room, location)


def default_devices() -> list[DeviceSpec]:
    return [device_spec(0xA1B2),
            device_spec(0xC3D4, kind="pir", room="hall", location="ceiling"),
            device_spec(0xE5F6, kind="bracelet", room="", location="left wrist")]


class Home:
    """Air + platform + hub process; close() ends them (the hub with SIGTERM) and prints the
    hub's log (pytest shows it for a failed test)."""

    def __init__(self, broker: Broker, workdir: Path, devices: list[DeviceSpec] | None = None,
                 *, start: bool = True, platform: bool = True, **air_options):
        self.broker = broker
        self.specs = devices if devices is not None else default_devices()
        self.air = Air(**air_options)
        self.platform = (Platform(broker.host, broker.port, county=broker.county,
                                  tls=broker.tls("platform")).wait_connected()
                         if platform else None)
        config = write_hub_config(
            workdir, HUB, broker.county, self.specs, household="hh-e2e",
            url=f"mqtts://{broker.host}:{broker.port}", tls=broker.tls(HUB),
            radio={"scanning": "active", "ack_connect_timeout_s": 5})
        self.hub = HubProcess(workdir, config, bus_address=self.air.bus.address)
        self.dev = {s.id: self.air.device(s.id, s.key) for s in self.specs}
        if start:
            self.start_hub()

    def start_hub(self, online: bool = True, timeout: float = 15.0) -> None:
        """Start the hub process; wait until it scans and, with `online`, until the platform
        saw its state "connected" (published after its request subscription: requests sent
        from then on reach it)."""
        n = len(self.platform.states) if self.platform else 0
        self.hub.start().wait_ready(timeout)
        if online and self.platform:
            self.platform.wait_state(lambda s: s["reason"] == "connected", timeout,
                                     "the hub online at the platform", after=n)

    def close(self) -> None:
        try:
            code = self.hub.stop()
            print(f"hub exit code {code}; log tail:\n{self.hub.log_tail()}")
        finally:
            if self.platform:
                self.platform.close()
            self.air.close()
