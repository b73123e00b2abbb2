"""Space the hub store keeps in reserve for a full disk: `<store file>.reserve`.

SQLite needs free space to change anything. In WAL mode every transaction appends its pages
to the -wal file, a checkpoint may grow the database file, and a store that was closed
cannot even be opened again without creating its -shm index (SQLITE_IOERR_SHMSIZE). So on a
truly full filesystem the DELETE that would evict old routine events to make room for an
alarm fails with SQLITE_FULL like the alarm itself (PRAGMA max_page_count, which the older
tests use to fake a full disk, never shows this: it leaves the filesystem room for the WAL).

The store therefore sets space aside: a file allocated with posix_fallocate (blocks really
reserved, not a sparse file) next to the database, created when the store opens. When a
write or the opening fails because the disk is full, the store deletes it and the freed
space lets a checkpoint, the eviction of old delivered routine events and the waiting write
go through (store_file.py), or the file open. It is created again, at most once a minute,
after a successful write or prune once the filesystem has room for it twice over: re-creating
it must never itself fill the disk.

DEFAULT_BYTES, 8 MiB, is the worst case of one full-disk episode with SQLite's defaults
(4 KiB pages, wal_autocheckpoint 1000 pages), measured on tmpfs with this schema:
  - the -shm index, to open the file again:                                        32 KiB
  - one checkpoint, so that the WAL can start again at its beginning and reuse its own
    space; it may grow the database by as many pages as the WAL holds (< 1000):  < 4 MiB
  - the eviction transaction (500 delivered routine events: ~64 pages of WAL) and the
    write that failed (an alarm commit with its replay window: ~8 pages):         ~0.3 MiB
Then, while space stays short, store_file.py checkpoints after every commit and keeps free
pages in the file by evicting routine history, so alarms take nothing more from the disk
while delivered routine history lasts; without any, the ~3.6 MiB left holds thousands of
alarms (about 0.5 KiB each, measured). A hub's SD card has gigabytes: 8 MiB costs nothing.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import time

log = logging.getLogger("carebeacon.store")

DEFAULT_BYTES = 8 << 20
RETRY_S = 60.0  # at most this often: checking for room, then allocating, takes a moment
FULL_BELOW = 1 << 20  # an I/O error with less than this free is taken as "disk full"


def free_bytes(directory: str) -> int | None:
    """Bytes an unprivileged process may still allocate under `directory`, None if unknown."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def is_disk_full(e: BaseException, directory: str) -> bool:
    """SQLITE_FULL, or an I/O error (e.g. SQLITE_IOERR_SHMSIZE growing the -shm index) on a
    filesystem with (almost) no room left."""
    code = getattr(e, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return True
    if code != sqlite3.SQLITE_IOERR:
        return False
    free = free_bytes(directory)
    return free is not None and free < FULL_BELOW


class Reserve:
    """The reserve file of one store. `size` 0 disables it."""

    def __init__(self, db_path: str, size: int) -> None:
        self.path = db_path + ".reserve"
        self.directory = os.path.dirname(os.path.abspath(db_path))
        self.size = size
        self.present = False
        self.released = 0  # times it was given up to a full disk
        self._retry_at = 0.0

    def ensure(self, force: bool = False) -> bool:
        """Have the reserve: keep an existing one (grown to `size`), or create it if the
        filesystem has room for it twice over. Tries at most every RETRY_S unless `force`.
        Never raises: without a reserve the store still works, it only has less to give."""
        if self.size <= 0 or self.present:
            return self.present
        now = time.monotonic()
        if not force and now < self._retry_at:
            return False
        self._retry_at = now + RETRY_S
        try:
            have = os.stat(self.path).st_blocks * 512
        except FileNotFoundError:
            have = 0
        except OSError as e:
            log.warning("%s: cannot check the disk reserve: %s", self.path, e)
            return False
        if have < self.size:
            free = free_bytes(self.directory)
            if free is None or free < 2 * self.size - have:
                return False
            try:
                self._allocate()
            except OSError as e:
                log.warning("%s: cannot create the disk reserve: %s", self.path, e)
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
                return False
            log.info("%s: %d KiB set aside for a full disk", self.path, self.size >> 10)
        self.present = True
        return True

    def _allocate(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, self.size)
                return
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
            zeros = bytes(1 << 20)  # a filesystem without fallocate: write the blocks
            for off in range(0, self.size, len(zeros)):
                os.pwrite(fd, zeros[: self.size - off], off)
        finally:
            os.close(fd)

    def release(self) -> int:
        """The disk is full: delete the reserve. Returns the bytes freed (0: there was none)."""
        if self.size <= 0:
            return 0
        try:
            freed = os.stat(self.path).st_blocks * 512
            os.unlink(self.path)
        except FileNotFoundError:
            self.present = False
            return 0
        except OSError as e:
            log.error("%s: disk full, and cannot delete the disk reserve: %s", self.path, e)
            return 0
        self.present = False
        self.released += 1
        self._retry_at = time.monotonic() + RETRY_S
        log.warning(
            "%s: disk full: released the %d KiB reserve to keep the store writable; it is set"
            " aside again once the disk has room",
            self.path,
            freed >> 10,
        )
        return freed
