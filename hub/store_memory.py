"""The hub store's memory side: what waits for the next commit, and the disk fault that holds it.

`Unwritten` keeps, until `hub/store.py` commits them: delivery marks, state blobs and device
rows (device rows, and marks made with commit=False, ride along with any commit; the rest waits
only while the disk fails), and the events held while the disk cannot be written.

Disk full / I/O errors. A write that fails with a storage error (SQLITE_FULL, SQLITE_IOERR,
read-only, corrupt, ...) is rolled back and the store goes to memory: new events are held in
an overflow queue (`durable=False`, `status=None`: do not tell the device STORED; it may be
told DELIVERED once the platform confirms), `fault` says what is wrong and `on_fault` is
called; delivery marks, state blobs and device rows queue with them. On a full disk the
store first releases its reserve file and evicts the oldest delivered routine events, then
retries (store_file.py, store_reserve.py), so alarms stay durable on a full disk while the
reserve or routine history can make room. A file that cannot be opened at all holds
everything here the same way (`failed(action="open")`) until it opens. Each later
write (at most every `retry_interval_s`) or `flush_overflow()` commits the whole queue,
oldest first, in ONE transaction: held events get ids after every event already on disk, so
order is kept, and a state blob never reaches the disk ahead of the events before it.
Success clears `fault`. While `fault` is set the daemon should call `flush_overflow()` every
few seconds: nothing else retries when no frames come. Held events die with the process:
that is why they are never acknowledged as STORED.

The overflow is bounded: every alarm-class event is kept whatever the bound; above `max_len`
routine events are dropped, those already delivered first, then the oldest (`dropped` counts
them). Insertion order is arrival order, which is the order they reach the disk and the uplink.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from hub.store_schema import errname
from hub.store_types import DELIVERED, HELP, PENDING, Event, Record, event_from_row

log = logging.getLogger("carebeacon.store")

Mark = tuple[int, int | None, int | None]  # (state, delivered_ms, help_ms)


def merge_mark(old: Mark | None, state: int, when_ms: int) -> Mark:
    """Climb to `state` at `when_ms`; states never go down and first times are kept.
    HELP implies DELIVERED, so it sets delivered_ms too if it was not set."""
    st, dms, hms = old if old is not None else (PENDING, None, None)
    return (
        max(st, state),
        dms if dms is not None else when_ms,
        hms if hms is not None or state < HELP else when_ms,
    )


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
            (self.state, self.delivered_ms, self.help_ms), state, when_ms
        )

    def row(self) -> tuple[Any, ...]:
        """Values for the INSERT in hub/store_disk.py (EVENT_COLUMNS without id)."""
        r = self.rec
        return (
            self.ref,
            r.device_id,
            r.seq,
            r.mtype,
            r.arg,
            int(r.alarm),
            r.event_ms,
            r.recv_ms,
            r.recv_mono_ms,
            r.rssi,
            r.attempt,
            r.payload_json,
            self.state,
            self.delivered_ms,
            self.help_ms,
        )

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


class Unwritten:
    """Everything waiting in memory for the store's next successful commit, and the fault."""

    def __init__(
        self,
        path: str,
        overflow_max: int,
        retry_interval_s: float,
        on_fault: Callable[[str | None], None] | None,
    ) -> None:
        self.path = path
        self.held = Overflow(overflow_max)
        self.marks: dict[str, Mark] = {}
        self.states: dict[str, bytes] = {}
        self.touched: dict[int, dict[str, Any]] = {}
        self.retry_interval_s = retry_interval_s
        self.on_fault = on_fault
        self.fault: str | None = None
        self.fault_since_ms: int | None = None
        self.write_errors = 0  # failed write transactions
        self._retry_at = 0.0
        self._unreported = False  # a fault set while constructing: on_fault not called yet

    def queued(self) -> bool:
        """Something a commit must write (device rows alone never force one)."""
        return bool(len(self.held) or self.marks or self.states)

    def backing_off(self, force: bool) -> bool:
        """The disk failed a moment ago: stay in memory rather than retry on every frame."""
        return self.fault is not None and not force and time.monotonic() < self._retry_at

    def state(self, ref: str, disk_state: int) -> int:
        """An event's delivery state: the disk's, or higher if marked in memory."""
        m = self.marks.get(ref)
        return disk_state if m is None else max(disk_state, m[0])

    def marked(self) -> set[str]:
        """Refs marked delivered (or helped) in memory only: no longer pending."""
        return {ref for ref, m in self.marks.items() if m[0] > PENDING}

    def mark(self, ref: str, old: Mark, state: int, when_ms: int) -> bool:
        """Queue `ref` climbing from `old` to `state`; False if it is there already."""
        if old[0] >= state:
            return False
        self.marks[ref] = merge_mark(old, state, when_ms)
        return True

    def overlay(self, e: Event) -> Event:
        """An event read from disk, with its delivery state as marked in memory."""
        m = self.marks.get(e.ref)
        if m is None or m[0] <= e.state:
            return e
        return dataclasses.replace(
            e,
            state=m[0],
            delivered_ms=m[1] if e.delivered_ms is None else e.delivered_ms,
            help_ms=m[2] if e.help_ms is None else e.help_ms,
        )

    def hold(self, new: list[Held]) -> None:
        """The disk failed: keep these events in memory (bounded, never dropping an alarm)."""
        dropped = self.held.add(new)
        if dropped:
            log.warning(
                "%s: memory overflow full: dropped %d routine events (%d in all)",
                self.path,
                dropped,
                self.held.dropped,
            )

    def written(self) -> None:
        """The commit succeeded: nothing waits any more, and a fault is over."""
        self.held.clear()
        self.marks.clear()
        self.states.clear()
        self.touched.clear()
        if self.fault is not None:
            log.warning("%s: the store is writable again; fault cleared", self.path)
            self.fault = self.fault_since_ms = None
            if self.on_fault is not None and not self._unreported:
                self.on_fault(None)
            self._unreported = False

    def failed(self, e: BaseException, action: str = "write", report: bool = True) -> None:
        """The commit (or, action="open", the opening of the file) failed with a storage
        error: everything stays here; report the fault. report=False (while the store is
        being constructed, maybe outside the caller's event loop) sets the fault and calls
        `on_fault` at the next failure instead, even if its reason is the same."""
        self.write_errors += 1
        self._retry_at = time.monotonic() + self.retry_interval_s
        reason = (
            "%s: cannot %s the store (%s: %s); new events are held in memory, not"
            " durable" % (self.path, action, errname(e), e)
        )
        if reason == self.fault and not self._unreported:
            return
        if reason != self.fault:
            log.error("%s", reason)
        if self.fault is None:
            self.fault_since_ms = time.time_ns() // 1_000_000
        self.fault = reason
        self._unreported = not report
        if report and self.on_fault is not None:
            self.on_fault(reason)
