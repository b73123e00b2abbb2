"""The hub's core: frames in → verify → replay check → durable store → acknowledge → uplink.

`HubCore` holds the logic and no I/O of its own beyond the store: the daemon
hands it adverts, uplink callbacks, platform requests and a periodic `tick()`,
and gives it two edges to act through:

    publisher  hub.uplink.Uplink (or a test double with the same methods)
    acker      callable(device_id, address, ack_bytes, setting_id): the daemon writes the
               acknowledgement over BLE and reports back with `ack_written()`

The rules that make an alarm safe, in the order they apply:
1. Only frames from configured devices whose tag verifies are accepted; unknown
   devices are counted for pairing, forged or corrupted frames are counted per
   claimed device, and nothing of either is forwarded.
2. A frame is stored durably (fsync) before the device hears STORED; a frame
   only held in memory (disk failing) is acknowledged no earlier than DELIVERED.
3. A retry of a stored frame is acknowledged again with its current status and
   stored nothing; a frame below the replay window is refused and reported.
4. The store is the outbox: whatever is pending is (re)offered to the platform on
   every connect, and is delivered only on a PUBACK with a success code.
5. An alarm the broker confirmed but no operator acknowledged yet is published
   again (same ref) every `alarm_repeat_s`, because a broker's PUBACK is not proof
   the message survives a broker crash; consumers deduplicate on ref.

HubCore keeps the frame path (rules 1-3) and the hub's own events; its bases hold the rest:
`pipeline_acks.DeviceAcks` the acknowledgements and the settings riding on them,
`pipeline_outbox.Outbox` the uplink side (rules 4 and 5).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass

from hub import contract, events as E
from hub.config import Config, Device
from hub.home import HomeWatch
from hub.pipeline_acks import DeviceAcks, DeviceRuntime
from hub.pipeline_outbox import Outbox
from hub.store import Record, Store
from hub.store_types import HUB_SELF
from shared import frame as F
from shared.replay import R_DUPLICATE, R_TOO_OLD, ReplayWindow

log = logging.getLogger("carebeacon.hub")


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


@dataclass
class Unknown:
    count: int = 0
    rssi: int | None = None
    address: str = ""
    last_mono_ms: int = 0


class HubCore(Outbox, DeviceAcks):
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
        self.codecs = {d: F.Codec(d, k) for d, k in cfg.keys.items() if d in cfg.devices}
        self.windows: dict[int, ReplayWindow] = {}
        for d in cfg.devices:
            blob = store.get_state(self._window_name(d))
            self.windows[d] = ReplayWindow.from_bytes(blob) if blob else ReplayWindow()
        self.devices = {d: DeviceRuntime() for d in cfg.devices}
        for d, dev in cfg.devices.items():  # each device learns its interval at first contact
            self.devices[d].settings[F.S_HEARTBEAT_MIN] = dev.heartbeat_min
        self.unknown: dict[int, Unknown] = {}
        self.counters: Counter[str] = Counter()
        self._init_outbox(alarm_repeat_s, alarm_repeat_for_s, defer)
        self.faults: dict[int, str] = {}  # active hub fault code -> text
        self.radio_health = "unknown"
        blob = store.get_state("hub_seq")
        self.hub_seq = int.from_bytes(blob, "big") if blob else 0
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
        try:
            dev_id = F.peek_device_id(data)
        except F.FrameError:
            self.counters["malformed"] += 1
            return "malformed"
        codec = self.codecs.get(dev_id)
        if codec is None:
            u = self.unknown.setdefault(dev_id, Unknown())
            u.count, u.rssi, u.address, u.last_mono_ms = u.count + 1, rssi, address, now
            self.counters["unknown"] += 1
            if u.count == 1:
                log.info(
                    "unknown device %08x at %s (rssi %s): not paired, ignored",
                    dev_id,
                    address,
                    rssi,
                )
            return "unknown"
        rt = self.devices[dev_id]
        try:
            f = codec.verify(data)
        except F.FrameError as e:
            rt.bad_tags += 1
            self.counters["refused"] += 1
            log.warning(
                "refused a frame claiming device %08x from %s: %s", dev_id, address, e.reason
            )
            if rt.bad_tags in (10, 100, 1000):
                self.hub_fault(
                    205, f"{rt.bad_tags} refused frames claiming device {dev_id:08x}", device=dev_id
                )
            return "refused"
        rt.address, rt.last_mono_ms, rt.rssi = address, now, rssi
        rt.last_wall_ms = self.clock.wall_ms()
        window = self.windows[dev_id]
        verdict = window.check(f.seq)
        if verdict == R_TOO_OLD:
            self.counters["too_old"] += 1
            self.hub_fault(
                204,
                f"device {dev_id:08x} sent seq {f.seq}, below its replay window"
                f" (top {window.top}): a replay or a very late retry",
                device=dev_id,
            )
            return "too_old"
        self.home.seen(dev_id, now)
        if verdict == R_DUPLICATE:
            self.counters["duplicate"] += 1
            status = self.store.status_of(dev_id, f.seq)
            if status:
                self._ack(dev_id, f.seq, status)
            return "duplicate"
        return self._accept(dev_id, f, rssi, now)

    def _accept(self, dev_id: int, f: F.Frame, rssi: int | None, now: int) -> str:
        dev = self.cfg.devices[dev_id]
        rt = self.devices[dev_id]
        window = self.windows[dev_id]
        window.accept(f.seq)
        wall = self.clock.wall_ms()
        event_ms = wall - f.age_ms
        mapped = E.map_frame(f)
        battery = E.battery_of(f)
        if battery is not None:
            rt.battery = battery
        ref = self.store.ref_for(dev_id, f.seq)
        payload = ""
        if mapped is not None:
            cancels = self.store.ref_for(dev_id, mapped.cancels_seq) if mapped.cancels_seq else None
            payload = self._event_json(ref, mapped, dev, event_ms, wall, rssi, cancels=cancels)
            if cancels:
                self.stop_repeating(cancels)  # the elder cancelled it: no operator ack is coming
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
        added = self.store.add(rec, states={self._window_name(dev_id): window.to_bytes()})
        if added.is_new and payload:
            self._offer(added.ref, payload)
        self.counters["stored" if added.durable else "held_in_memory"] += 1
        if mapped is None:
            status = added.status
        else:
            status = added.status
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
            self._ack(dev_id, f.seq, status)
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
        msg = contract.build_event(
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
        return json.dumps(msg, separators=(",", ":"))

    # -- platform requests ----------------------------------------------------------------
    def on_request(self, req) -> None:
        from hub.requests import handle

        handle(self, req)

    # -- hub events -----------------------------------------------------------------------
    def hub_event(self, mtype: int, mapped: E.Mapped, device: int | None = None) -> str:
        """Store and publish an event the hub raises itself; returns its ref."""
        self.hub_seq += 1
        ref = contract.make_ref(self.cfg.hub_id, None, self.hub_seq)
        wall = self.clock.wall_ms()
        dev = self.cfg.devices.get(device) if device else None
        payload = self._event_json(ref, mapped, dev, wall, wall, None, cancels=mapped.cancels_ref)
        if mapped.cancels_ref:
            self.stop_repeating(mapped.cancels_ref)
        rec = Record(
            device_id=HUB_SELF,
            seq=self.hub_seq,
            mtype=mtype,
            arg=device or 0,
            event_ms=wall,
            recv_ms=wall,
            recv_mono_ms=self.clock.mono_ms(),
            payload_json=payload,
        )
        if self.store.add(rec, states={"hub_seq": self.hub_seq.to_bytes(4, "big")}).is_new:
            self._offer(ref, payload)
        log.info("hub event %s %s", mapped.type, ref)
        return ref

    def hub_fault(self, code: int, text: str, device: int | None = None) -> None:
        log.error("fault %s: %s", contract.HUB_FAULTS.get(code, code), text)
        if device is None and self.faults.get(code) == text:
            return
        if device is None:
            self.faults[code] = text
        self.hub_event(
            E.H_FAULT, E.Mapped("fault", fault={"code": code, "text": text[:200]}), device=device
        )

    def hub_fault_cleared(self, code: int) -> None:
        if self.faults.pop(code, None) is not None:
            log.info("fault %s cleared", contract.HUB_FAULTS.get(code, code))
            self.hub_event(E.H_RESTORAL, E.Mapped("restoral", fault={"code": code}))

    # -- housekeeping ---------------------------------------------------------------------
    def tick(self) -> None:
        """Call about once a second: supervision, inactivity, retries, store recovery."""
        now = self.clock.mono_ms()
        if self.store.fault:
            self.store.flush_overflow()
        self.home.tick(now)
        self._tick_outbox(now)

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
