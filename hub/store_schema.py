"""Opening the hub store's SQLite file: pragmas, schema versions and migrations.

The version lives in the one-row table `schema_version`. `MIGRATIONS[n]` takes a database
from version n to n + 1, in one transaction; a database from a newer release is refused
(rather than written by code that does not know its columns).

`open_db` raises StoreError for what no retry mends (not a store, a newer schema, not a
database, a bad path), and its subclass StoreUnavailable when the storage fails (disk full,
read-only, I/O error, ...). Then the store runs from memory (store_file.py) and reads what it
can through `open_readonly`: the file opened read-only, or an empty database if even that
fails.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from hub import atomic_file
from hub.store_types import StoreError

log = logging.getLogger("carebeacon.store")

MIGRATIONS: list[list[str]] = [
    # 0 -> 1: the first schema.
    [
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- uplink order; never reused
            ref TEXT NOT NULL UNIQUE,              -- hub_id:device_id(hex8):seq
            device_id INTEGER NOT NULL CHECK (device_id BETWEEN 0 AND 4294967295),  -- 0: hub
            seq INTEGER NOT NULL CHECK (seq BETWEEN 1 AND 4294967295),
            mtype INTEGER NOT NULL,
            arg INTEGER NOT NULL,
            alarm INTEGER NOT NULL CHECK (alarm IN (0, 1)),
            event_ms INTEGER NOT NULL,             -- wall clock: receive time minus frame age
            recv_ms INTEGER NOT NULL,              -- wall clock at reception
            recv_mono_ms INTEGER,                  -- monotonic clock at reception
            rssi INTEGER,
            attempt INTEGER NOT NULL,
            payload_json TEXT NOT NULL,            -- platform message body (opaque here)
            state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
            delivered_ms INTEGER,
            help_ms INTEGER,
            UNIQUE (device_id, seq)
        )""",
        # Partial indexes: only undelivered events are in them, so they stay small.
        "CREATE INDEX events_pending ON events (id) WHERE state = 0",
        "CREATE INDEX events_pending_by_device ON events (device_id, id) WHERE state = 0",
        "CREATE INDEX events_pending_alarms ON events (device_id, id)"
        " WHERE state = 0 AND alarm = 1",
        """CREATE TABLE state (
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL,
            updated_ms INTEGER NOT NULL
        )""",
        """CREATE TABLE devices (
            device_id INTEGER PRIMARY KEY,
            last_seen_ms INTEGER,
            rssi INTEGER,
            battery INTEGER,
            availability TEXT
        )""",
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        "INSERT INTO schema_version VALUES (0)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
SYNC_MODES = ("FULL", "EXTRA", "NORMAL")


class StoreUnavailable(StoreError):
    """The store's file cannot be opened for writing now (disk full, read-only, I/O error);
    `cause` is the sqlite3 error. A later attempt may succeed."""

    def __init__(self, message: str, cause: sqlite3.DatabaseError) -> None:
        super().__init__(message)
        self.cause = cause


def errname(e: BaseException) -> str:
    return getattr(e, "sqlite_errorname", None) or type(e).__name__


def _schema_version(db: sqlite3.Connection, path: str) -> int:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        other = sorted(tables - {"sqlite_sequence"})
        if other:
            raise StoreError(
                "%s: not a carebeacon hub store (it has tables %s but no schema_version); "
                "point the hub at another file" % (path, ", ".join(other))
            )
        return 0
    row = db.execute("SELECT MAX(version), COUNT(*) FROM schema_version").fetchone()
    if row[1] != 1 or not isinstance(row[0], int):
        raise StoreError("%s: schema_version table is damaged (%d rows)" % (path, row[1]))
    return int(row[0])


