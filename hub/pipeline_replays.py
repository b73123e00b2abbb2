"""Retries and replays of accepted frames: which copies are signs of life, and reporting
frames below the replay window.

`ReplayChecks` is the part of `hub.pipeline.HubCore` behind rule 3 of its docstring: a
device's own retransmission of a stored frame still counts as a sign of life, a recording
replayed later does not, and a flood of frames below the window is one fault an hour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared import frame as F

if TYPE_CHECKING:
    from collections import Counter

    from hub.pipeline import Clock
    from hub.pipeline_acks import DeviceRuntime
    from hub.store import Store

# A recorded advert replayed later no longer counts as a sign of life once its receive time
# minus its age is this far from the event's time, plus 1/FRESH_DRIFT_DIV of its age (_fresh).
FRESH_SLACK_MS = 60_000
FRESH_DRIFT_DIV = 16
ORIGINS_KEPT = 16  # frames per device whose event time is remembered: > the 6 outbox slots
# Fault 204 (a frame below the replay window) is reported per device and class at most this
# often; what arrives in between is counted (_too_old). An hour: the default heartbeat, so a
# replay flood adds no more events than a device's own heartbeats would.
REPLAY_FAULT_EVERY_MS = 60 * 60_000


class ReplayChecks:
    """A base of `hub.pipeline.HubCore`, which sets these and provides `hub_fault`."""

    store: Store
    clock: Clock
    counters: Counter[str]
    devices: dict[int, DeviceRuntime]
    hub_fault: Any

    def _fresh(self, dev_id: int, f: F.Frame, now: int) -> bool:
        """Was this copy of an accepted frame transmitted just now? A device's retransmissions
        carry the event's age, under the tag: receive time minus age stays at the event's time
        for every genuine copy, while a copy recorded and replayed later lands as much later.
        The slack covers the age's coarse steps (1 min above 54 min) and a device clock
        running some percent off over a long retry."""
        slack = FRESH_SLACK_MS + f.age_ms // FRESH_DRIFT_DIV
        origin = self.devices[dev_id].origins.get(f.seq)  # mono ms, frames accepted this run
        if origin is not None:
            return abs(now - f.age_ms - origin) <= slack
        ev = self.store.get(self.store.ref_for(dev_id, f.seq))  # accepted before a restart
        return ev is not None and abs(self.clock.wall_ms() - f.age_ms - ev.event_ms) <= slack

    def _too_old(self, dev_id: int, f: F.Frame, top: int, now: int) -> None:
        """A frame below the replay window: refused, and reported as fault 204, per device
        and class (alarm / routine) at most once every REPLAY_FAULT_EVERY_MS; the rest are
        counted and the count goes into the next report. A replay of recorded adverts is
        thus one event an hour, not one per advert, while a genuine alarm retried from
        below the window (the device tries for ever) is reported again each hour it lasts."""
        rt = self.devices[dev_id]
        self.counters["too_old"] += 1
        rt.too_old += 1
        alarm = F.is_alarm(f.mtype)
        last = rt.too_old_reported.get(alarm)
        if last is not None and now - last < REPLAY_FAULT_EVERY_MS:
            rt.too_old_unreported[alarm] = rt.too_old_unreported.get(alarm, 0) + 1
            self.counters["too_old_unreported"] += 1
            return
        more = rt.too_old_unreported.pop(alarm, 0)
        rt.too_old_reported[alarm] = now
        self.hub_fault(
            204,
            f"device {dev_id:08x} sent {'an alarm' if alarm else 'a frame'} (type {f.mtype},"
            f" seq {f.seq}) below its replay window (top {top}): a replay or a very late"
            f" retry, refused" + (f"; {more} more since the last report" if more else ""),
            device=dev_id,
        )
