"""The hub store's SQLite file and what keeps the store working when the disk fails.

`StoreFile` is the base of `hub.store.Store`: one connection opened by store_schema.open_db,
behind one lock (see "Threads" in hub/store.py), the memory side (store_memory.Unwritten) and
the one write path, `_write`, that commits everything queued in memory in one transaction, or
on a storage error (disk full, I/O error, read-only, corrupt, ...) keeps holding it there. A
failed read is logged and answered from memory. On a full disk the oldest delivered routine
events are evicted to make room (`_make_room`) before the write is retried once.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Self, TypeVar

from hub import store_disk as disk
from hub.store_memory import Held, Unwritten
from hub.store_schema import errname, open_db
from hub.store_types import Event, StoreError, event_from_row

log = logging.getLogger("carebeacon.store")

_ROOM_BATCH = 500  # delivered routine events evicted per attempt when the disk is full
_NOT_STORAGE = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)
_T = TypeVar("_T")


def is_storage_error(e: BaseException) -> bool:
    """Errors of the disk or the file, not of our SQL or data: these send events to memory."""
    return isinstance(e, sqlite3.DatabaseError) and not isinstance(e, _NOT_STORAGE)


def _now_ms() -> int:
    return int(time.time() * 1000)


class StoreFile:
    def __init__(
        self,
        path: str,
        sync: str,
        overflow_max: int,
        retry_interval_s: float,
        on_fault: Callable[[str | None], None] | None,
    ) -> None:
        """Open (creating and migrating) the file at `path`; arguments already validated."""
        self.path = path
        self.sync = sync
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._db, self.journal_mode = open_db(self.path, self.sync)
        # Only an fsynced commit may be reported durable (and acknowledged as STORED).
        self._fsync = self.sync in ("FULL", "EXTRA")
        self._mem = Unwritten(self.path, overflow_max, float(retry_interval_s), on_fault)
        self._held = self._mem.held
        self.room_made = 0  # delivered routine events evicted because the disk was full

    # -- disk faults ----------------------------------------------------------------------
    @property
    def fault(self) -> str | None:
        """Why the disk cannot be written (new events held in memory), or None."""
        return self._mem.fault

    @property
    def fault_since_ms(self) -> int | None:
        return self._mem.fault_since_ms

    @property
    def write_errors(self) -> int:
        """Failed write transactions."""
        return self._mem.write_errors

    @property
    def dropped(self) -> int:
        """Routine events dropped from the memory overflow (never alarms)."""
        return self._held.dropped

    # -- commits and lifecycle ------------------------------------------------------------
    def commit(self) -> bool:
        """Write what waits in memory (marks made with commit=False, device rows) in one
        transaction. True when nothing is left waiting. While the disk fails it retries at
        most every `retry_interval_s`, as any write does."""
        with self._lock:
            if not self._mem.queued() and not self._mem.touched:
                return True  # also after close(), which wrote it all
            self._conn()
            return self._write([]) is not None

    def flush_overflow(self) -> bool:
        """Try now to write everything held in memory. True when nothing is left held."""
        with self._lock:
            self._conn()
            if not self._mem.queued() and not self._mem.touched:
                return True
            return self._write([], force=True) is not None

    def close(self) -> None:
        """Write what is held in memory if the disk allows, then close. Idempotent."""
        with self._lock:
            if self._db is None:
                return
            if not self.flush_overflow() and len(self._held):
                log.error(
                    "%s: closing with %d events only in memory (%d alarms): not durable,"
                    " never acknowledged as stored; devices will retry them",
                    self.path,
                    len(self._held),
                    self._held.alarms(),
                )
            self._db.close()
            self._db = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("%s: the store is closed" % self.path)
        return self._db

    def _try(self, default: Any, fn: Callable[..., _T], *args: Any) -> _T:
        """fn(*args); on a storage error log it and return `default` (memory still serves)."""
        try:
            return fn(*args)
        except sqlite3.DatabaseError as e:
            if not is_storage_error(e):
                raise
            log.error("%s: cannot read the store (%s: %s)", self.path, errname(e), e)
            return default

    def _iter(self, sql: str, args: tuple[Any, ...]) -> Iterator[Event]:
        """Events from a query, lazily (pending() stops at its limit); marks applied."""
        cur = None
        try:
            cur = self._conn().execute(sql, args)
            for row in cur:
                yield self._mem.overlay(event_from_row(row, self._fsync))
        except sqlite3.DatabaseError as e:
            if not is_storage_error(e):
                raise
            log.error("%s: cannot read events (%s: %s)", self.path, errname(e), e)
        finally:
            if cur is not None:
                cur.close()  # stopped early: end the statement's read snapshot now

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Event]:
        return list(self._iter(sql, args))

    def _write(
        self, new: list[Held], force: bool = False
    ) -> dict[tuple[int, int], tuple[int, bool]] | None:
        """Commit everything queued, then `new`, in one transaction. Returns {key: (id,
        existed)} for the events written, or None if the disk failed (nothing written)."""
        if self._mem.backing_off(force):
            return None
        db = self._conn()
        m = self._mem
        for attempt in (0, 1):
            try:
                ids = disk.commit(db, [*m.held, *new], m.marks, m.states, m.touched, _now_ms())
            except sqlite3.DatabaseError as e:
                if not is_storage_error(e):
                    raise
                code = getattr(e, "sqlite_errorcode", 0) & 0xFF
                if attempt == 0 and code == sqlite3.SQLITE_FULL and self._make_room():
                    continue
                m.failed(e)
                return None
            m.written()
            return ids
        return None  # not reached

    def _make_room(self) -> int:
        """Disk full: evict the oldest delivered routine events so their pages are reused."""
        try:
            n = disk.evict_delivered_routine(self._conn(), _ROOM_BATCH)
        except sqlite3.DatabaseError as e:
            if not is_storage_error(e):
                raise
            log.error(
                "%s: disk full, and evicting routine events failed too (%s: %s)",
                self.path,
                errname(e),
                e,
            )
            return 0
        if n:
            self.room_made += n
            log.warning(
                "%s: disk full: evicted %d delivered routine events to make room", self.path, n
            )
        return n
