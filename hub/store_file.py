"""The hub store's SQLite file and what keeps the store working when the disk fails.

`StoreFile` is the base of `hub.store.Store`: one connection opened by store_schema.open_db,
behind one lock (see "Threads" in hub/store.py), the memory side (store_memory.Unwritten) and
the one write path, `_write`, that commits everything queued in memory in one transaction, or
on a storage error (disk full, I/O error, read-only, corrupt, ...) keeps holding it there. A
failed read is logged and answered from memory.

Disk full (`_make_room`, before the write is retried): the store deletes its reserve file
(store_reserve.py), checkpoints so the WAL can start over in the space it already has, and
evicts the oldest delivered routine events so that their pages are reused. The reserve is
what makes this work on a truly full filesystem, where the eviction itself needs room.

A file that cannot be opened (disk full, read-only, I/O error: store_schema.StoreUnavailable)
does not stop the store, nor the hub: it starts from memory with `fault` set, reading what it
can through store_schema.open_readonly (`state_unknown` when it could read nothing of an
existing file), and every later write or `flush_overflow()` tries to open it again; once it
opens, what was held in memory is written as after any fault. `on_fault` is not called while
the store is being constructed (the daemon builds it outside its event loop) but at the
first failed retry, even though the reason is the same.
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
from hub.store_reserve import FULL_BELOW, Reserve, free_bytes, is_disk_full
from hub.store_schema import StoreUnavailable, errname, open_db, open_readonly
from hub.store_types import Event, StoreError, event_from_row

log = logging.getLogger("carebeacon.store")

_ROOM_BATCH = 500  # delivered routine events evicted per attempt when the disk is full
_FREE_PAGES = 32  # low on space: keep this many free pages in the file (_keep_room)
_NOTHING_TO_EVICT_S = 60.0  # after finding none, look again only after this long
_ANY_STATE = "SELECT 1 FROM state LIMIT 1"
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
        reserve_bytes: int,
    ) -> None:
        """Open (creating and migrating) the file at `path`, or start from memory if the
        storage fails (module docstring); arguments already validated."""
        self.path = path
        self.sync = sync
        self._lock = threading.RLock()
        # Only an fsynced commit may be reported durable (and acknowledged as STORED).
        self._fsync = self.sync in ("FULL", "EXTRA")
        self._mem = Unwritten(self.path, overflow_max, float(retry_interval_s), on_fault)
        self._held = self._mem.held
        self.room_made = 0  # delivered routine events evicted because the disk was full
        self._evict_after = 0.0  # _keep_room found nothing to evict: not before then
        self._reserve = Reserve(self.path, reserve_bytes)
        self._unopened = False  # the file would not open: reads from open_readonly
        self.state_unknown = False  # ...which could read nothing of it
        self.read_errors = 0  # reads that failed (what they would have returned is unknown)
        self._db: sqlite3.Connection | None = None
        try:
            self._db, self.journal_mode = self._open()
        except StoreUnavailable as e:
            self._db, known = open_readonly(self.path)
            self.journal_mode = "unopened"
            self._unopened = True
            self.state_unknown = not known
            self._mem.failed(e.cause, "open", report=False)
            if not known:
                log.error(
                    "%s: starting with an empty state (replay windows, hub sequence, ...)"
                    " instead of the file's",
                    self.path,
                )
        else:
            self._reserve.ensure(force=True)

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
    def file_open(self) -> bool:
        """False while the file would not open (the store runs from memory, `fault` set)."""
        return not self._unopened

    @property
    def reserve_present(self) -> bool:
        """The space set aside for a full disk is there (store_reserve.py)."""
        return self._reserve.present

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
            if not self._unopened and not self._mem.queued() and not self._mem.touched:
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
            self.read_errors += 1
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
            self.read_errors += 1
        finally:
            if cur is not None:
                cur.close()  # stopped early: end the statement's read snapshot now

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Event]:
        return list(self._iter(sql, args))

    def _open(self) -> tuple[sqlite3.Connection, str]:
        """open_db; on a full disk once more after releasing the reserve."""
        try:
            return open_db(self.path, self.sync)
        except StoreUnavailable as e:
            if not (is_disk_full(e.cause, self._reserve.directory) and self._reserve.release()):
                raise
        return open_db(self.path, self.sync)

    def _reopen(self) -> bool:
        """The file would not open: try again. True once it is open (fault still set until
        the next commit succeeds)."""
        try:
            db, mode = self._open()
        except StoreError as e:
            self._mem.failed(e.cause if isinstance(e, StoreUnavailable) else e, "open")
            return False
        old, self._db, self.journal_mode, self._unopened = self._db, db, mode, False
        if old is not None:
            old.close()
        log.warning(
            "%s: the store file opened; writing the %d events held in memory",
            self.path,
            len(self._held),
        )
        if self.state_unknown and self._try(1, lambda: db.execute(_ANY_STATE).fetchone()):
            log.error(
                "%s: the state this hub started with was empty, not the file's: restart it"
                " to read the file's replay windows and sequence numbers",
                self.path,
            )
        self._reserve.ensure(force=True)
        return True

    def _write(
        self, new: list[Held], force: bool = False
    ) -> dict[tuple[int, int], tuple[int, bool]] | None:
        """Commit everything queued, then `new`, in one transaction. Returns {key: (id,
        existed)} for the events written, or None if the disk failed (nothing written)."""
        if self._mem.backing_off(force):
            return None
        if self._unopened and not self._reopen():
            return None
        db = self._conn()
        m = self._mem
        for attempt in range(3):
            try:
                ids = disk.commit(db, [*m.held, *new], m.marks, m.states, m.touched, _now_ms())
            except sqlite3.DatabaseError as e:
                if not is_storage_error(e):
                    raise
                if (
                    attempt < 2
                    and is_disk_full(e, self._reserve.directory)
                    and self._make_room(db)
                ):
                    continue
                m.failed(e)
                return None
            m.written()
            if not self._reserve.ensure():  # at once if present; else at most every RETRY_S
                self._keep_room(db)
            return ids
        return None  # not reached

    def _keep_room(self, db: sqlite3.Connection) -> None:
        """Without the reserve, on a disk with less free than it: checkpoint after every
        commit, so that the WAL starts over in the space it has instead of growing, and keep
        free pages in the file by evicting delivered routine events before it must grow.
        Otherwise, once the space left is gone, the next checkpoint needs more (for the new
        pages) and so does the eviction (for its WAL): a full disk only the reserve gets
        out of. Each commit then costs a checkpoint too: only while space is this short."""
        free = free_bytes(self._reserve.directory)
        if free is None or free >= max(self._reserve.size, FULL_BELOW):
            return
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if time.monotonic() < self._evict_after:
                return
            if db.execute("PRAGMA freelist_count").fetchone()[0] >= _FREE_PAGES:
                return
            n = disk.evict_delivered_routine(db, _ROOM_BATCH)
        except sqlite3.DatabaseError as e:
            if not is_storage_error(e):
                raise
            return
        if not n:
            self._evict_after = time.monotonic() + _NOTHING_TO_EVICT_S
            return
        self.room_made += n
        log.warning(
            "%s: disk almost full (%d KiB free): evicted %d delivered routine events to keep"
            " room in the store",
            self.path,
            free >> 10,
            n,
        )

    def _make_room(self, db: sqlite3.Connection) -> bool:
        """Disk full: release the reserve, checkpoint (the WAL then starts over in its own
        space), evict the oldest delivered routine events (their pages are reused). True if
        any of it happened, so the write may go through now."""
        freed = self._reserve.release()
        restarted = False
        try:
            busy, frames, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            restarted = busy == 0 and frames > 0 and done == frames
        except sqlite3.DatabaseError as e:
            if not is_storage_error(e):
                raise
        try:
            n = disk.evict_delivered_routine(db, _ROOM_BATCH)
        except sqlite3.DatabaseError as e:
            if not is_storage_error(e):
                raise
            log.error(
                "%s: disk full, and evicting routine events failed too (%s: %s)",
                self.path,
                errname(e),
                e,
            )
            n = 0
        if n:
            self.room_made += n
            log.warning(
                "%s: disk full: evicted %d delivered routine events to make room", self.path, n
            )
        return bool(freed or restarted or n)
