"""The hub on the virtual clock: the real hub logic for weeks of home life in seconds.

`VirtualHub` is a sink of hil/sim/medium.py. It runs hub.pipeline.HubCore (verify, replay
window, the durable SQLite store with its fsync, acknowledgements, supervision, whole-home
inactivity, platform requests) exactly as the daemon does, with three edges replaced:

- the radio: heard adverts go to `core.on_frame` with the radio's echo filter (a payload
  identical to the last one from that address is dropped, hub/radio.py); acknowledgements
  are connect -> GATT discovery -> write -> disconnect cycles on the medium, one at a time
  per device as hub/radio_ack.py writes them (that one also merges the acknowledgements
  waiting behind a write; this sink writes each, so it shows a busier air than the hub's);
- the uplink: `VirtualPlatform` is the broker and the platform consumer; a publish arrives
  `one_way_ms` later and its PUBACK comes back after the round trip, unless the uplink went
  down in between (then the hub offers it again on reconnect: duplicates, as in MQTT);
  requests wait in the persistent session while the hub is offline;
- time: the hub's clock is the world's virtual clock.

Hub processing time is MEASURED: the wall time the real code spends in each call (SQLite
commit and fsync included) plus `hub_ms` (the Pi's SD card fsync, which this machine's disk
does not have: docs/hil.md) delays what the call sends.
"""

from __future__ import annotations

import bisect
import json
import time
from pathlib import Path

from hub import contract
from hub.config import load
from hub.pipeline import HubCore
from hub.pipeline_acks import ack_value
from hub.store import Store
from shared import frame as F

STATES = ("idle", "prealarm", "alarm", "away")