def migrate(db: sqlite3.Connection, path: str) -> int:
    """Bring the schema up to SCHEMA_VERSION; return the version found on opening."""
    found = version = _schema_version(db, path)
    if version > SCHEMA_VERSION:
        raise StoreError(
            "%s: store schema version %d is newer than this hub software understands (%d); "
            "upgrade carebeacon or restore a backup of the store" % (path, version, SCHEMA_VERSION)
        )
    while version < SCHEMA_VERSION:
        db.execute("BEGIN IMMEDIATE")
        try:
            for stmt in MIGRATIONS[version]:
                db.execute(stmt)
            db.execute("UPDATE schema_version SET version = ?", (version + 1,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        version += 1
        log.info("%s: store schema migrated to version %d", path, version)
    return found


def open_db(path: str, sync: str) -> tuple[sqlite3.Connection, str]:
    """Open (creating if needed) and migrate the store at `path`.

    Returns (connection, journal mode); raises StoreError naming the path and the reason.
    """
    if path in ("", ":memory:") or path.startswith("file:"):
        raise StoreError("%r: the store needs a plain file path (it must survive restarts)" % path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise StoreError("%s: cannot open the store: directory %s does not exist" % (path, parent))
    if os.path.isdir(path):
        raise StoreError("%s: cannot open the store: it is a directory" % path)
    created = not os.path.exists(path)
    db = None
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a commit is exactly
        # where we say. check_same_thread=False: the Store serialises every call with its
        # own lock, so it may be used from the event-loop thread or one executor thread.
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        mode = str(db.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        db.execute("PRAGMA synchronous = %s" % sync)
        migrate(db, path)
    except sqlite3.DatabaseError as e:
        if db is not None:
            db.close()
        msg = "%s: cannot open the store (%s: %s)" % (path, errname(e), e)
        if (
            isinstance(e, sqlite3.IntegrityError | sqlite3.ProgrammingError)
            or getattr(e, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_NOTADB
        ):
            raise StoreError(msg) from e  # not a database: retrying will not mend it
        raise StoreUnavailable(msg, e) from e
    except BaseException:
        if db is not None:
            db.close()
        raise
    if mode != "wal":
        log.warning("%s: journal mode is %s, not WAL (filesystem without shared memory?); "
                    "commits stay durable but slower", path, mode)
    if created:
        # A new file's directory entry must reach the disk too, or a power cut can lose the
        # whole file. SQLite syncs the directory for the WAL it creates, not for the main file.
        # Errors ignored: the store is open and works; a directory that cannot be synced (a
        # file system that refuses it) must not keep the hub, an alarm service, from running.
        atomic_file.fsync_dir(parent, ignore_errors=True)
    return db, mode


def _empty() -> sqlite3.Connection:
    """An empty store in memory that refuses writes (SQLITE_READONLY): reads find nothing."""
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    for stmts in MIGRATIONS:
        for stmt in stmts:
            db.execute(stmt)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    db.execute("PRAGMA query_only = 1")
    return db


def open_readonly(path: str) -> tuple[sqlite3.Connection, bool]:
    """What can be read of the store at `path` after open_db failed: (a read-only connection,
    whether it holds the store's real state). A missing file is an empty store, truly; an
    unreadable one, or one of another schema version, is an empty stand-in (False).

    `immutable=1` reads the file without the -shm index it cannot create (read-only or full
    filesystem); that is right only while no -wal holds commits the file lacks, so with a
    non-empty -wal (after an unclean stop) the file is opened read-only with its WAL."""
    if not os.path.lexists(path):
        return _empty(), True
    try:
        wal = os.path.getsize(path + "-wal")
    except OSError:
        wal = 0
    uri = Path(path).absolute().as_uri() + ("?mode=ro&immutable=1" if wal == 0 else "?mode=ro")
    db = None
    try:
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        version = _schema_version(db, path)
        if version == SCHEMA_VERSION:
            db.execute("SELECT COUNT(*) FROM events").fetchone()
            return db, True
        db.close()
        if version:  # an older schema: these queries do not fit it until it is migrated
            log.error("%s: store schema version %d, not %d: its state is unknown", path,
                      version, SCHEMA_VERSION)
        return _empty(), version == 0  # 0: no tables yet, an empty store
    except (sqlite3.DatabaseError, StoreError, OSError) as e:
        if db is not None:
            db.close()
        log.error("%s: cannot read the store either (%s: %s): its state is unknown",
                  path, errname(e), e)
    return _empty(), False
