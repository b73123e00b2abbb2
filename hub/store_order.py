"""Uplink order for the hub store's `pending()`: alarms first, each device's own order kept.

The protocol forwards alarm-class events first; the issue demands per-device order on the
uplink. Both hold when an event is *promoted* iff its device has an undelivered alarm at or
after it in arrival order: each device's promoted events are then a prefix of its own queue.
Promoted events go first, in arrival order, then the rest, in arrival order.

Arrival order is: events on disk by id, then events held in memory (they arrived later; they
get larger ids when they reach the disk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from hub.store_memory import Held
from hub.store_types import Event

_ALL = 2**62  # "every id": a device with an alarm in memory has all its disk events promoted


def uplink_order(
    *,
    limit: int,
    skip: set[str] | frozenset[str],
    alarms_first: bool,
    disk_alarms: Iterable[tuple[int, int, str]],
    held: list[Held],
    disk_promoted: Callable[[dict[int, int]], Iterator[Event]],
    disk_pending: Callable[[], Iterator[Event]],
) -> list[Event]:
    """Up to `limit` events, skipping refs in `skip`.

    disk_alarms:   (device_id, id, ref) of undelivered alarms on disk (already filtered of
                   those marked delivered in memory)
    held:          undelivered events held in memory, in arrival order
    disk_promoted: {device_id: last id to promote} -> those devices' pending events by id
    disk_pending:  () -> every pending event on disk by id (read lazily; stops at `limit`)
    """
    hot: dict[int, int] = {}  # device -> last disk id to promote
    held_hot: dict[int, int] = {}  # device -> last index in `held` to promote
    if alarms_first:
        for dev, eid, _ref in disk_alarms:
            hot[dev] = max(eid, hot.get(dev, 0))
        for i, h in enumerate(held):
            if h.rec.alarm:
                held_hot[h.rec.device_id] = i
                hot[h.rec.device_id] = _ALL
    out: list[Event] = []

    def take(events: Iterable[Event]) -> bool:
        for e in events:
            if e.ref not in skip:
                out.append(e)
                if len(out) >= limit:
                    return True
        return False

    def held_promoted(i: int, h: Held) -> bool:
        return i <= held_hot.get(h.rec.device_id, -1)

    if limit <= 0:
        return out
    if hot and take(disk_promoted(hot)):
        return out
    if take(h.event() for i, h in enumerate(held) if held_promoted(i, h)):
        return out
    if take(e for e in disk_pending() if e.id is None or e.id > hot.get(e.device_id, -1)):
        return out
    take(h.event() for i, h in enumerate(held) if not held_promoted(i, h))
    return out