class VirtualClock:
    """hub.pipeline.Clock on the medium's virtual time; local time = UTC + offset."""

    def __init__(self, medium, epoch_ms: int, utc_offset_s: int = 0):
        self.medium, self.epoch_ms, self.offset_s = medium, epoch_ms, utc_offset_s

    def mono_ms(self) -> int:
        return 10_000 + int(self.medium.now)

    def wall_ms(self) -> int:
        return self.epoch_ms + int(self.medium.now)

    def local(self) -> tuple[int, int, bool]:
        t = time.gmtime(self.wall_ms() // 1000 + self.offset_s)
        return t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec, t.tm_wday, True


class VirtualPlatform:
    """Broker + platform consumer on the virtual clock. Deduplicates on ref like a platform
    must (docs/mqtt.md) and counts raw copies."""

    def __init__(self, medium, one_way_ms: float = 2.0):
        self.medium, self.one_way_ms = medium, one_way_ms
        self.up = True  # the hub's uplink can reach the broker
        self.events: dict[str, dict] = {}
        self.arrived_ms: dict[str, float] = {}
        self.arrivals: list[str] = []
        self.first_at: list[float] = []  # arrival times of first copies, in order (bisect)
        self.first_refs: list[str] = []
        self.availability: dict[str, bool] = {}
        self.states: list[dict] = []
        self.responses: list[tuple[str, int, dict | None]] = []
        self.hub: VirtualHub | None = None
        self._session: list[tuple[str, bytes]] = []  # requests waiting for the hub

    @property
    def duplicates(self) -> int:
        return len(self.arrivals) - len(set(self.arrivals))

    def receive_event(self, payload: bytes) -> None:
        msg = json.loads(payload)
        self.arrivals.append(msg["ref"])
        if msg["ref"] not in self.events:
            self.events[msg["ref"]] = msg
            self.arrived_ms[msg["ref"]] = self.medium.now
            self.first_at.append(self.medium.now)
            self.first_refs.append(msg["ref"])

    def since(self, t: float) -> list[tuple[str, dict, float]]:
        i = bisect.bisect_left(self.first_at, t)
        return [(r, self.events[r], a) for r, a in zip(self.first_refs[i:], self.first_at[i:],
                                                         strict=True)]

    def request(self, kind: str, body: dict) -> None:
        """Publish a request (QoS 1, the hub's persistent session keeps it while offline)."""
        topic = f"carebeacon/v1/{{county}}/{{hub}}/request/{kind}"
        self.medium.at(self.medium.now + self.one_way_ms,
                       lambda: self._deliver(topic, json.dumps(body).encode()))

    def _deliver(self, topic: str, payload: bytes) -> None:
        hub = self.hub
        if hub is None or not hub.uplink.connected:
            self._session.append((topic, payload))
            return
        hub.on_request(topic, payload)

    def set_up(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        if self.hub is not None:
            self.hub.uplink_changed()

    def flush_session(self) -> None:
        pending, self._session = self._session, []
        for topic, payload in pending:
            self._deliver(topic, payload)


class _Uplink:
    """hub.uplink.Uplink's surface for HubCore, over VirtualPlatform."""

    def __init__(self, hub: VirtualHub):
        self.hub = hub
        self.session = 0  # bumps on every disconnect: PUBACKs of an old session are lost

    @property
    def connected(self) -> bool:
        return self.hub.core is not None and self.hub.platform.up

    def publish_event(self, ref: str, topic: str, payload) -> bool:
        if not self.connected:
            return False
        p, hub = self.hub.platform, self.hub
        data = payload if isinstance(payload, bytes) else str(payload).encode()
        t = p.medium.now + hub.busy_ms()
        p.medium.at(t + p.one_way_ms, lambda: p.receive_event(data))
        session, gen = self.session, hub.gen
        p.medium.at(t + 2 * p.one_way_ms, lambda: hub.puback(ref, session, gen))
        return True

    def publish_availability(self, device_id: int, online: bool, last_seen=None) -> None:
        if self.connected:
            self.hub.platform.availability[contract.device_hex(device_id)] = online

    def forget_device(self, device_id: int, confirmed=None) -> None:
        """Unpaired (hub/unpaired.py): the platform no longer lists it; confirmed at once."""
        if self.connected:
            self.hub.platform.availability.pop(contract.device_hex(device_id), None)
            if confirmed is not None:
                confirmed(device_id)

    def publish_state(self, radio: str, radio_detail: str | None = None) -> None:
        if self.connected:
            self.hub.platform.states.append({"online": True, "radio": radio})

    def respond(self, request, result=0, *, text=None, data=None, error=None) -> None:
        kind = request.kind if request is not None else "error"
        self.hub.platform.responses.append((kind, int(result), data))


class VirtualHub:
    def __init__(self, medium, config_path: Path, platform: VirtualPlatform, *,
                 epoch_ms: int, utc_offset_s: int = 0, tick_ms: int = 10_000,
                 hub_ms: float = 15.0, connect_timeout_ms: float = 10_000,
                 gatt_ms: float = 150.0, write_ms: float = 60.0, disconnect_ms: float = 30.0):
        self.medium, self.platform = medium, platform
        self.cfg = load(config_path)
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.clock = VirtualClock(medium, epoch_ms, utc_offset_s)
        self.tick_ms, self.hub_ms = tick_ms, hub_ms
        self.connect_timeout_ms = connect_timeout_ms
        self.gatt_ms, self.write_ms, self.disconnect_ms = gatt_ms, write_ms, disconnect_ms
        self.uplink = _Uplink(self)
        self.core: HubCore | None = None
        self.store: Store | None = None
        self.gen = 0  # bumps when the hub process dies: its pending work dies with it
        self.starts = 0
        self.heard_frames = 0
        self._t0 = time.perf_counter()
        self._echo: dict[str, bytes] = {}
        self._ackq: dict[str, list[tuple[int, bytes, int]]] = {}
        platform.hub = self

    # -- process life ---------------------------------------------------------------------
    @property
    def scanning(self) -> bool:
        return self.core is not None

    def start(self) -> None:
        assert self.core is None, "the hub is running"
        self._enter()
        self.gen += 1
        self.starts += 1
        self._echo.clear()
        self._ackq.clear()
        self.store = Store(self.cfg.data_dir / "hub.db", hub_id=self.cfg.hub_id)
        self.core = HubCore(self.cfg, self.store, publisher=self.uplink, acker=self._acker,
                            clock=self.clock)
        if self.platform.up:
            self.uplink_changed(connected=True)
        gen = self.gen
        self.medium.at(self.medium.now + self.tick_ms, lambda: self._tick(gen))

    def kill(self) -> None:
        """SIGKILL: nothing more runs; what the store committed stays on disk."""
        self.gen += 1
        self.core = None
        store, self.store = self.store, None
        if store is not None:
            store.close()  # the process is gone: so is its file handle (nothing is flushed here)

    def stop(self) -> None:
        """Orderly shutdown, as the daemon's."""
        if self.core is not None:
            self.core.home.save(self.clock.mono_ms())
        self.kill()

    def uplink_changed(self, connected: bool | None = None) -> None:
        core = self.core
        if core is None:
            return
        self._enter()
        if self.platform.up:
            core.on_connected()
            for d in self.cfg.devices:  # retained availability republished on every connect
                st = core.home.supervisor.state(d)
                if st in ("online", "offline"):
                    self.uplink.publish_availability(d, st == "online")
            self.platform.flush_session()
        else:
            self.uplink.session += 1
            core.on_disconnected()

    # -- inputs ---------------------------------------------------------------------------
    def _enter(self) -> None:
        self._t0 = time.perf_counter()

    def busy_ms(self) -> float:
        """Time the hub has spent on the current call (measured) plus the SD card's fsync."""
        return (time.perf_counter() - self._t0) * 1000 + self.hub_ms

    def heard(self, device, address: str, adv: bytes, rssi: int) -> None:
        if self.core is None:
            return
        payload = F.frame_from_adv(adv)
        if payload is None or self._echo.get(address) == payload:
            return
        self._echo[address] = payload
        self.heard_frames += 1
        self._enter()
        self.core.on_frame(address, bytes(payload), rssi)

    def on_request(self, topic: str, payload: bytes) -> None:
        core = self.core
        topic = topic.format(county=self.cfg.county, hub=self.cfg.hub_id)
        self._enter()
        try:
            req = contract.parse_request(topic, payload, county=self.cfg.county,
                                         hub_id=self.cfg.hub_id)
        except contract.ContractError as e:
            self.platform.responses.append((e.kind or "error", int(e.result), None))
            return
        core.on_request(req)

    def puback(self, ref: str, session: int, gen: int) -> None:
        if gen == self.gen and session == self.uplink.session and self.core is not None:
            self._enter()
            self.core.on_delivered(ref)

    def _tick(self, gen: int) -> None:
        if gen != self.gen or self.core is None:
            return
        self._enter()
        self.core.tick()
        self.medium.at(self.medium.now + self.tick_ms, lambda: self._tick(gen))

    def inactivity_state(self) -> str | None:
        det = self.core.home.detector if self.core else None
        return None if det is None else STATES[det.state]

    # -- acknowledgements over the air --------------------------------------------------------
    def _acker(
        self, dev_id: int, address: str, data: bytes, setting: int, own: bool = False
    ) -> None:
        q = self._ackq.setdefault(address, [])
        q.append((dev_id, bytes(data), setting))
        if len(q) == 1:
            gen = self.gen
            self.medium.at(self.medium.now + self.busy_ms(), lambda: self._cycle(address, gen))

    def _cycle(self, address: str, gen: int) -> None:
        if gen != self.gen:
            return
        device = self.medium.by_address.get(address)
        if device is None:
            self._done(address, False, gen)
            return
        m = self.medium

        def connected(ok: bool) -> None:
            if gen != self.gen:
                m.disconnect(device)
                return
            if not ok:
                self._done(address, False, gen)
                return
            m.at(m.now + self.gatt_ms + self.write_ms, write)

        def write() -> None:
            ok = gen == self.gen and device.radio.connected and m.write(device, self._ackq[
                address][0][1])
            m.at(m.now + self.disconnect_ms, lambda: (m.disconnect(device),
                                                       self._done(address, ok, gen)))
        m.connect(device, connected, self.connect_timeout_ms)

    def _done(self, address: str, ok: bool, gen: int) -> None:
        if gen != self.gen:
            return
        q = self._ackq.get(address)
        if not q:
            return
        dev_id, data, setting = q.pop(0)
        self._enter()
        self.core.ack_written(dev_id, setting, bool(ok), address, ack_value(data))
        if q:
            self.medium.at(self.medium.now, lambda: self._cycle(address, gen))
