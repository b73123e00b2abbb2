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
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from hub import contract, events as E
from hub.config import Config, Device
from hub.home import HomeWatch
from hub.store import Record, Store
from hub.store_types import HUB_SELF
from shared import frame as F
from shared.replay import R_DUPLICATE, R_TOO_OLD, ReplayWindow

log = logging.getLogger("carebeacon.hub")

_ACKED_SEEN = 16  # frames per device remembered as acknowledged: > the device's 6 outbox slots
RECENT_MS = 20_000  # a device heard this recently is likely still advertising: ack it now
ALARM_TYPES = ("manual_alarm", "automatic_alarm")
# Refill the uplink only when fewer events than this are in flight: pump() reads the pending
# queue (O(pending)), so pumping after every PUBACK made draining a long outage's backlog
# quadratic (2000 alarms: a minute of CPU with the event loop blocked, radio unheard).
# pump() reads the store only while a backlog may exist; otherwise a new event is published
# straight after its commit (`_offer`): that query was ~0.1 ms of every alarm's latency.
PUMP_LOW_WATER = 20
# ...and never have more than this in flight: each pump() skips every in-flight event, so a
# burst of frames (each pumping) while PUBACKs wait their turn on the loop was quadratic too.
# paho sends only max_inflight (20) at a time anyway. It also bounds the PUBACK callbacks (one
# FULL commit each) queued in one loop iteration, and so how long an ack write or a new
# frame waits during a drain (2000 alarms: a new SOS STORED in ~2.5 s instead of ~5 s at 150).
PUMP_MAX_IN_FLIGHT = 40


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


@dataclass
class DeviceRuntime:
    address: str | None = None
    last_mono_ms: int | None = None
    last_wall_ms: int | None = None
    rssi: int | None = None
    battery: int | None = None
    bad_tags: int = 0
    settings: dict[int, int] = field(default_factory=dict)  # setting id -> value, not yet sent
    sent: dict[int, int] = field(default_factory=dict)  # setting id -> value last put in an ack
    acked_seqs: deque[int] = field(default_factory=lambda: deque(maxlen=_ACKED_SEEN))


