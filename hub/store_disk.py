"""The hub store's SQL: every statement `Store` (hub/store.py, store_file.py) runs.

These functions raise sqlite3 errors unchanged; `Store` decides what a failure means.
Writes run inside BEGIN IMMEDIATE ... COMMIT so that one call is one transaction (one fsync).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from hub.store_memory import Held, Mark
from hub.store_types import DEVICE_FIELDS, EVENT_COLUMNS

_E_COLUMNS = ", ".join("e." + c.strip() for c in EVENT_COLUMNS.split(","))
_INSERT = (
    "INSERT OR IGNORE INTO events (ref, device_id, seq, mtype, arg, alarm, event_ms, recv_ms,"
    " recv_mono_ms, rssi, attempt, payload_json, state, delivered_ms, help_ms)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_MARK = (
    "UPDATE events SET state = MAX(state, ?), delivered_ms = COALESCE(delivered_ms, ?),"
    " help_ms = COALESCE(help_ms, ?) WHERE ref = ?"
)
_EVICT_ROUTINE = ("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE alarm = 0"
                  " AND state > 0 ORDER BY id LIMIT ?)")  # oldest delivered routine events

# Pending events in id order; the partial index events_pending keeps this cheap.
PENDING_SQL = "SELECT %s FROM events WHERE state = 0 ORDER BY id" % EVENT_COLUMNS
# Pending events of the devices in a JSON object {device_id: last id to include}, id order.
PROMOTED_SQL = (
    "SELECT %s FROM json_each(?) AS j JOIN events AS e ON e.device_id = CAST(j.key AS INTEGER)"
    " AND e.state = 0 AND e.id <= j.value ORDER BY e.id" % _E_COLUMNS
)
# alarms the platform's broker confirmed and no operator acknowledged yet, newest window only
AWAITING_HELP_SQL = ("SELECT %s FROM events WHERE state = 1 AND alarm = 1 AND delivered_ms >= ?"
                     " ORDER BY id" % EVENT_COLUMNS)
BY_REF_SQL = "SELECT %s FROM events WHERE ref = ?" % EVENT_COLUMNS
# events that cancel or supersede another (their JSON is compact)
SUPERSEDING_SQL = ("SELECT %s FROM events WHERE payload_json LIKE"
                   " '%%\"cancels\":%%' ORDER BY id" % EVENT_COLUMNS)


def lookup(db: sqlite3.Connection, key: tuple[int, int]) -> tuple[int, str, int] | None:
    """(id, ref, state) of the event stored for (device_id, seq), or None."""
    return db.execute("SELECT id, ref, state FROM events WHERE device_id = ? AND seq = ?",
                      key).fetchone()  # type: ignore[no-any-return]


def mark_of(db: sqlite3.Connection, ref: str) -> Mark | None:
    row = db.execute("SELECT state, delivered_ms, help_ms FROM events WHERE ref = ?",
                     (ref,)).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        db.execute("ROLLBACK")


def commit(db: sqlite3.Connection, held: Iterable[Held], marks: Mapping[str, Mark],
           states: Mapping[str, bytes], devices: Mapping[int, Mapping[str, Any]], now_ms: int
           ) -> dict[tuple[int, int], tuple[int, bool]]:
    """Write events (in order), delivery marks, state blobs and device rows in ONE transaction.

    Returns {(device_id, seq): (id, existed)}; `existed` when the event was already on disk
    (its row is kept; a later state in memory is merged into it).
    """
    ids: dict[tuple[int, int], tuple[int, bool]] = {}
    db.execute("BEGIN IMMEDIATE")
    try:
        for h in held:
            cur = db.execute(_INSERT, h.row())
            if cur.rowcount == 1:
                ids[h.key] = (int(cur.lastrowid or 0), False)
                continue
            row = lookup(db, h.key)
            assert row is not None
            ids[h.key] = (row[0], True)
            if h.state:
                db.execute(_MARK, (h.state, h.delivered_ms, h.help_ms, row[1]))
        for ref, (st, dms, hms) in marks.items():
            db.execute(_MARK, (st, dms, hms, ref))
        for name, blob in states.items():
            db.execute("INSERT INTO state (name, value, updated_ms) VALUES (?, ?, ?)"
                       " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
                       " updated_ms = excluded.updated_ms", (name, blob, now_ms))
        for dev, fields in devices.items():
            cols = [c for c in DEVICE_FIELDS if c in fields]
            db.execute("INSERT INTO devices (device_id%s) VALUES (?%s) ON CONFLICT (device_id)"
                       " DO %s" % ("".join(", " + c for c in cols), ", ?" * len(cols),
                                   "UPDATE SET " + ", ".join("%s = excluded.%s" % (c, c)
                                                             for c in cols)
                                   if cols else "NOTHING"),
                       (dev, *(fields[c] for c in cols)))
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise
    return ids


def evict_delivered_routine(db: sqlite3.Connection, n: int) -> int:
    """Delete the `n` oldest delivered routine events (one transaction); return how many."""
    db.execute("BEGIN IMMEDIATE")
    try:
        count = db.execute(_EVICT_ROUTINE, (n,)).rowcount
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise
    return count


def prune(db: sqlite3.Connection, cutoff_ms: int, max_events: int) -> tuple[int, int, int]:
    """Retention in one transaction: delivered routine events received before `cutoff_ms`,
    then the oldest delivered routine events above `max_events`. Never an alarm-class or an
    undelivered event. Returns (expired, trimmed, events left)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        expired = db.execute("DELETE FROM events WHERE alarm = 0 AND state > 0 AND recv_ms < ?",
                             (cutoff_ms,)).rowcount
        n = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        trimmed = db.execute(_EVICT_ROUTINE, (n - max_events,)).rowcount if n > max_events else 0
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise
    return expired, trimmed, n - trimmed


def pending_alarms(db: sqlite3.Connection) -> list[tuple[int, int, str]]:
    """(device_id, id, ref) of every undelivered alarm-class event, in id order."""
    return db.execute("SELECT device_id, id, ref FROM events WHERE state = 0 AND alarm = 1"
                      " ORDER BY id").fetchall()


def counts(db: sqlite3.Connection) -> tuple[int, int, int]:
    """(events, pending, pending alarms) on disk."""
    row = db.execute("SELECT COUNT(*), COALESCE(SUM(state = 0), 0),"
                     " COALESCE(SUM(state = 0 AND alarm = 1), 0) FROM events").fetchone()
    return (row[0], row[1], row[2])


def pending_count(db: sqlite3.Connection, skip: set[str]) -> int:
    """Pending events on disk, those in `skip` (refs marked delivered in memory) left out."""
    n = db.execute("SELECT COUNT(*) FROM events WHERE state = 0").fetchone()[0]
    if skip:
        n -= db.execute("SELECT COUNT(*) FROM json_each(?) AS j JOIN events AS e"
                        " ON e.ref = j.value AND e.state = 0",
                        (json.dumps(sorted(skip)),)).fetchone()[0]
    return n


def devices(db: sqlite3.Connection) -> dict[int, dict[str, Any]]:
    cols = ("device_id", *DEVICE_FIELDS)
    return {r[0]: dict(zip(cols, r, strict=True))
            for r in db.execute("SELECT %s FROM devices" % ", ".join(cols))}
