"""Retries, replays and reused numbers of accepted frames: which copies are acknowledged,
which are signs of life, and reporting frames below the replay window or under a number the
device used before for another frame.

`ReplayChecks` is the part of `hub.pipeline.HubCore` behind rule 3 of its docstring: a
device's own retransmission of a stored frame is acknowledged and still counts as a sign of
life, a recording replayed later does not, a flood of frames below the window is one fault an
hour, and a new frame under a reused number is never answered with another frame's status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared import frame as F

if TYPE_CHECKING:
    from collections import Counter

    from hub.home import HomeWatch
    from hub.pipeline import Clock
    from hub.pipeline_acks import DeviceRuntime
    from hub.store import Store
    from hub.store_types import Event

# A recorded advert replayed later no longer counts as a sign of life once its receive time
# minus its age is this far from the event's time (the age's 1-min steps above 54 min), plus
# 1/FRESH_DRIFT_DIV of the time since the hub first heard the frame (a device clock some percent
# off drifts between its copies by that share of the time between them) (_fresh).
FRESH_SLACK_MS = 60_000
FRESH_DRIFT_DIV = 16
ORIGINS_KEPT = 16  # frames per device whose event time is remembered: > the 6 outbox slots
REUSED_ORIGINS_KEPT = 6  # the same for frames under a reused number: one per outbox slot
# Faults 204 (a frame below the replay window) and 209 (a reused number) are reported per
# device and class at most this often; what arrives in between is counted (_report). An hour:
# the default heartbeat, so a replay flood adds no more events than a device's own heartbeats.
REPLAY_FAULT_EVERY_MS = 60 * 60_000
REPLAY_TOO_OLD, SEQ_REUSED = 204, 209  # contract.HUB_FAULTS
FRAME_NAMES = (  # docs/protocol.md, "Message types"
    "", "SOS", "SOS_CANCEL", "TEST", "FALL_SUSPECTED", "FALL_CONFIRMED", "FALL_CANCELLED",
    "ACTIVITY", "HEARTBEAT", "WORN", "NOT_WORN", "FAULT", "LOW_BATTERY", "MOTION", "DOOR",
)  # fmt: skip


def frame_name(mtype: int) -> str:
    return FRAME_NAMES[mtype] if 0 < mtype < len(FRAME_NAMES) else f"type {mtype}"


class ReplayChecks:
    """A base of `hub.pipeline.HubCore`, which sets these and provides `hub_fault`, `_heard`
    and `_ack`."""

    store: Store
    clock: Clock
    counters: Counter[str]
    devices: dict[int, DeviceRuntime]
    home: HomeWatch
    hub_fault: Any
    clock_synced: Any
    _heard: Any
    _ack: Any

    def _duplicate(self, dev_id: int, f: F.Frame, address: str, rssi: int | None, now: int) -> str:
        """A frame whose number the replay window has seen. The device's retransmission of
        the stored frame (same type and arg: only age and attempt change) is acknowledged
        again with the frame's current status, to the address it came from (a device
        retrying over a lost ack must hear it) when that is the device's known address (or
        none is known yet) or the copy was sent just now (_fresh); a stale copy from
        elsewhere is counted and dropped: a recording replayed from ever new addresses
        would have the hub open an ack connection for each. Except an alarm's while no ack
        to the device's address was written since it became the address (`rt.answered`):
        a relay whose copy of a new alarm was heard first holds that address and may never
        answer, while the device, after a power loss, re-sends the alarm with its age
        restarted (stale by construction) from its real address. Only a copy sent just now
        is a sign of life, and no duplicate moves where acknowledgements go. A frame unlike
        the stored one is no retransmission but a reused number (_reused)."""
        rt = self.devices[dev_id]
        self.counters["duplicate"] += 1
        stored = self.store.get(self.store.ref_for(dev_id, f.seq))
        if stored is None and F.is_alarm(f.mtype):  # alarms are never pruned: see _reused
            return self._reused(dev_id, f, None, rssi, now)
        if stored is not None and (stored.mtype, stored.arg) != (f.mtype, f.arg):
            return self._reused(dev_id, f, stored.mtype, rssi, now)
        if self._fresh(dev_id, f, now, stored):
            self._heard(rt, now, rssi)
            self.home.seen(dev_id, now)
        else:
            self.counters["duplicate_stale"] += 1
            # (No known address yet: acknowledged. With the wall clock stepped back after a
            # restart (a Pi without RTC, no NTP yet) every genuine retry looks stale.)
            unproven = F.is_alarm(f.mtype) and not rt.answered  # see above
            if rt.address is not None and address != rt.address and not unproven:
                self.counters["duplicate_stale_dropped"] += 1
                return "duplicate"
        status = self.store.status_of(dev_id, f.seq)
        if status:
            # (f.mtype: the stored frame's type, another one under this number is _reused)
            self._ack(dev_id, f.seq, f.mtype, status, address=address)
        return "duplicate"

    @staticmethod
    def _slack(since_first_ms: int) -> int:
        """Not a share of the copy's age: a recording of a copy aged 16 h, replayed 50 min
        later, then still passed (an hour's slack), and kept a dead device "online"."""
        return FRESH_SLACK_MS + max(0, since_first_ms) // FRESH_DRIFT_DIV

    def _fresh(self, dev_id: int, f: F.Frame, now: int, stored: Event | None) -> bool:
        """Was this copy of an accepted frame (`stored`: its record) transmitted just now? A
        device's retransmissions carry the event's age, under the tag: receive time minus
        age stays at the event's time for every genuine copy, while a copy recorded and
        replayed later lands as much later. The slack covers the age's coarse steps (1 min
        above 54 min) and a device clock running some percent off over a long retry. For a
        frame accepted before a restart only the wall clock can tell, and only once a time
        service set it: a Pi restarted without RTC is behind by its outage, and a recording
        replayed that much later would look fresh (a dead device kept "online")."""
        first = self.devices[dev_id].origins.get(f.seq)  # frames accepted this run
        if first is not None:
            origin, heard = first
            return abs(now - f.age_ms - origin) <= self._slack(now - heard)
        if stored is None or self.clock_synced() is False:
            return False
        wall = self.clock.wall_ms()  # accepted before a restart: by the wall clock, once set
        return abs(wall - f.age_ms - stored.event_ms) <= self._slack(wall - stored.recv_ms)

    def _reused(self, dev_id: int, f: F.Frame, was: int | None, rssi: int | None, now: int) -> str:
        """A frame under a number that the device used before for another frame (type `was`;
        None: an alarm whose number has no record, though alarms are never pruned: a reused
        number of a pruned routine frame, or a store that cannot be read). docs/protocol.md
        allows it after a power loss before NVS took a block end. It is no retransmission:
        never acknowledged (the ack would carry the other frame's status: a new SOS told
        DELIVERED for an old heartbeat while nothing reached the platform; unacknowledged, the
        device shows "not delivered" and keeps trying), not stored, not forwarded; reported
        as fault 209, per device and class at most once an hour (_report), at an alarm's
        priority for an alarm-class frame, and each new alarm at once. Only the device's key
        makes it, so it is a sign of life while its copies keep their event's time (a
        recording replayed later is not)."""
        rt = self.devices[dev_id]
        rt.reused += 1
        self.counters["seq_reused"] += 1
        key = (f.seq, f.mtype, f.arg)
        first = rt.reused_origins.get(key)
        if first is None:
            rt.reused_origins[key] = (now - f.age_ms, now)
            if len(rt.reused_origins) > REUSED_ORIGINS_KEPT:
                del rt.reused_origins[next(iter(rt.reused_origins))]
        if first is None or abs(now - f.age_ms - first[0]) <= self._slack(now - first[1]):
            self._heard(rt, now, rssi)
            self.home.seen(dev_id, now)
        else:
            self.counters["seq_reused_stale"] += 1
        alarm = F.is_alarm(f.mtype)
        # Each new alarm is reported at once (another SOS within the hour must not wait for
        # it); only the repeats of one frame, and routine frames, are rate-limited.
        more = self._report(SEQ_REUSED, rt, alarm, now, at_once=alarm and first is None)
        if more is None:
            self.counters["seq_reused_unreported"] += 1
            return "reused"
        # (at most ~192 characters in all, under the 200 a fault text keeps)
        before = "a number used before, its frame not in the store"
        if was is not None:
            before = f"the number of an earlier {frame_name(was)}"
        self.hub_fault(
            SEQ_REUSED,
            f"device {dev_id:08x} sent {frame_name(f.mtype)} seq {f.seq}, {before}: reused,"
            " so neither acknowledged nor forwarded"
            + ("; call the elder" if alarm else "")
            + (f"; {more} more since the last report" if more else ""),
            device=dev_id,
            alarm=alarm,
        )
        return "reused"

    def _report(
        self, code: int, rt: DeviceRuntime, alarm: bool, now: int, at_once: bool = False
    ) -> int | None:
        """Fault `code` about a device's frames is reported per device and class (alarm /
        routine) at most once every REPLAY_FAULT_EVERY_MS: None within that time (this frame
        is counted), else how many were counted since the last report. In memory: a restarted
        hub reports the next one at once."""
        key = (code, alarm)
        last = rt.reported.get(key)
        if not at_once and last is not None and now - last < REPLAY_FAULT_EVERY_MS:
            rt.unreported[key] = rt.unreported.get(key, 0) + 1
            return None
        rt.reported[key] = now
        return rt.unreported.pop(key, 0)

    def _too_old(
        self, dev_id: int, f: F.Frame, top: int, address: str, rssi: int | None, now: int
    ) -> str:
        """A frame below the replay window. The retransmission of a frame the store holds
        (same type and arg) is a duplicate like any other (_duplicate): an alarm the device
        retries until it hears DELIVERED or HELP, while its later frames moved the window on
        (each fresh start skips numbers: firmware/apps/core.py FRESH_SKIP), must still hear
        them. Any other is refused, and reported as fault 204, per device and class (alarm /
        routine) at most once every REPLAY_FAULT_EVERY_MS; the rest are counted and the count
        goes into the next report. A replay of recorded adverts is thus one event an hour, not
        one per advert, while a genuine alarm retried from below the window with no record
        (the device tries for ever) is reported again each hour it lasts."""
        stored = self.store.get(self.store.ref_for(dev_id, f.seq))
        if stored is not None and (stored.mtype, stored.arg) == (f.mtype, f.arg):
            self.counters["too_old_stored"] += 1
            return self._duplicate(dev_id, f, address, rssi, now)
        rt = self.devices[dev_id]
        self.counters["too_old"] += 1
        rt.too_old += 1
        alarm = F.is_alarm(f.mtype)
        more = self._report(REPLAY_TOO_OLD, rt, alarm, now)
        if more is None:
            self.counters["too_old_unreported"] += 1
            return "too_old"
        self.hub_fault(
            REPLAY_TOO_OLD,
            f"device {dev_id:08x} sent {'an alarm' if alarm else 'a frame'} (type {f.mtype},"
            f" seq {f.seq}) below its replay window (top {top}): a replay or a very late"
            f" retry, refused" + (f"; {more} more since the last report" if more else ""),
            device=dev_id,
        )
        return "too_old"
