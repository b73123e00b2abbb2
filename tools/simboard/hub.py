"""The real hub core on the simulator's virtual clock, for installer rehearsals and tests.

    hub = SimHub(hub_config)                         # hub.toml + secrets.toml as provisioned
    dev = hub.add_device(config_path)                # the /config.json provision wrote
    view = hub.view()                                # what `selftest` reads, on virtual time
    hub.run_for(5000)

What is real: hub.config.load (the files provision wrote), HubCore (frame verification
with the key from the secrets file, replay window, durable SQLite Store, acknowledgement
encoding, uplink pump), the daemon's status file (Daemon.write_status), and the device
firmware on the simulator (firmware/hal/sim*.py: the app, its core, retries, feedback).
What stands in: the air (this medium hands each advert to HubCore.on_frame with a fixed
RSSI, and writes the hub's acknowledgements back over a simulated connection
`latency_ms` later), and the platform (a publisher whose broker acknowledges every event
`puback_ms` after it is published, i.e. calls HubCore.on_delivered as the MQTT uplink does
on a PUBACK success).
"""

from __future__ import annotations

import json
from pathlib import Path

from firmware import board as boards, config as configs
from firmware.hal.sim import SimPlatform
from firmware.hal.simworld import World
from hub.config import load
from hub.daemon import Daemon
from hub.pipeline import HubCore
from hub.store import Store
from shared.frame import frame_from_adv
from tools.installer.selftest import HubView

REPO = Path(__file__).resolve().parents[2]
WALL0 = 1_760_000_000_000  # virtual wall clock at t = 0


class VClock:
    def __init__(self, world: World):
        self.world = world

    def mono_ms(self) -> int:
        return 10_000 + self.world.now

    def wall_ms(self) -> int:
        return WALL0 + self.world.now

    def local(self):
        s = (9 * 3600 + self.world.now // 1000) % 86400
        return s, 2, True


class Platform:
    """Stands in for hub.uplink.Uplink: a broker that acknowledges every event."""

    def __init__(self, hub: SimHub, puback_ms: int):
        self.hub, self.puback_ms = hub, puback_ms
        self.connected = True
        self.protocol = 5
        self.problem: str | None = None  # never any: this broker always answers
        self.events: list[tuple[str, dict]] = []

    def publish_event(self, ref, topic, payload):
        if not self.connected:
            return False
        self.events.append((ref, json.loads(payload)))
        self.hub.later(self.puback_ms, lambda: self.hub.core.on_delivered(ref))
        return True

    def publish_availability(self, device_id, online, last_seen=None):
        pass

    def forget_device(self, device_id, confirmed=None):
        if confirmed is not None:  # this broker confirms at once
            self.hub.later(self.puback_ms, lambda: confirmed(device_id))

    def publish_state(self, radio, detail=None):
        pass

    def respond(self, req, result=0, *, text=None, data=None, error=None):
        pass


class SimHub:
    def __init__(self, hub_config: str | Path, *, rssi: int = -63, latency_ms: int = 700,
                 puback_ms: int = 150):
        self.cfg = load(hub_config)
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.world = World(self)
        self.clock = VClock(self.world)
        self.rssi, self.latency_ms = rssi, latency_ms
        self.platform = Platform(self, puback_ms)
        self.store = Store(self.cfg.data_dir / "hub.db", hub_id=self.cfg.hub_id)
        self.core = HubCore(self.cfg, self.store, publisher=self.platform, acker=self._acker,
                            clock=self.clock)
        self.daemon = Daemon(self.cfg, store=self.store)
        self.daemon.core, self.daemon.uplink = self.core, self.platform
        self.core.set_radio_health("scanning")
        self._events: list[tuple[int, int, object]] = []
        self._order = 0
        self._busy: dict[int, int] = {}  # device id -> time its connection slot is free
        self._next_tick = 0
        self.devices: dict[int, object] = {}
        self.acks = 0

    # -- devices ------------------------------------------------------------------------------
    def add_device(self, config_path: str | Path, *, imu=None, power_on: bool = False):
        """The simulated device for a provisioned /config.json (read by the firmware's own
        loader), on its board file; powered on when the test says (the 'reset' step)."""
        from firmware.apps.bracelet import BraceletApp
        from firmware.apps.button import ButtonApp
        from firmware.apps.pir import PirApp

        cfg = configs.load(str(config_path))
        board = boards.load(str(REPO / "boards" / f"{cfg.board}.json"))
        app = {"button": ButtonApp, "pir": PirApp, "bracelet": BraceletApp}[cfg.kind]
        plat = SimPlatform(board, cfg, app, name=f"{cfg.device_id:08x}")
        plat.imu_fn = imu
        dev = self.world.add(plat, power_on=power_on)
        dev.radio_address = "C8:2E:" + ":".join(f"{b:02X}" for b in cfg.device_id.to_bytes(4,
                                                                                        "big"))
        self.devices[cfg.device_id] = dev
        return dev

    def view(self) -> HubView:
        clock = self.clock

        class View(HubView):
            def now_ms(self) -> int:
                return clock.wall_ms()

        return View(self.cfg.data_dir)

    # -- the medium (firmware/hal/sim.py) -----------------------------------------------------
    def advertise(self, device, adv, connectable):
        data = frame_from_adv(adv)
        if data is not None:
            self.core.on_frame(device.radio_address, data, self.rssi)

    def stop(self, device):
        pass

    def _acker(
        self, dev_id: int, address: str, data: bytes, setting: int, own: bool = False
    ) -> None:
        device = self.devices.get(dev_id)
        now = self.world.now
        start = max(now + self.latency_ms, self._busy.get(dev_id, 0))
        self._busy[dev_id] = start + 50

        def write():
            ok = False
            if device is not None and device.radio.connect():
                ok = device.radio.deliver_write(data)
                device.radio.disconnect()
            self.acks += ok
            self.core.ack_written(dev_id, setting, ok, address)
        self.later(start - now, write)

    def later(self, ms: int, fn) -> None:
        self._order += 1
        self._events.append((self.world.now + ms, self._order, fn))
        self._events.sort(key=lambda e: (e[0], e[1]))

    def poll(self, now_ms: int):
        while self._events and self._events[0][0] <= now_ms:
            self._events.pop(0)[2]()
        if now_ms >= self._next_tick:  # the daemon's loop: a tick and a status file a second
            self.core.tick()
            self.daemon.write_status()
            self._next_tick = now_ms + 1000
        nxt = self._next_tick
        return min(nxt, self._events[0][0]) if self._events else nxt

    def run_for(self, ms: int) -> None:
        self.world.run_for(ms)

    def close(self) -> None:
        self.store.close()
