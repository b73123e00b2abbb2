"""The hub store's memory overflow: events held while the disk cannot be written.

Bounded: every alarm-class event is kept whatever the bound; above `max_len` routine events
are dropped, those already delivered first, then the oldest (`dropped` counts them).
Insertion order is arrival order, which is the order they reach the disk and the uplink.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from hub.store_types import DELIVERED, HELP, PENDING, Event, Record, event_from_row

Mark = tuple[int, int | None, int | None]  # (state, delivered_ms, help_ms)


def merge_mark(old: Mark | None, state: int, when_ms: int) -> Mark:
    """Climb to `state` at `when_ms`; states never go down and first times are kept.
    HELP implies DELIVERED, so it sets delivered_ms too if it was not set."""
    st, dms, hms = old if old is not None else (PENDING, None, None)
    return (max(st, state), dms if dms is not None else when_ms,
            hms if hms is not None or state < HELP else when_ms)


class Held:
    """One event held in memory, with its delivery state."""

    __slots__ = ("rec", "ref", "state", "delivered_ms", "help_ms")

    def __init__(self, rec: Record, ref: str) -> None:
        self.rec = rec
        self.ref = ref
        self.state = PENDING if rec.delivered_ms is None else DELIVERED
        self.delivered_ms: int | None = rec.delivered_ms
        self.help_ms: int | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.rec.device_id, self.rec.seq)

    def mark(self, state: int, when_ms: int) -> None:
        self.state, self.delivered_ms, self.help_ms = merge_mark(
            (self.state, self.delivered_ms, self.help_ms), state, when_ms)

    def row(self) -> tuple[Any, ...]:
        """Values for the INSERT in hub/store_disk.py (EVENT_COLUMNS without id)."""
        r = self.rec
        return (self.ref, r.device_id, r.seq, r.mtype, r.arg, int(r.alarm), r.event_ms,
                r.recv_ms, r.recv_mono_ms, r.rssi, r.attempt, r.payload_json, self.state,
                self.delivered_ms, self.help_ms)

    def event(self) -> Event:
        return event_from_row((None, *self.row()), durable=False)


class Overflow:
    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self.dropped = 0
        self._by_key: OrderedDict[tuple[int, int], Held] = OrderedDict()
        self._by_ref: dict[str, Held] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Held]:
        return iter(list(self._by_key.values()))

    def by_key(self, key: tuple[int, int]) -> Held | None:
        return self._by_key.get(key)

    def by_ref(self, ref: str) -> Held | None:
        return self._by_ref.get(ref)

    def alarms(self) -> int:
        return sum(1 for h in self._by_key.values() if h.rec.alarm)

    def clear(self) -> None:
        self._by_key.clear()
        self._by_ref.clear()

    def add(self, held: list[Held]) -> int:
        """Hold `held` (in order); returns how many routine events were dropped to fit."""
        for h in held:
            self._by_key[h.key] = h
            self._by_ref[h.ref] = h
        excess = len(self._by_key) - self.max_len
        if excess <= 0:
            return 0
        routine = [h for h in self._by_key.values() if not h.rec.alarm]
        routine.sort(key=lambda h: h.state == PENDING)  # stable: delivered first, then oldest
        victims = routine[:excess]
        for h in victims:
            del self._by_key[h.key]
            del self._by_ref[h.ref]
        self.dropped += len(victims)
        return len(victims)
