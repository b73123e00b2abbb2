"""The hub's durable store: every verified frame, its delivery state, and small state blobs.

One SQLite file in WAL mode, written only through `Store`. Layers: `store_types.py` (Record,
Event, Added, errors), `store_schema.py` (pragmas, schema versions, migrations),
`store_disk.py` (all SQL), `store_memory.py` (what waits in memory for a commit, the
overflow queue, disk faults), `store_file.py` (Store's base: the connection, its lock, the
one write path and what it does when the disk fails), `store_order.py` (uplink order).

Typical use by the daemon, per group of frames received within a few ms:
    r = window.check(seq) ...; window.accept(seq)          (shared/replay.py)
    res = store.add_many(records, states={"replay:%d" % dev: window.to_bytes()})
    for a in res: if a.status: acknowledge(a.status)      (never when a.status is None)
and, on the uplink: pending(exclude=in_flight) -> publish -> per PUBACK
mark_delivered(ref, commit=False), then one commit() per batch (or mark_delivered_many).

Durability. `add`/`add_many` insert in ONE transaction and COMMIT before returning; with
`synchronous=FULL` (the default) the commit fsyncs the WAL, so `durable` / `status ==
ACK_STORED` means the frame survives a crash or a power cut (as far as the card honours
flushes). Only then may the device be told STORED. `sync="NORMAL"` (benchmarks) skips that
fsync and so never reports anything durable. SD cards are slow per fsync: group frames into
one `add_many` and pass the replay-window blobs as `states=` so they share the commit.

Deduplication. (device_id, seq) is UNIQUE: a retry of a stored frame stores nothing and
returns `is_new=False` with the status to acknowledge it again. The message reference
`<hub_id>:<device_id as 8 hex digits>:<seq>` (hub.contract.make_ref; device_id 0 = an event
the hub raises itself) is deterministic, so after a crash between the platform's PUBACK and
`mark_delivered` the event is published again with the same ref and the platform
deduplicates on it. `hub_id` is required, not defaulted: two hubs with one id could make the
platform drop one hub's alarm as the other's duplicate.

Uplink order. `id` (AUTOINCREMENT, never reused) is arrival order. `pending()` returns
undelivered events ALARMS FIRST, as the protocol promises, without ever reordering one
device's events (rule and reasoning: `store_order.py`); `alarms_first=False` gives plain id
order. Pass the refs in flight as `exclude`, so a new alarm never overtakes its own device's
earlier in-flight events.

Disk full / I/O errors: the store goes on in memory, never acknowledging a held event as
STORED, with `fault` set until a commit succeeds again (store_memory.py tells how). While
`fault` is set the daemon should call `flush_overflow()` every few seconds. The overflow
keeps every alarm; above `overflow_max` it drops routine events (`dropped`). A full disk first
costs the reserve file and old routine history (store_reserve.py); a file that will not open
starts the store in memory too, never raising (`file_open`, store_file.py).

Retention (`prune`, call it e.g. hourly): delivered routine events older than
`retention_days` go, then the oldest delivered routine events while more than `max_events`
remain. Alarm-class events (types 1..6) and undelivered events are never deleted;
`PruneResult.over_capacity` reports what is left above the bound.

Threads. One connection, opened with check_same_thread=False, and every public method holds
one lock: call it from the asyncio thread, or from ONE executor thread so fsyncs do not stall
the event loop. One writing process only; a status CLI may read the file.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hub import store_disk as disk
from hub.store_file import StoreFile, is_storage_error
from hub.store_memory import Held
from hub.store_order import uplink_order
from hub.store_reserve import DEFAULT_BYTES
from hub.store_schema import SYNC_MODES, errname
from hub.store_types import (
    DELIVERED,
    DEVICE_FIELDS,
    HELP,
    PENDING,
    Added,
    Event,
    PruneResult,
    Record,
    StoreError,
    ack_status,
    check_blob,
    check_device_fields,
    check_hub_id,
    make_ref,
)

__all__ = [
    "Store",
    "Record",
    "Event",
    "Added",
    "PruneResult",
    "StoreError",
    "PENDING",
    "DELIVERED",
    "HELP",
]

log = logging.getLogger("carebeacon.store")

_DAY_MS = 86_400_000


class Store(StoreFile):
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        hub_id: str,
        max_events: int = 200_000,
        retention_days: int = 90,
        sync: str = "FULL",
        overflow_max: int = 10_000,
        retry_interval_s: float = 2.0,
        on_fault: Callable[[str | None], None] | None = None,
        reserve_bytes: int = DEFAULT_BYTES,
    ) -> None:
        self.hub_id = check_hub_id(hub_id)
        for name, v, lo in (
            ("max_events", max_events, 1),
            ("retention_days", retention_days, 1),
            ("overflow_max", overflow_max, 0),
            ("reserve_bytes", reserve_bytes, 0),
        ):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError("%s=%r: must be an integer >= %d" % (name, v, lo))
        if not isinstance(retry_interval_s, int | float) or retry_interval_s < 0:
            raise ValueError("retry_interval_s=%r: must be a number >= 0" % (retry_interval_s,))
        if not isinstance(sync, str) or sync.upper() not in SYNC_MODES:
            raise ValueError("sync=%r: must be one of %s" % (sync, ", ".join(SYNC_MODES)))
        self.max_events = max_events
        self.retention_days = retention_days
        args = (sync.upper(), overflow_max, retry_interval_s, on_fault, reserve_bytes)
        super().__init__(os.fspath(path), *args)

    def ref_for(self, device_id: int, seq: int) -> str:
        """The message reference of a frame: the same for every retry, across restarts."""
        return make_ref(self.hub_id, device_id, seq)

    # -- adding ---------------------------------------------------------------------------
    def add(
        self, rec: Record | Mapping[str, Any], *, states: Mapping[str, bytes] | None = None
    ) -> Added:
        """Store one frame (and `states` blobs) in one commit; see `add_many`."""
        return self.add_many([rec], states=states)[0]

    def add_many(
        self,
        recs: Iterable[Record | Mapping[str, Any]],
        *,
        states: Mapping[str, bytes] | None = None,
    ) -> list[Added]:
        """Store frames and `states` blobs in ONE commit, fsynced before returning.

        One `Added` per record. A frame already stored (same device_id and seq, also twice
        in one batch) stores nothing: `is_new=False` and `.status` is its current status.
        """
        batch = [Record.coerce(r) for r in recs]
        blobs = {n: check_blob(n, b) for n, b in (states or {}).items()}
        with self._lock:
            db = self._conn()
            out: list[Added | None] = [None] * len(batch)
            new: list[Held] = []
            first: dict[tuple[int, int], int] = {}
            for i, r in enumerate(batch):
                key = (r.device_id, r.seq)
                h = self._held.by_key(key)
                if h is not None:
                    out[i] = Added(None, False, False, h.ref, ack_status(h.state, False))
                elif key not in first:
                    # Unreadable disk: treat as new; INSERT OR IGNORE settles it when written.
                    row = self._try(None, disk.lookup, db, key)
                    if row is not None:
                        st = self._mem.state(row[1], row[2])
                        out[i] = Added(
                            row[0], False, self._fsync, row[1], ack_status(st, self._fsync)
                        )
                    else:
                        first[key] = i
                        new.append(Held(r, self.ref_for(*key)))
            self._mem.states.update(blobs)
            ids = self._write(new) if new or self._mem.queued() else {}
            if ids is None:
                self._mem.hold(new)
            for h in new:
                if ids is None:
                    out[first[h.key]] = Added(None, True, False, h.ref, None)
                else:
                    eid, existed = ids[h.key]
                    out[first[h.key]] = Added(
                        eid, not existed, self._fsync, h.ref, ack_status(h.state, self._fsync)
                    )
            for i, r in enumerate(batch):
                if out[i] is None:  # a second copy within the batch
                    a = out[first[(r.device_id, r.seq)]]
                    assert a is not None
                    out[i] = Added(a.event_id, False, a.durable, a.ref, a.status)
            return out  # type: ignore[return-value]

    # -- delivery state -------------------------------------------------------------------
    def mark_delivered(self, ref: str, when_ms: int, *, commit: bool = True) -> bool:
        """The platform's broker confirmed `ref`. False if the store does not know it.

        commit=False: the mark holds in memory at once (pending(), get() and status_of() see
        it) and is written by the next commit, or by `commit()`: many marks, one fsync. Lost
        in a crash before that, the event is simply published again under the same ref."""
        return self._mark([ref], DELIVERED, when_ms, commit) == 1

    def mark_delivered_many(self, refs: Iterable[str], when_ms: int) -> int:
        """`mark_delivered` for many refs in one commit; returns how many were known."""
        return self._mark(list(refs), DELIVERED, when_ms)

    def mark_help(self, ref: str, when_ms: int) -> bool:
        """An operator acknowledged `ref` (implies delivered). False if unknown."""
        return self._mark([ref], HELP, when_ms) == 1

    def _mark(self, refs: list[str], state: int, when_ms: int, commit: bool = True) -> int:
        with self._lock:
            db = self._conn()
            known = 0
            queued = False
            for ref in refs:
                h = self._held.by_ref(ref)
                if h is not None:  # written with its state when the overflow is flushed
                    h.mark(state, when_ms)
                    known += 1
                    continue
                old = self._mem.marks.get(ref)
                if old is None:
                    # Unreadable disk: queue the UPDATE anyway (a no-op if the ref is unknown).
                    old = self._try((PENDING, None, None), disk.mark_of, db, ref)
                    if old is None:
                        continue
                known += 1
                queued = self._mem.mark(ref, old, state, when_ms) or queued
            if queued and commit:
                self._write([])
            return known

    # -- reading --------------------------------------------------------------------------
    def get(self, ref: str) -> Event | None:
        with self._lock:
            h = self._held.by_ref(ref)
            if h is not None:
                return h.event()
            rows = self._rows(disk.BY_REF_SQL, (ref,))
            return rows[0] if rows else None

    def awaiting_help(self, since_ms: int) -> list[Event]:
        """Alarm-class events delivered at or after `since_ms` that no operator acknowledged."""
        with self._lock:
            return self._rows(disk.AWAITING_HELP_SQL, (since_ms,))

    def superseding(self) -> list[Event]:
        """Every stored event that cancels or supersedes another."""
        with self._lock:
            return self._rows(disk.SUPERSEDING_SQL, ())

    def status_of(self, device_id: int, seq: int) -> int | None:
        """The acknowledgement status for a repeated frame (ACK_STORED/DELIVERED/HELP), or
        None: unknown, or held in memory and not delivered yet (do not acknowledge)."""
        with self._lock:
            db = self._conn()
            h = self._held.by_key((device_id, seq))
            if h is not None:
                return ack_status(h.state, False)
            row = self._try(None, disk.lookup, db, (device_id, seq))
            if row is None:
                return None
            return ack_status(self._mem.state(row[1], row[2]), self._fsync)

    def pending(
        self, limit: int = 100, *, alarms_first: bool = True, exclude: Iterable[str] = ()
    ) -> list[Event]:
        """Up to `limit` undelivered events in uplink order: alarms first, each device's own
        order kept (hub/store_order.py). `exclude`: refs to skip, e.g. those in flight."""
        skip = exclude if isinstance(exclude, set | frozenset) else set(exclude)
        with self._lock:
            db = self._conn()
            marked = self._mem.marked()  # no longer pending, though not written yet
            if marked:
                skip = skip | marked
            return uplink_order(
                limit=limit,
                skip=skip,
                alarms_first=alarms_first,
                disk_alarms=[
                    a for a in self._try([], disk.pending_alarms, db) if a[2] not in marked
                ]
                if alarms_first
                else [],
                held=[h for h in self._held if h.state == PENDING],
                disk_promoted=lambda hot: self._iter(disk.PROMOTED_SQL, (json.dumps(hot),)),
                disk_pending=lambda: self._iter(disk.PENDING_SQL, ()),
            )

    def pending_summary(self, alarms: int = 50) -> tuple[int, list[str]]:
        """(how many events `pending()` would return without a limit, the refs of up to
        `alarms` pending alarm-class events), counted and picked without reading the backlog."""
        with self._lock:
            db = self._conn()
            marked = self._mem.marked()
            held = [h for h in self._held if h.state == PENDING]
            refs = [h.ref for h in held if h.rec.alarm]
            refs += [a[2] for a in self._try([], disk.pending_alarms, db) if a[2] not in marked]
            n = len(held) + self._try(0, disk.pending_count, db, marked)
            return n, refs[:alarms]

    # -- retention ------------------------------------------------------------------------
    def prune(self, now_ms: int) -> PruneResult:
        """Apply the retention policy (module docstring): never deletes an alarm-class or an
        undelivered event. Then retries writing anything held in memory."""
        with self._lock:
            if not self.file_open and not self.flush_overflow():  # opens it, if it can
                return PruneResult(error=self.fault)
            db = self._conn()
            try:
                expired, trimmed, left = disk.prune(
                    db, now_ms - self.retention_days * _DAY_MS, self.max_events
                )
            except sqlite3.DatabaseError as e:
                if not is_storage_error(e):
                    raise
                reason = "%s: prune failed (%s: %s)" % (self.path, errname(e), e)
                log.warning("%s", reason)
                return PruneResult(error=reason)
            over = max(0, left - self.max_events)
            if over:
                log.warning(
                    "%s: %d events, %d over max_events=%d: all alarms or undelivered",
                    self.path,
                    left,
                    over,
                    self.max_events,
                )
            if self._mem.queued():
                self._write([], force=True)
            self._reserve.ensure(force=True)  # set aside again if the disk has room now
            return PruneResult(expired, trimmed, left, over)

    # -- state blobs and devices ----------------------------------------------------------
    def put_state(self, name: str, blob: bytes) -> bool:
        """Save a named blob (a replay window, the inactivity detector) durably. True when
        committed; False when held in memory because the disk cannot be written (it is
        written with the events held before it, never ahead of them)."""
        b = check_blob(name, blob)
        with self._lock:
            self._conn()
            self._mem.states[name] = b
            return self._write([]) is not None

    def get_state(self, name: str) -> bytes | None:
        """The blob last put under `name` (memory first), or None. StoreError if unreadable."""
        with self._lock:
            db = self._conn()
            if name in self._mem.states:
                return self._mem.states[name]
            try:
                row = db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
            except sqlite3.DatabaseError as e:
                if not is_storage_error(e):
                    raise
                raise StoreError(
                    "%s: cannot read state %r (%s: %s)" % (self.path, name, errname(e), e)
                ) from e
            return None if row is None else bytes(row[0])

    def touch_device(self, device_id: int, **fields: Any) -> None:
        """Update a device's status row (last_seen_ms, rssi, battery, availability). Kept in
        memory and written with the next commit: no fsync of its own, it is not an alarm."""
        check_device_fields(device_id, fields)
        with self._lock:
            self._mem.touched.setdefault(device_id, {}).update(fields)

    def devices(self) -> list[dict[str, Any]]:
        """One dict per device: device_id, last_seen_ms, rssi, battery, availability."""
        with self._lock:
            db = self._conn()
            rows = self._try({}, disk.devices, db)
            for dev, f in self._mem.touched.items():
                rows.setdefault(dev, dict.fromkeys(("device_id", *DEVICE_FIELDS))).update(
                    f, device_id=dev
                )
            return [rows[d] for d in sorted(rows)]

    # -- health ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters for the status CLI and health reports."""
        with self._lock:
            db = self._conn()
            n, pend, pend_alarms = self._try((None, None, None), disk.counts, db)
            return {
                "path": self.path,
                "journal_mode": self.journal_mode,
                "sync": self.sync,
                "events": n,
                "pending": pend,
                "pending_alarms": pend_alarms,
                "held": len(self._held),
                "held_alarms": self._held.alarms(),
                "dropped": self.dropped,
                "write_errors": self.write_errors,
                "room_made": self.room_made,
                "reserve": self.reserve_present,
                "file_open": self.file_open,
                "fault": self.fault,
                "fault_since_ms": self.fault_since_ms,
            }
