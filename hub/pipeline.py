"""The hub's core: frames in → verify → replay check → durable store → acknowledge → uplink.

`HubCore` holds the logic and no I/O of its own beyond the store: the daemon
hands it adverts, uplink callbacks, platform requests and a periodic `tick()`,
and gives it two edges to act through:

    publisher  hub.uplink.Uplink (or a test double with the same methods)
    acker      callable(device_id, address, ack_bytes, setting_id, own): the daemon writes
               the acknowledgement over BLE and reports back with `ack_written()`; `own`:
               the address is the device's own (its last new frame's), served first

The rules that make an alarm safe, in the order they apply:
1. Only frames from configured devices whose tag verifies are accepted; unknown
   devices are counted for pairing (the newest 64 kept), forged or corrupted frames
   are counted per claimed device, and nothing of either is forwarded.
2. A frame is stored durably (fsync) before the device hears STORED; a frame
   only held in memory (disk failing) is acknowledged no earlier than DELIVERED.
3. A retry of a stored frame (same type and arg) is acknowledged again with its current
   status, to the address it came from if that is the device's or the retry's age fits
   its event's time, and stores nothing; a frame below the replay window is refused and
   reported, and so is a different frame under a stored frame's number (a reused number:
   never acknowledged), each once an hour per device and class, the rest counted. Only
   new frames move the address acknowledgements go to (kept in the store across restarts);
   only they and copies whose age fits their event's time count as signs of life: a
   replayed recording does neither.
   Nothing marks a frame seen in the replay window before it is stored.
4. The store is the outbox: whatever is pending is (re)offered to the platform on
   every connect, and is delivered only on a PUBACK with a success code.
5. An alarm the broker confirmed but no operator acknowledged yet is published
   again (same ref) every `alarm_repeat_s`, because a broker's PUBACK is not proof
   the message survives a broker crash; consumers deduplicate on ref.

HubCore keeps the frame path (rules 1-3); its bases hold the rest:
`pipeline_acks.DeviceAcks` the acknowledgements and the settings riding on them,
`pipeline_outbox.Outbox` the uplink side (rules 4 and 5), `pipeline_replays.ReplayChecks`
the retries and replays of rule 3, `pipeline_hub_events.HubEvents` the hub's own events.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import Counter

from hub import contract, events as E, registrations
from hub.clock_sync import ClockWatch, kernel_synced
from hub.config import LOCATION_MAX, ROOM_MAX, Config, Device
from hub.device_settings import DeviceSettings, stored_devices
from hub.home import HomeWatch
from hub.pipeline_acks import DeviceAcks, DeviceRuntime, address_state
from hub.pipeline_cancels import fall_cancel_target
from hub.pipeline_hub_events import HubEvents
from hub.pipeline_outbox import Outbox
from hub.pipeline_replays import ORIGINS_KEPT, ReplayChecks
from hub.pipeline_unknown import UnknownDevices
from hub.store import Record, Store
from hub.unpaired import Unpaired
from shared import frame as F
from shared.replay import R_DUPLICATE, R_TOO_OLD, ReplayWindow

log = logging.getLogger("carebeacon.hub")

BAD_TAGS_LOGGED = 5  # refused frames logged one by one per device; then the 10th, 100th, ...

RSSI_MIN, RSSI_MAX = -127, 20  # the contract's rssi (docs/mqtt/schemas/event.json)


def usable_rssi(rssi: int | None) -> int | None:
    """An RSSI the contract can carry, else None: HCI reports 127 for "not available",
    bleak -127; anything outside -127..20 dBm is not a measurement."""
    if isinstance(rssi, int) and not isinstance(rssi, bool) and RSSI_MIN <= rssi <= RSSI_MAX:
        return int(rssi)
    return None


class Clock:
    """Wall time for event stamps, monotonic time for every duration, local time for devices."""

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def mono_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000

    def local(self) -> tuple[int, int, bool]:
        """(seconds since local midnight, weekday 0=Monday, clock believed synchronised)."""
        t = time.localtime()
        # A Pi without RTC starts in 1970 (or at its last fake-hwclock save) until NTP syncs.
        return t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec, t.tm_wday, t.tm_year >= 2024

    def synced(self) -> bool | None:
        """Has a time service set the wall clock (hub/clock_sync.py)? None: cannot tell."""
        return kernel_synced()


class HubCore(Outbox, DeviceAcks, HubEvents, ReplayChecks):
    def __init__(
        self,
        cfg: Config,
        store: Store,
        *,
        publisher,
        acker,
        clock: Clock | None = None,
        alarm_repeat_s: int = 300,
        alarm_repeat_for_s: int = 24 * 3600,
        defer=None,
    ):
        """`defer(fn)` runs fn soon, after the callbacks already queued (the daemon passes
        loop.call_soon): delivery marks are then committed once per batch of PUBACKs instead
        of one fsync each. Without it every mark is committed at once."""
        self.cfg, self.store = cfg, store
        self.publisher, self.acker = publisher, acker
        self.clock = clock or Clock()
        self.clock_watch = ClockWatch()
        self.codecs = {d: F.Codec(d, k) for d, k in cfg.keys.items() if d in cfg.devices}
        self.windows: dict[int, ReplayWindow] = {}
        for d in cfg.devices:
            blob = store.get_state(self._window_name(d))
            self.windows[d] = ReplayWindow.from_bytes(blob) if blob else ReplayWindow()
        self.devices = {d: DeviceRuntime() for d in cfg.devices}
        # a device removed or added again with another key starts clean (its replay window
        # is kept: hub/registrations.py); one removed is announced unpaired (hub/unpaired.py)
        gone = registrations.forget_gone(cfg, store, stored_devices(store))
        self.unpaired = Unpaired(cfg, store, gone, publisher)  # before settings and record go
        for d in cfg.devices:
            self._load_address(d)
        # hub.toml's heartbeat, the platform's stored settings over it: each device learns
        # them again at first contact, and the supervisor (HomeWatch) expects that heartbeat
        self.device_settings = DeviceSettings(cfg, store, forget=gone)
        registrations.record(cfg, store)
        for d in cfg.devices:
            self.devices[d].settings.update(self.device_settings.in_force(d))
        self.unknown = UnknownDevices(self.clock.mono_ms())  # bounded: no key needed
        self.counters: Counter[str] = Counter()
        self._init_outbox(alarm_repeat_s, alarm_repeat_for_s, defer)
        self.faults: dict[int, str] = {}  # active hub fault code -> text
        self.radio_health = "unknown"
        self._init_hub_seq()
        now = self.clock.mono_ms()
        self.home = HomeWatch(cfg, store, now, self)
        self._resume_repeats(now)

    # -- frames ---------------------------------------------------------------------------
    @staticmethod
    def _window_name(device_id: int) -> str:
        return f"replay:{device_id:08x}"

    def on_frame(self, address: str, data: bytes, rssi: int | None) -> str:
        """One carebeacon advert payload; returns what happened (for logs and tests)."""
        now = self.clock.mono_ms()
        rssi = usable_rssi(rssi)
        try:
            dev_id = F.peek_device_id(data)
        except F.FrameError:
            self.counters["malformed"] += 1
            return "malformed"
        codec = self.codecs.get(dev_id)
        if codec is None:
            self.unknown.heard(dev_id, address, rssi, now)
            self.counters["unknown"] += 1
            return "unknown"
        rt = self.devices[dev_id]
        try:
            f = codec.verify(data)
        except F.FrameError as e:
            rt.bad_tags += 1
            self.counters["refused"] += 1
            if rt.bad_tags <= BAD_TAGS_LOGGED or rt.bad_tags in (10, 100, 1000) or \
                    rt.bad_tags % 10_000 == 0:
                # (not every one: anyone who knows a device's id could flood the journal)
                log.warning(
                    "refused a frame claiming device %08x from %s: %s (%d so far)",
                    dev_id, address, e.reason, rt.bad_tags,
                )
            if rt.bad_tags in (10, 100, 1000):
                self.hub_fault(
                    205, f"{rt.bad_tags} refused frames claiming device {dev_id:08x}", device=dev_id
                )
            return "refused"
        window = self.windows[dev_id]
        verdict = window.check(f.seq)
        if verdict == R_TOO_OLD:  # a stored frame's retransmission is still a duplicate
            return self._too_old(dev_id, f, window.top, address, rssi, now)
        # Only a new frame moves where the hub writes its acknowledgements; a duplicate is
        # a retransmission, a replayed recording or a reused number (_duplicate).
        if verdict == R_DUPLICATE:
            return self._duplicate(dev_id, f, address, rssi, now)
        self._moved(rt, address)
        self._heard(rt, now, rssi)
        self.home.seen(dev_id, now)
        return self._accept(dev_id, f, rssi, now)

    def _heard(self, rt: DeviceRuntime, now: int, rssi: int | None) -> None:
        rt.last_mono_ms, rt.rssi, rt.last_wall_ms = now, rssi, self.clock.wall_ms()

    def _accept(self, dev_id: int, f: F.Frame, rssi: int | None, now: int) -> str:
        # Everything that can fail is done before the replay window marks the frame seen:
        # a seq marked but not stored would make every retry a "duplicate" with nothing to
        # acknowledge, and the alarm would be lost for good, silently.
        dev = self.cfg.devices[dev_id]
        rt = self.devices[dev_id]
        window = self.windows[dev_id]
        wall = self.clock.wall_ms()
        event_ms = wall - f.age_ms
        mapped = E.map_frame(f)
        battery = E.battery_of(f)
        if battery is not None:
            rt.battery = battery
        ref = self.store.ref_for(dev_id, f.seq)
        payload = ""
        cancels = None
        if mapped is not None:
            target = mapped.cancels_seq
            if target and f.mtype == F.T_FALL_CANCELLED:
                target = fall_cancel_target(self.store, dev_id, target)
            cancels = self.store.ref_for(dev_id, target) if target else None
            payload = self._event_json(ref, mapped, dev, event_ms, wall, rssi, cancels=cancels)
        elif f.mtype == F.T_FAULT:
            log.warning(
                "device %08x reported fault code %d, unknown to this hub version",
                dev_id,
                f.arg >> 16,
            )
        rec = Record(
            device_id=dev_id,
            seq=f.seq,
            mtype=f.mtype,
            arg=f.arg,
            event_ms=event_ms,
            recv_ms=wall,
            recv_mono_ms=now,
            rssi=rssi,
            attempt=f.attempt,
            payload_json=payload,
            delivered_ms=wall if mapped is None else None,  # local: nothing to send
        )
        before = window.to_bytes()
        window.accept(f.seq)
        states = {self._window_name(dev_id): window.to_bytes()}
        moved = self._address_blob(rt)  # where the device is, if that changed: in this commit
        if moved is not None:
            states[address_state(dev_id)] = moved
        try:
            added = self.store.add(rec, states=states)
        except BaseException:  # not stored (a bug, not a disk error): then not seen either
            self.windows[dev_id] = ReplayWindow.from_bytes(before)
            with contextlib.suppress(Exception):
                self.store.put_state(self._window_name(dev_id), before)
            raise
        rt.saved = (rt.address, rt.answered)
        rt.origins[f.seq] = (now - f.age_ms, now)
        if len(rt.origins) > ORIGINS_KEPT:
            del rt.origins[next(iter(rt.origins))]
        if cancels:
            self.stop_repeating(cancels)  # the elder cancelled it: no operator ack is coming
        if added.is_new and payload:
            self._offer(added.ref, payload)
        self.counters["stored" if added.durable else "held_in_memory"] += 1
        status = added.status
        if mapped is not None:
            log.info(
                "%s from %08x (%s, %s) seq %d, %d ms old: %s",
                mapped.type,
                dev_id,
                dev.kind,
                dev.room or "-",
                f.seq,
                f.age_ms,
                added.ref,
            )
        self.store.touch_device(dev_id, last_seen_ms=wall, rssi=rssi, battery=rt.battery)
        if status:
            rt.unacked.append(f.seq)
            self._ack(dev_id, f.seq, f.mtype, status)
        self.home.frame(dev, f, now)
        return "stored" if added.durable else "held"

    def _event_json(
        self,
        ref: str,
        m: E.Mapped,
        dev: Device | None,
        event_ms: int,
        wall: int,
        rssi: int | None,
        cancels: str | None = None,
    ) -> str:
        """The event's JSON (`rssi` already through usable_rssi: on_frame). Should a
        device's room or location not fit the contract (hub.toml is checked on loading, so
        this is a bug), the event still goes out with them cut to the contract's lengths: an
        alarm is never held back over a detail."""
        args = dict(
            ref=ref,
            hub=self.cfg.hub_id,
            county=self.cfg.county,
            household=self.cfg.household,
            type=m.type,
            event_time=event_ms / 1000,
            receive_time=wall / 1000,
            device=E.contract_device(dev) if dev else None,
            cause=m.cause,
            priority=m.priority,
            battery=m.battery,
            rssi=rssi,
            cancels=cancels,
            fault=m.fault,
            info=m.info,
        )
        try:
            msg = contract.build_event(**args)
        except ValueError as e:
            if dev is None:
                raise
            log.error(
                "event %s (%s) does not fit the contract: %s; sent with the device's room"
                " and location cut to fit",
                ref,
                m.type,
                e,
            )
            self.counters["events_repaired"] += 1
            args["device"] = contract.Device(
                id=dev.id,
                kind=dev.kind,
                location=dev.location[:LOCATION_MAX],
                room=dev.room[:ROOM_MAX],
            )
            msg = contract.build_event(**args)
        return json.dumps(msg, separators=(",", ":"))

    # -- platform requests ----------------------------------------------------------------
    def on_request(self, req) -> None:
        from hub.requests import handle

        handle(self, req)

    # -- housekeeping ---------------------------------------------------------------------
    def tick(self) -> None:
        """Call about once a second: supervision, inactivity, retries, store recovery.

        Each part runs even if one before it raised (a supervision event that cannot be
        built must not stop alarms being repeated); the first exception is raised at the end,
        for the daemon to log and report (hub/daemon.py) and for tests to see."""
        now = self.clock.mono_ms()
        error: Exception | None = None
        parts = (self._flush_store, self.home.tick, self._tick_outbox, self.unknown.tick,
                 self._watch_clock)
        for part in parts:
            try:
                part(now)
            except Exception as e:
                error = error or e
        if error is not None:
            raise error

    def _watch_clock(self, now: int) -> None:
        change = self.clock_watch.update(now, self.clock_synced())
        if change > 0:
            self.hub_fault(
                203,
                "the hub's clock has not been set by a time service (NTP) for 15 min: event"
                " times and the time of day may be wrong; check the hub's internet and NTP",
            )
        elif change < 0:
            self.hub_fault_cleared(203)

    def clock_synced(self) -> bool | None:
        """Has a time service set the wall clock since the hub started? None: cannot tell."""
        if self.clock_watch.was_synced:
            return True  # (the kernel's later "unsynchronised" is an outage, hub/clock_sync.py)
        synced = getattr(self.clock, "synced", None)  # (simulated clocks cannot tell)
        return synced() if synced is not None else None

    def _flush_store(self, now: int) -> None:
        if self.store.fault:
            self.store.flush_overflow()

    def set_radio_health(self, state: str, detail: str = "") -> None:
        status = {
            "scanning": "ok",
            "starting": "degraded",
            "restarting": "degraded",
            "resetting": "degraded",
        }.get(state, "down")
        if status != self.radio_health:
            self.radio_health = status
            if getattr(self.publisher, "connected", False) or hasattr(
                self.publisher, "publish_state"
            ):
                self.publisher.publish_state(status, detail[:200] or None)
            if status == "down":
                self.hub_fault(201, f"radio {state}: {detail}")
            elif status == "ok":
                self.hub_fault_cleared(201)