class HubCore:
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
        self.defer = defer
        self._commit_queued = False
        self.clock = clock or Clock()
        self.alarm_repeat_ms = alarm_repeat_s * 1000
        self.alarm_repeat_for_ms = alarm_repeat_for_s * 1000
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
        self.in_flight: dict[str, int] = {}  # ref -> mono ms published
        # False only when every pending event in the store is in flight: set False by a
        # pump() that saw the whole queue, True by anything that may leave one behind.
        self.backlog = True
        self.event_topic = contract.event_topic(cfg.county, cfg.hub_id)
        self.rejected: dict[str, int] = {}  # ref -> mono ms it may be offered again
        self.repeat_at: dict[str, int] = {}  # delivered alarm ref -> mono ms to publish again
        self.repeat_until: dict[str, int] = {}
        self.faults: dict[int, str] = {}  # active hub fault code -> text
        self.radio_health = "unknown"
        blob = store.get_state("hub_seq")
        self.hub_seq = int.from_bytes(blob, "big") if blob else 0
        now = self.clock.mono_ms()
        self.home = HomeWatch(cfg, store, now, self)
        # a restarted hub resumes repeating the alarms no operator has acknowledged yet
        wall = self.clock.wall_ms()
        for ev in store.awaiting_help(wall - self.alarm_repeat_for_ms):
            if self._is_alarm(ev.payload_json):
                self.repeat_at[ev.ref] = now + self.alarm_repeat_ms
                self.repeat_until[ev.ref] = (
                    now + self.alarm_repeat_for_ms - (wall - (ev.delivered_ms or wall))
                )

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

    # -- acknowledgements -----------------------------------------------------------------
    def _ack(self, dev_id: int, seq: int, status: int) -> None:
        rt = self.devices[dev_id]
        if rt.address is None:
            return
        tod, weekday, synced = self.clock.local()
        clock = F.encode_clock(tod, weekday) if synced else 0
        setting, value = self.home.prealarm_setting(self.clock.mono_ms())
        # A pending setting rides only on a frame's first ack. The device ignores an ack that
        # does not raise the frame's status, setting and all, and forgets a routine frame at its
        # first ack: on a repeat (a retried advert heard twice) or a later status the setting
        # would be lost while its write "succeeded". (The pre-alarm rides on every ack: it is
        # repeated anyway.)
        first = seq not in rt.acked_seqs
        if first:
            rt.acked_seqs.append(seq)
        if setting == F.S_NONE and rt.settings and first:
            setting = min(rt.settings)
            value = rt.settings[setting]
            rt.sent[setting] = value
        data = self.codecs[dev_id].encode_ack(
            bytearray(F.ACK_LEN), seq, status, clock, setting, value
        )
        self.counters["acks"] += 1
        self.acker(dev_id, rt.address, bytes(data), setting)

    def ack_written(self, dev_id: int, setting: int, ok: bool) -> None:
        """The daemon's report on one acknowledgement write."""
        rt = self.devices.get(dev_id)
        if rt is None:
            return
        if ok and setting in rt.settings and rt.settings[setting] == rt.sent.get(setting):
            del rt.settings[setting]  # the device has it (unless changed since: then send that)
        self.counters["ack_written" if ok else "ack_failed"] += 1

    def _ack_if_near(self, ref: str, status: int) -> None:
        """Tell a device a new status at once if it is probably still listening."""
        try:
            _, dev_id, seq = contract.parse_ref(ref)
        except ValueError:
            return
        rt = self.devices.get(dev_id or -1)
        if (
            rt
            and rt.last_mono_ms is not None
            and self.clock.mono_ms() - rt.last_mono_ms < RECENT_MS
        ):
            self._ack(dev_id, seq, status)

    def devices_told_help(self, dev_id: int, seq: int) -> None:
        """An operator acknowledged this device's alarm: tell it now if it listens."""
        self._ack_if_near(self.store.ref_for(dev_id, seq), F.ACK_HELP)

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

    # -- uplink ---------------------------------------------------------------------------
    def _offer(self, ref: str, payload: str) -> None:
        """Publish an event just stored. With no backlog it is the only event not in flight,
        so it is what pump() would pick: send it without reading the queue back."""
        if (
            self.backlog
            or len(self.in_flight) >= PUMP_MAX_IN_FLIGHT
            or not getattr(self.publisher, "connected", False)
        ):
            self.backlog = True
            self.pump()
        elif self.publisher.publish_event(ref, self.event_topic, payload.encode()):
            self.in_flight[ref] = self.clock.mono_ms()
        else:
            self.backlog = True

    def pump(self) -> None:
        """Offer pending events to the platform, oldest first, alarms ahead of routine."""
        room = PUMP_MAX_IN_FLIGHT - len(self.in_flight)
        if not self.backlog or room <= 0 or not getattr(self.publisher, "connected", False):
            return
        now = self.clock.mono_ms()
        exclude = set(self.in_flight) | {r for r, t in self.rejected.items() if t > now}
        limit = min(100, room)
        pending = self.store.pending(limit=limit, exclude=exclude)
        for ev in pending:
            if not ev.payload_json:
                continue
            if not self.publisher.publish_event(ev.ref, self.event_topic, ev.payload_json.encode()):
                return
            self.in_flight[ev.ref] = now
            self.rejected.pop(ev.ref, None)
        # Saw the whole queue and sent it all; a refused event waits, so keep looking then.
        if len(pending) < limit and not self.rejected:
            self.backlog = False

    def on_connected(self, *_args) -> None:
        self.in_flight.clear()  # the store is the truth: offer everything pending again
        self.backlog = True
        self.pump()

    def on_disconnected(self, *_args) -> None:
        self.in_flight.clear()
        self.backlog = True

    def on_delivered(self, ref: str) -> None:
        self.in_flight.pop(ref, None)
        if self.repeat_at.get(ref) is not None:
            self.repeat_at[ref] = self.clock.mono_ms() + self.alarm_repeat_ms
            return
        # With `defer`, the mark is visible at once (nothing re-offers it) and committed with
        # the rest of this batch of PUBACKs. A crash before that commit publishes it again
        # with the same ref: the at-least-once the platform deduplicates anyway.
        if not self.store.mark_delivered(ref, self.clock.wall_ms(), commit=self.defer is None):
            return
        if self.defer is not None and not self._commit_queued:
            self._commit_queued = True
            self.defer(self._commit_marks)
        self.counters["delivered"] += 1
        if self.faults.get(206):
            self.hub_fault_cleared(206)
        ev = self.store.get(ref)
        if ev is not None and ev.alarm and ev.state < 2 and self._is_alarm(ev.payload_json):
            now = self.clock.mono_ms()
            self.repeat_at[ref] = now + self.alarm_repeat_ms
            self.repeat_until[ref] = now + self.alarm_repeat_for_ms
        if ev is not None and ev.device_id != HUB_SELF:
            self._ack_if_near(ref, F.ACK_DELIVERED)
        if len(self.in_flight) < PUMP_LOW_WATER:
            self.pump()

    def _commit_marks(self) -> None:
        self._commit_queued = False
        self.store.commit()

    @staticmethod
    def _is_alarm(payload: str) -> bool:
        return any(f'"type":"{t}"' in payload for t in ALARM_TYPES)

    def on_rejected(self, ref: str, rejection) -> None:
        self.in_flight.pop(ref, None)
        self.rejected[ref] = self.clock.mono_ms() + 60_000  # offered again in a minute
        self.backlog = True
        self.hub_fault(206, f"platform refused {ref}: {rejection}")

    def stop_repeating(self, ref: str) -> None:
        self.repeat_at.pop(ref, None)
        self.repeat_until.pop(ref, None)

    def repeat_alarms(self, now: int) -> None:
        for ref, at in list(self.repeat_at.items()):
            if now < at or ref in self.in_flight:
                continue
            ev = self.store.get(ref)
            if ev is None or ev.state >= 2 or now > self.repeat_until.get(ref, 0):
                self.repeat_at.pop(ref, None)
                self.repeat_until.pop(ref, None)
                continue
            if getattr(self.publisher, "connected", False) and self.publisher.publish_event(
                ref, self.event_topic, ev.payload_json.encode()
            ):
                self.in_flight[ref] = now
                self.counters["repeated"] += 1
            self.repeat_at[ref] = now + self.alarm_repeat_ms

    # -- housekeeping ---------------------------------------------------------------------
    def tick(self) -> None:
        """Call about once a second: supervision, inactivity, retries, store recovery."""
        now = self.clock.mono_ms()
        if self.store.fault:
            self.store.flush_overflow()
        self.home.tick(now)
        self.repeat_alarms(now)
        for ref, t in list(self.in_flight.items()):
            if now - t > 120_000:  # no PUBACK in 2 min on a live link: offer it again
                del self.in_flight[ref]
                self.backlog = True
        self.pump()

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
