"""The hub's durable store (hub/store.py): nothing acknowledged is lost, nothing is stored
twice, nothing is invented, order is kept, alarms are never evicted, a failing disk keeps
alarms flowing from memory.

Disk full is simulated two ways, both real SQLite failures rather than mocks of the store:
- `PRAGMA max_page_count` capped at the current size: SQLite then fails any write that needs
  a new page with SQLITE_FULL ("database or disk is full"), exactly the error a full disk
  gives, deterministically and without root or a tiny tmpfs (not available in CI);
- RLIMIT_FSIZE in a subprocess: the kernel refuses writes past the limit (EFBIG), SQLite
  reports SQLITE_IOERR_WRITE ("disk I/O error"), as from a failing SD card.
A connection proxy that fails writes on demand covers the remaining write paths (marks,
state blobs) in the property test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hub import contract, events
from hub.store import DELIVERED, HELP, PENDING, Event, Record, Store, StoreError
from hub.store_schema import SCHEMA_VERSION
from hub.store_types import HUB_SELF
from shared.frame import (
    ACK_DELIVERED,
    ACK_HELP,
    ACK_STORED,
    T_FALL_CONFIRMED,
    T_HEARTBEAT,
    T_MOTION,
    T_SOS,
    is_alarm,
)
from shared.replay import R_DUPLICATE, ReplayWindow

REPO = Path(__file__).resolve().parents[2]
HUB = "hub-7"
T0 = 1_760_000_000_000  # a wall-clock epoch ms
DAY = 86_400_000
BIG = "x" * 5000  # more than a 4 KiB page: storing it needs new pages


def rec(
    dev: int,
    seq: int,
    mtype: int = T_HEARTBEAT,
    *,
    recv_ms: int | None = None,
    payload: str | None = None,
    attempt: int = 0,
) -> Record:
    recv = T0 + seq if recv_ms is None else recv_ms
    body = payload if payload is not None else json.dumps({"ref": "%s:%08x:%d" % (HUB, dev, seq)})
    return Record(
        device_id=dev,
        seq=seq,
        mtype=mtype,
        arg=0,
        event_ms=recv - 300,
        recv_ms=recv,
        payload_json=body,
        recv_mono_ms=seq,
        rssi=-60,
        attempt=attempt,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "hub.db"


@pytest.fixture
def store(path: Path):
    s = Store(path, hub_id=HUB)
    yield s
    s.close()


def side_conn(path: Path) -> sqlite3.Connection:
    """Another connection, as another process (the status CLI, a restarted hub) sees the file."""
    return sqlite3.connect(path)


def disk_full(s: Store) -> None:
    """From now on every write needing a new page fails with SQLITE_FULL (see module doc)."""
    pages = s._db.execute("PRAGMA page_count").fetchone()[0]  # type: ignore[union-attr]
    s._db.execute("PRAGMA max_page_count = %d" % pages)  # type: ignore[union-attr]


def disk_freed(s: Store) -> None:
    s._db.execute("PRAGMA max_page_count = 1073741823")  # type: ignore[union-attr]


# -- opening, schema, errors ------------------------------------------------------------------


def test_opens_in_wal_mode_with_full_sync(store: Store, path: Path):
    assert store.journal_mode == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # type: ignore[union-attr]
    with side_conn(path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
        assert c.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_newer_schema_is_refused_with_a_clear_error(path: Path):
    Store(path, hub_id=HUB).close()
    with side_conn(path) as c:
        c.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError) as e:
        Store(path, hub_id=HUB)
    msg = str(e.value)
    assert str(path) in msg and "version %d is newer" % (SCHEMA_VERSION + 1) in msg


def test_foreign_or_broken_files_are_refused_naming_the_path(tmp_path: Path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE photos (x)")
    with pytest.raises(StoreError, match="not a carebeacon hub store.*photos"):
        Store(other, hub_id=HUB)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as e:
        Store(junk, hub_id=HUB)
    assert str(junk) in str(e.value) and "not a database" in str(e.value)
    with pytest.raises(StoreError, match="directory .*missing.* does not exist"):
        Store(tmp_path / "missing" / "hub.db", hub_id=HUB)
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path, hub_id=HUB)
    with pytest.raises(StoreError, match="plain file path"):
        Store(":memory:", hub_id=HUB)


def test_configuration_is_checked(path: Path):
    with pytest.raises(TypeError):
        Store(path)  # type: ignore[call-arg]  # hub_id is required: refs must be unique per hub
    for bad in ("", "a:b", "hub 1", "é", "x" * 65, "Hub", "hub.7"):
        with pytest.raises(ValueError, match="hub_id"):
            Store(path, hub_id=bad)
    with pytest.raises(ValueError, match="sync"):
        Store(path, hub_id=HUB, sync="OFF")
    with pytest.raises(ValueError, match="max_events"):
        Store(path, hub_id=HUB, max_events=0)


def test_records_are_validated_naming_the_field(store: Store):
    with pytest.raises(ValueError, match="device_id"):
        rec(-1, 1)
    with pytest.raises(ValueError, match="seq"):
        rec(1, 2**32)
    with pytest.raises(ValueError, match="mtype"):
        rec(1, 1, mtype=99)
    with pytest.raises(ValueError, match="payload_json"):
        Record(1, 1, T_SOS, 0, T0, T0, b"{}")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown fields: colour"):
        store.add(
            {
                "device_id": 1,
                "seq": 1,
                "mtype": 1,
                "arg": 0,
                "event_ms": 1,
                "recv_ms": 1,
                "payload_json": "{}",
                "colour": "red",
            }
        )
    a = store.add(
        {
            "device_id": 1,
            "seq": 1,
            "mtype": 1,
            "arg": 0,
            "event_ms": 1,
            "recv_ms": 1,
            "payload_json": "{}",
        }
    )
    assert a.is_new and store.get(a.ref).alarm  # type: ignore[union-attr]
    assert rec(1, 1, T_SOS, recv_ms=-5).recv_ms == -5  # a wrong clock never refuses an alarm


def test_events_the_hub_raises_itself(store: Store):
    """device_id 0 (HUB_SELF): the hub's own types from hub/events.py, arg up to a device id."""

    def hub_rec(seq: int, mtype: int, arg: int = 0) -> Record:
        return Record(HUB_SELF, seq, mtype, arg, T0, T0, "{}")

    inactivity = store.add(hub_rec(1, events.H_INACTIVITY_ALARM))
    fault = store.add(hub_rec(2, events.H_FAULT, arg=0xFFFFFFFF))
    assert inactivity.ref == "hub-7:00000000:1"
    assert store.get(inactivity.ref).alarm is True  # type: ignore[union-attr]
    assert store.get(fault.ref).alarm is False  # type: ignore[union-attr]
    assert all(hub_rec(1, t).alarm for t in events.HUB_ALARM_TYPES)
    with pytest.raises(ValueError, match="mtype"):
        hub_rec(3, T_SOS)  # radio types are for devices
    with pytest.raises(ValueError, match="mtype"):
        rec(5, 1, mtype=events.H_FAULT)  # and hub types for the hub
    with pytest.raises(ValueError, match="arg"):
        Record(5, 1, T_SOS, 0x1000000, T0, T0, "{}")


# -- adding: durable, once -------------------------------------------------------------------


def test_add_is_committed_before_it_returns(store: Store, path: Path):
    a = store.add(rec(0x1234ABCD, 17, T_SOS))
    event_id, is_new, durable = a  # unpacks as the documented triple
    assert (is_new, durable, a.status) == (True, True, ACK_STORED)
    assert a.ref == "hub-7:1234abcd:17" == store.ref_for(0x1234ABCD, 17)
    assert contract.parse_ref(a.ref) == (HUB, 0x1234ABCD, 17)
    with side_conn(path) as c:  # already visible to another connection: committed
        assert c.execute("SELECT id, ref, alarm, state FROM events LIMIT 1").fetchall() == [
            (event_id, a.ref, 1, PENDING)
        ]


def test_a_retried_frame_is_stored_once_and_reacknowledged(store: Store):
    first = store.add(rec(5, 9, T_SOS, attempt=0))
    again = store.add(rec(5, 9, T_SOS, attempt=3, payload='{"other": 1}'))
    assert again.is_new is False and again.event_id == first.event_id
    assert again.durable and again.status == ACK_STORED
    assert store.stats()["events"] == 1
    assert store.get(first.ref).attempt == 0  # type: ignore[union-attr]  # first copy kept
    store.mark_delivered(first.ref, T0 + 5)
    assert store.add(rec(5, 9, T_SOS)).status == ACK_DELIVERED
    assert store.status_of(5, 9) == ACK_DELIVERED
    store.mark_help(first.ref, T0 + 9)
    assert store.add(rec(5, 9, T_SOS)).status == ACK_HELP == store.status_of(5, 9)
    assert store.status_of(5, 10) is None


def test_add_many_is_one_commit_and_dedups_within_the_batch(store: Store, path: Path):
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # type: ignore[union-attr]
    w = ReplayWindow()
    w.accept(3)
    out = store.add_many(
        [rec(1, 1), rec(2, 1, T_SOS), rec(1, 1), rec(1, 2), rec(2, 1, T_SOS)],
        states={"replay:1": w.to_bytes()},
    )
    assert [a.is_new for a in out] == [True, True, False, True, False]
    assert out[2].event_id == out[0].event_id and out[4].ref == out[1].ref
    assert all(a.durable and a.status == ACK_STORED for a in out)
    assert [s.split()[0] for s in statements if s.split()[0] in ("BEGIN", "COMMIT")] == [
        "BEGIN",
        "COMMIT",
    ]
    with side_conn(path) as c:
        assert c.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 3
        blob = c.execute("SELECT value FROM state WHERE name = 'replay:1'").fetchone()[0]
    assert ReplayWindow.from_bytes(blob).check(3) == R_DUPLICATE


def test_a_local_only_event_is_stored_delivered_in_one_commit(store: Store):
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # type: ignore[union-attr]
    r = dataclasses.replace(rec(1, 1, T_MOTION), payload_json="", delivered_ms=T0 + 1)
    a = store.add(r)
    assert a.is_new and a.durable and a.status == ACK_DELIVERED
    assert sum(s == "COMMIT" for s in statements) == 1
    e = store.get(a.ref)
    assert e is not None and (e.state, e.delivered_ms) == (DELIVERED, T0 + 1)
    assert store.pending() == [] and store.status_of(1, 1) == ACK_DELIVERED


def test_sync_normal_never_claims_durable(path: Path):
    with Store(path, hub_id=HUB, sync="NORMAL") as s:
        a = s.add(rec(1, 1, T_SOS))
        assert a.is_new and not a.durable and a.status is None
        assert s.status_of(1, 1) is None


def test_store_survives_reopen(path: Path):
    with Store(path, hub_id=HUB) as s:
        refs = [a.ref for a in s.add_many([rec(1, i) for i in range(1, 6)])]
        s.mark_delivered(refs[0], T0)
    with Store(path, hub_id=HUB) as s:
        assert [e.ref for e in s.pending()] == refs[1:]
        assert s.add(rec(1, 3)).is_new is False


# -- uplink order ----------------------------------------------------------------------------


def test_pending_keeps_each_devices_order_and_puts_alarms_first(store: Store):
    # arrival: A1 B1 A2 B2(SOS) C1 A3(FALL) B3 C2
    arrivals = [
        (0xA, 1, T_HEARTBEAT),
        (0xB, 1, T_MOTION),
        (0xA, 2, T_MOTION),
        (0xB, 2, T_SOS),
        (0xC, 1, T_HEARTBEAT),
        (0xA, 3, T_FALL_CONFIRMED),
        (0xB, 3, T_HEARTBEAT),
        (0xC, 2, T_HEARTBEAT),
    ]
    for d, q, t in arrivals:
        store.add(rec(d, q, t))

    def order(**kw):
        return [(e.device_id, e.seq) for e in store.pending(**kw)]

    assert order(alarms_first=False) == [(d, q) for d, q, _ in arrivals]
    # Promoted: each device's events up to its last pending alarm (a prefix of its queue).
    assert order() == [
        (0xA, 1),
        (0xB, 1),
        (0xA, 2),
        (0xB, 2),
        (0xA, 3),
        (0xC, 1),
        (0xB, 3),
        (0xC, 2),
    ]
    assert order(limit=3) == [(0xA, 1), (0xB, 1), (0xA, 2)]
    # In flight: excluded; a new alarm never overtakes its own device's earlier events.
    assert order(exclude={store.ref_for(0xA, 1), store.ref_for(0xB, 1)}, limit=2) == [
        (0xA, 2),
        (0xB, 2),
    ]
    store.mark_delivered(store.ref_for(0xB, 2), T0)
    store.add(rec(0xC, 3, T_SOS))
    assert order() == [
        (0xA, 1),
        (0xA, 2),
        (0xC, 1),
        (0xA, 3),
        (0xC, 2),
        (0xC, 3),
        (0xB, 1),
        (0xB, 3),
    ]


def test_a_long_outage_backlog_drains_completely_once_and_in_order(path: Path):
    """Broker down: thousands of alarms queue; on return every one goes out exactly once."""
    rng = random.Random(7)
    with Store(path, hub_id=HUB) as s:
        arrival: dict[str, int] = {}
        seqs = dict.fromkeys(range(1, 21), 0)
        for _ in range(40):  # 40 commits of 100 frames from 20 devices, 3/4 of them alarms
            batch = []
            for _ in range(100):
                dev = rng.randint(1, 20)
                seqs[dev] += 1
                batch.append(rec(dev, seqs[dev], T_SOS if rng.random() < 0.75 else T_MOTION))
            for a in s.add_many(batch):
                assert a.is_new and a.durable
                arrival[a.ref] = len(arrival)
        assert s.stats()["pending"] == 4000
        published: list[Event] = []
        in_flight: list[str] = []
        while True:  # an uplink with 100 in flight; PUBACKs come back 60 at a time
            batch = s.pending(100 - len(in_flight), exclude=set(in_flight))
            if not batch and not in_flight:
                break
            published += batch
            in_flight += [e.ref for e in batch]
            acked, in_flight = in_flight[:60], in_flight[60:]
            assert s.mark_delivered_many(acked, T0) == len(acked)
        refs = [e.ref for e in published]
        assert len(refs) == len(set(refs)) == 4000  # all of them, each once
        for dev in seqs:
            mine = [arrival[e.ref] for e in published if e.device_id == dev]
            assert mine == sorted(mine)  # each device's own order
        assert s.pending() == [] and s.stats()["pending_alarms"] == 0


def test_marks_climb_only_and_leave_pending(store: Store):
    a = store.add(rec(1, 1, T_SOS)).ref
    b = store.add(rec(1, 2)).ref
    assert store.mark_help(a, T0 + 10)  # operator before the PUBACK was processed
    assert store.mark_delivered(a, T0 + 20)
    e = store.get(a)
    assert e is not None and (e.state, e.delivered_ms, e.help_ms) == (HELP, T0 + 10, T0 + 10)
    assert store.mark_delivered("hub-7:00000009:1", T0) is False
    assert store.mark_delivered_many([b, "nope"], T0 + 30) == 1
    assert store.get(b).state == DELIVERED and store.pending() == []  # type: ignore[union-attr]


def test_deferred_marks_hold_at_once_and_share_one_commit(store: Store, path: Path):
    refs = [store.add(rec(1, n, T_SOS)).ref for n in (1, 2, 3)]
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # type: ignore[union-attr]
    assert all(store.mark_delivered(r, T0 + 5, commit=False) for r in refs[:2])
    assert store.mark_delivered("hub-7:00000009:1", T0, commit=False) is False
    assert "COMMIT" not in statements
    # seen at once: nothing re-offers them, a retry hears DELIVERED...
    assert [e.ref for e in store.pending()] == refs[2:]
    assert store.get(refs[0]).state == DELIVERED  # type: ignore[union-attr]
    assert store.status_of(1, 1) == ACK_DELIVERED
    with side_conn(path) as c:  # ...but not on disk: a crash now publishes them again
        assert c.execute("SELECT COUNT(*) FROM events WHERE state = 0").fetchone()[0] == 3
    assert store.commit() is True
    assert sum(s == "COMMIT" for s in statements) == 1
    with side_conn(path) as c:
        assert c.execute("SELECT COUNT(*) FROM events WHERE state = 0").fetchone()[0] == 1
    assert store.commit() is True and sum(s == "COMMIT" for s in statements) == 1  # no-op


# -- retention -------------------------------------------------------------------------------


def test_prune_expires_only_delivered_routine_events(path: Path):
    with Store(path, hub_id=HUB, retention_days=90, max_events=1000) as s:
        old = T0 - 100 * DAY
        kinds = {}
        for i, (mtype, delivered, recv) in enumerate(
            [
                (T_HEARTBEAT, True, old),
                (T_HEARTBEAT, False, old),
                (T_SOS, True, old),
                (T_SOS, False, old),
                (T_HEARTBEAT, True, T0 - DAY),
            ],
            start=1,
        ):
            ref = s.add(rec(1, i, mtype, recv_ms=recv)).ref
            if delivered:
                s.mark_delivered(ref, recv + 1)
            kinds[ref] = (mtype, delivered, recv)
        r = s.prune(T0)
        assert (r.expired, r.trimmed, r.remaining, r.over_capacity, r.error) == (1, 0, 4, 0, None)
        gone = [ref for ref in kinds if s.get(ref) is None]
        assert gone == [s.ref_for(1, 1)]  # the old, delivered heartbeat only


def test_prune_trims_oldest_delivered_routine_never_alarms_or_undelivered(path: Path):
    with Store(path, hub_id=HUB, max_events=10) as s:
        refs = {}
        for i in range(1, 31):
            mtype = T_SOS if i % 5 == 0 else T_HEARTBEAT
            a = s.add(rec(1, i, mtype))
            refs[i] = a.ref
            if i % 3:  # two in three delivered
                s.mark_delivered(a.ref, T0 + i)
        r = s.prune(T0 + 31)
        left = {i for i, ref in refs.items() if s.get(ref) is not None}
        alarms = {i for i in refs if i % 5 == 0}
        undelivered = {i for i in refs if i % 3 == 0}
        assert alarms | undelivered <= left  # 6 alarms + 10 undelivered - 2 both = 14 kept
        assert len(left) == 14 and r.remaining == 14 and r.over_capacity == 4
        assert r.trimmed == 16
        # Under max_events with room to spare: the newest delivered routine events stay.
        s.add_many([rec(2, i) for i in range(1, 4)])
        s.mark_delivered_many([s.ref_for(2, i) for i in range(1, 4)], T0)
        for ref in list(refs.values()):
            s.mark_delivered(ref, T0 + 40)
        r = s.prune(T0 + 41)
        assert r.remaining == 10 and r.over_capacity == 0
        assert all(s.get(refs[i]) is not None for i in alarms)
        assert [s.get(s.ref_for(2, i)) is not None for i in range(1, 4)] == [True] * 3


# -- state blobs and devices -----------------------------------------------------------------


def test_state_blobs_are_durable(path: Path):
    w = ReplayWindow()
    for q in (1, 2, 5):
        w.accept(q)
    with Store(path, hub_id=HUB) as s:
        assert s.get_state("replay:1") is None
        assert s.put_state("replay:1", w.to_bytes()) is True
        with side_conn(path) as c:
            assert c.execute("SELECT COUNT(*) FROM state").fetchone()[0] == 1
        with pytest.raises(ValueError, match="must be bytes"):
            s.put_state("replay:1", "text")  # type: ignore[arg-type]
    with Store(path, hub_id=HUB) as s:
        back = ReplayWindow.from_bytes(s.get_state("replay:1"))
        assert back.to_bytes() == w.to_bytes() and back.check(5) == R_DUPLICATE


def test_devices_are_written_with_the_next_commit(path: Path):
    with Store(path, hub_id=HUB) as s:
        s.touch_device(7, last_seen_ms=T0, rssi=-70)
        s.touch_device(7, battery=81)
        assert s.devices() == [
            {"device_id": 7, "last_seen_ms": T0, "rssi": -70, "battery": 81, "availability": None}
        ]
        with side_conn(path) as c:
            assert c.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 0  # no own fsync
        s.add(rec(7, 1))
        with side_conn(path) as c:
            assert c.execute("SELECT battery FROM devices").fetchall() == [(81,)]
        s.touch_device(7, availability="offline")
        with pytest.raises(ValueError, match="unknown fields colour"):
            s.touch_device(7, colour=1)
    with Store(path, hub_id=HUB) as s:  # close() wrote the last touch
        assert s.devices()[0]["availability"] == "offline" and s.devices()[0]["rssi"] == -70


# -- full disk, failing disk -----------------------------------------------------------------


def test_full_disk_keeps_alarms_in_memory_raises_a_fault_and_recovers(path: Path):
    faults: list[str | None] = []
    s = Store(path, hub_id=HUB, retry_interval_s=60, on_fault=faults.append)
    w = ReplayWindow()
    stored = s.add(rec(1, 1, T_SOS)).ref
    w.accept(1)
    s.put_state("replay:1", w.to_bytes())
    disk_full(s)
    a = s.add(rec(1, 2, T_SOS, payload=BIG))
    assert (a.event_id, a.is_new, a.durable, a.status) == (None, True, False, None)
    assert s.fault is not None and "database or disk is full" in s.fault and str(path) in s.fault
    assert faults == [s.fault]
    # Held in memory: served, deduplicated, never called STORED.
    dup = s.add(rec(1, 2, T_SOS))
    assert (dup.is_new, dup.durable, dup.status) == (False, False, None)
    assert s.status_of(1, 2) is None
    assert [(e.ref, e.durable) for e in s.pending()] == [(stored, True), (a.ref, False)]
    # Its replay window must not reach the disk ahead of it.
    w.accept(2)
    assert s.put_state("replay:1", w.to_bytes()) is False
    assert s.get_state("replay:1") == w.to_bytes()
    with side_conn(path) as c:
        on_disk = ReplayWindow.from_bytes(
            c.execute("SELECT value FROM state WHERE name = 'replay:1'").fetchone()[0]
        )
    assert on_disk.check(2) != R_DUPLICATE
    # The platform confirmed the held alarm: the device may hear DELIVERED now.
    assert s.mark_delivered(a.ref, T0 + 7)
    assert s.status_of(1, 2) == ACK_DELIVERED and s.add(rec(1, 2, T_SOS)).status == ACK_DELIVERED
    assert s.mark_help(a.ref, T0 + 8) and s.mark_delivered(a.ref, T0 + 9)  # a late PUBACK
    assert s.status_of(1, 2) == ACK_HELP  # never climbs down
    later = s.add(rec(2, 1, T_SOS, payload=BIG))
    assert not later.durable and s.stats()["held_alarms"] == 2
    # Space is back; writes wait for the retry interval unless flushed explicitly.
    disk_freed(s)
    assert s.flush_overflow() is True
    assert s.fault is None and faults[-1] is None
    with side_conn(path) as c:
        rows = c.execute("SELECT ref, state, delivered_ms FROM events ORDER BY id").fetchall()
        assert rows == [(stored, 0, None), (a.ref, HELP, T0 + 7), (later.ref, 0, None)]
        blob = c.execute("SELECT value FROM state WHERE name = 'replay:1'").fetchone()[0]
    assert blob == w.to_bytes()
    assert s.status_of(2, 1) == ACK_STORED
    s.close()


def test_held_events_go_to_disk_before_newer_ones(path: Path):
    s = Store(path, hub_id=HUB, retry_interval_s=0)
    s.add(rec(1, 1))
    disk_full(s)
    held = [s.add(rec(1, q, payload=BIG)) for q in (2, 3)]
    assert not any(a.durable for a in held)
    disk_freed(s)
    a = s.add(rec(1, 4))  # the next write carries the held ones first
    assert a.durable and s.fault is None and s.stats()["held"] == 0
    assert [e.seq for e in s.pending(alarms_first=False)] == [1, 2, 3, 4]
    assert [e.id for e in s.pending(alarms_first=False)] == sorted(
        e.id for e in s.pending(alarms_first=False)
    )
    s.close()


def test_full_disk_evicts_delivered_routine_events_to_keep_alarms_durable(path: Path):
    s = Store(path, hub_id=HUB)
    for q in range(1, 41):
        s.mark_delivered(s.add(rec(3, q, payload=BIG)).ref, T0)
    s.add(rec(3, 41, payload=BIG))  # routine, undelivered: must survive
    disk_full(s)
    a = s.add(rec(4, 1, T_SOS, payload=BIG))
    assert a.durable and a.status == ACK_STORED and s.fault is None
    assert s.room_made == 40
    assert s.get(s.ref_for(3, 41)) is not None and s.get(s.ref_for(3, 1)) is None
    s.close()


def test_memory_overflow_is_bounded_but_keeps_every_alarm(path: Path):
    s = Store(path, hub_id=HUB, overflow_max=5, retry_interval_s=0)
    disk_full(s)
    alarms = [s.add(rec(1, q, T_SOS, payload=BIG)).ref for q in (1, 2, 3)]
    routine = [s.add(rec(2, q, payload=BIG)).ref for q in range(1, 11)]
    held = [e.ref for e in s.pending(alarms_first=False)]
    assert held == alarms + routine[-2:] and s.dropped == 8
    s.mark_delivered(routine[-2], T0)  # delivered routine events are dropped first
    s.add(rec(2, 11, payload=BIG))
    assert [e.ref for e in s.pending(alarms_first=False)] == alarms + [
        routine[-1],
        s.ref_for(2, 11),
    ]
    for q in range(4, 10):  # alarms beyond the bound are still kept
        s.add(rec(1, q, T_SOS, payload=BIG))
    assert s.stats()["held_alarms"] == 9 and s.stats()["held"] == 9
    disk_freed(s)
    assert s.flush_overflow()
    assert s.stats()["pending_alarms"] == 9
    s.close()


class FailingConn:
    """Proxy for the store's connection that fails writes like a dying SD card, on demand."""

    WRITES = ("INSERT", "UPDATE", "DELETE", "COMMIT")

    def __init__(self, real: sqlite3.Connection) -> None:
        self.real = real
        self.failing = False

    def execute(self, sql: str, *args):
        if self.failing and sql.lstrip().split(None, 1)[0].upper() in self.WRITES:
            raise sqlite3.OperationalError("disk I/O error")
        return self.real.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self.real, name)


def test_marks_and_state_wait_in_memory_while_writes_fail(path: Path):
    s = Store(path, hub_id=HUB, retry_interval_s=0)
    a = s.add(rec(1, 1, T_SOS)).ref
    conn = FailingConn(s._db)  # type: ignore[arg-type]
    s._db = conn  # type: ignore[assignment]
    conn.failing = True
    assert s.mark_delivered(a, T0 + 1)
    assert "disk I/O error" in (s.fault or "")
    assert s.pending() == [] and s.status_of(1, 1) == ACK_DELIVERED
    assert s.get(a).state == DELIVERED  # type: ignore[union-attr]
    with side_conn(path) as c:
        assert c.execute("SELECT state FROM events").fetchone()[0] == PENDING
    conn.failing = False
    assert s.flush_overflow() and s.fault is None
    with side_conn(path) as c:
        assert c.execute("SELECT state, delivered_ms FROM events").fetchone() == (1, T0 + 1)
    s.close()


_RLIMIT_CHILD = r"""
import json, os, resource, signal, sys
sys.path.insert(0, sys.argv[1])
from hub.store import Record, Store
path = sys.argv[2]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of dying
s = Store(path, hub_id="hub-7", retry_interval_s=0)
def rec(seq, mtype):
    return Record(1, seq, mtype, 0, 1000, 1000, json.dumps({"seq": seq, "pad": "x" * 3000}))
for q in range(1, 4):
    s.add(rec(q, 8))
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
biggest = max(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
resource.setrlimit(resource.RLIMIT_FSIZE, (biggest + 16384, hard))
results = [s.add(rec(q, 1 if q % 2 else 8)) for q in range(4, 30)]
held = [a.ref for a in results if not a.durable]
out = {"fault": s.fault, "held": held, "durable_refs": [a.ref for a in results if a.durable],
       "pending": [e.ref for e in s.pending(200, alarms_first=False)]}
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
out["flushed"] = s.flush_overflow()
out["fault_after"] = s.fault
s.close()
print(json.dumps(out))
"""


def test_a_real_write_error_from_the_kernel(tmp_path: Path):
    """RLIMIT_FSIZE: write() fails with EFBIG, SQLite raises SQLITE_IOERR_WRITE."""
    path = tmp_path / "hub.db"
    proc = subprocess.run(
        [sys.executable, "-c", _RLIMIT_CHILD, str(REPO), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["held"], "the file-size limit never made a write fail"
    assert "disk I/O error" in out["fault"] and str(path) in out["fault"]
    assert out["pending"][-len(out["held"]) :] == out["held"]  # still forwarded, from memory
    assert out["flushed"] is True and out["fault_after"] is None
    with side_conn(path) as c:
        refs = [r[0] for r in c.execute("SELECT ref FROM events ORDER BY id")]
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert refs == ["hub-7:00000001:%d" % q for q in range(1, 30)]


# -- kill -9 ---------------------------------------------------------------------------------

_CRASH_CHILD = r"""
import json, random, sys
sys.path.insert(0, sys.argv[1])
from hub.store import Record, Store
path, rnd = sys.argv[2], int(sys.argv[3])
rng = random.Random(rnd)
s = Store(path, hub_id="crash", max_events=10**6)
old = [r for r in s._db.execute("SELECT device_id, seq FROM events")]
out = sys.stdout
def say(tag, ref):
    out.write("%s %s\n" % (tag, ref)); out.flush()
k = 0
while True:
    batch = []
    for _ in range(rng.randint(1, 4)):
        if old and rng.random() < 0.2:
            dev, seq = rng.choice(old)  # a retry of a frame stored in an earlier life
        else:
            k += 1
            dev, seq = 1 + k % 3, rnd * 100000 + k
        mtype = 1 if seq % 4 == 0 else 8
        batch.append(Record(dev, seq, mtype, 0, 1000, 1000, json.dumps({"s": seq})))
    for r in batch:
        say("T", s.ref_for(r.device_id, r.seq))  # attempted (anything on disk must be here)
    for a in s.add_many(batch):
        if a.durable:
            say("S", a.ref)  # the device would now be told STORED
    if rng.random() < 0.3:
        p = s.pending(5)
        if p:
            s.mark_delivered(p[0].ref, 1)
            say("D", p[0].ref)
"""


def test_kill_9_never_loses_a_stored_frame_nor_duplicates_nor_invents(tmp_path: Path):
    path = tmp_path / "hub.db"
    rng = random.Random(20240607)
    attempted: set[str] = set()
    stored: set[str] = set()
    delivered: set[str] = set()
    for rnd in range(1, 9):
        proc = subprocess.Popen(
            [sys.executable, "-c", _CRASH_CHILD, str(REPO), str(path), str(rnd)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        sets = {"T": attempted, "S": stored, "D": delivered}
        stop_after = rng.randint(1, 400)
        for n, line in enumerate(proc.stdout, start=1):
            tag, ref = line.split()
            sets[tag].add(ref)
            if n >= stop_after:
                break
        proc.kill()  # SIGKILL, wherever the child is
        proc.wait(timeout=10)
        for line in proc.stdout:  # what it said before dying, still in the pipe
            if line.endswith("\n"):
                tag, ref = line.split()
                sets[tag].add(ref)
        err = proc.stderr.read() if proc.stderr else ""
        assert proc.returncode == -9, err
        with side_conn(path) as c:
            rows = c.execute("SELECT ref, device_id, seq, state FROM events").fetchall()
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        refs = {r[0] for r in rows}
        assert stored <= refs, "told STORED, then lost: %s" % sorted(stored - refs)[:5]
        assert refs <= attempted, "invented: %s" % sorted(refs - attempted)[:5]
        assert len({(r[1], r[2]) for r in rows}) == len(rows) == len(refs)
        assert all(r[3] == DELIVERED for r in rows if r[0] in delivered)
    assert len(stored) > 50


# -- random operation sequences --------------------------------------------------------------


class StoreMachine(RuleBasedStateMachine):
    """Adds, retries, marks, prunes, failing disk, crash + restart, against a model.

    A crash drops the Store without closing it (like kill -9: what is only in memory is gone);
    the restarted hub reloads its replay windows from the store, as the daemon does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="store-sm-")
        self.path = os.path.join(self.dir, "hub.db")
        self.now = T0
        self.arrival = 0
        self.next_seq = {1: 0, 2: 0, 3: 0}
        # ref -> dict(dev, seq, alarm, arrival, state, ever_durable)
        self.model: dict[str, dict] = {}
        self.windows = {d: ReplayWindow() for d in self.next_seq}
        self._open()

    def _open(self) -> None:
        self.s = Store(
            self.path,
            hub_id=HUB,
            max_events=8,
            retention_days=1,
            retry_interval_s=0,
            overflow_max=10_000,
        )
        self.conn = FailingConn(self.s._db)  # type: ignore[arg-type]
        self.s._db = self.conn  # type: ignore[assignment]

    def teardown(self) -> None:
        self.s._db = self.conn.real  # type: ignore[assignment]
        self.s.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _settled(self) -> None:
        """After a successful commit everything queued is on disk."""
        if self.s.fault is None and not self.s.stats()["held"]:
            for m in self.model.values():
                m["ever_durable"] = True
                m["durable_state"] = m["state"]

    def _add(self, dev: int, seq: int, alarm: bool, local: bool = False) -> None:
        ref = self.s.ref_for(dev, seq)
        w = self.windows[dev]
        w.accept(seq)
        r = rec(dev, seq, T_SOS if alarm else T_HEARTBEAT, recv_ms=self.now)
        if local:  # nothing to send: stored as delivered
            r = dataclasses.replace(r, payload_json="", delivered_ms=self.now)
        a = self.s.add(r, states={"replay:%d" % dev: w.to_bytes()})
        assert a.is_new and a.ref == ref
        assert a.durable == (not self.conn.failing)
        self.arrival += 1
        state = DELIVERED if local else PENDING
        self.model[ref] = {
            "dev": dev,
            "seq": seq,
            "alarm": alarm,
            "arrival": self.arrival,
            "local": local,
            "state": state,
            "durable_state": state if a.durable else PENDING,
            "ever_durable": a.durable,
        }
        self._settled()

    @rule(
        dev=st.sampled_from([1, 2, 3]),
        alarm=st.booleans(),
        local=st.sampled_from([False, False, True]),
    )
    def add_new(self, dev: int, alarm: bool, local: bool) -> None:
        self.next_seq[dev] += 1
        self._add(dev, self.next_seq[dev], alarm, local)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def add_again(self, data) -> None:
        ref = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[ref]
        a = self.s.add(rec(m["dev"], m["seq"], T_SOS if m["alarm"] else T_HEARTBEAT))
        assert not a.is_new and a.ref == ref
        self._settled()

    @precondition(lambda self: self.model)
    @rule(data=st.data(), help_=st.booleans())
    def mark(self, data, help_: bool) -> None:
        ref = data.draw(st.sampled_from(sorted(self.model)))
        ok = (self.s.mark_help if help_ else self.s.mark_delivered)(ref, self.now)
        assert ok
        m = self.model[ref]
        m["state"] = max(m["state"], HELP if help_ else DELIVERED)
        self._settled()

    @rule(days=st.integers(0, 2))
    def prune(self, days: int) -> None:
        self.now += days * DAY
        r = self.s.prune(self.now)
        if r.error is None and r.over_capacity:
            with sqlite3.connect(self.path) as c:
                assert (
                    c.execute(
                        "SELECT COUNT(*) FROM events WHERE alarm = 0 AND state > 0"
                    ).fetchone()[0]
                    == 0
                )
        for ref in list(self.model):
            if self.s.get(ref) is None:
                m = self.model.pop(ref)
                assert not m["alarm"] and m["state"] > PENDING, "pruned %s %r" % (ref, m)
        self._settled()

    @rule(failing=st.booleans())
    def disk(self, failing: bool) -> None:
        self.conn.failing = failing
        if not failing:
            assert self.s.flush_overflow()
            self._settled()

    @rule()
    def crash_and_restart(self) -> None:
        self.conn.real.close()  # no flush: memory is lost, as with kill -9
        self._open()
        for d in self.windows:
            blob = self.s.get_state("replay:%d" % d)
            self.windows[d] = ReplayWindow.from_bytes(blob) if blob else ReplayWindow()
        lost = []
        for ref, m in list(self.model.items()):
            e = self.s.get(ref)
            if e is None:
                assert not m["ever_durable"], "durable event lost: %s" % ref
                # Not durable, so never acknowledged STORED: the device retries it, and its
                # replay window never got onto the disk ahead of it.
                assert self.windows[m["dev"]].check(m["seq"]) != R_DUPLICATE
                del self.model[ref]
                lost.append((m["dev"], m["seq"], m["alarm"], m["local"]))
                continue
            assert m["durable_state"] <= e.state <= m["state"]
            m["state"] = m["durable_state"] = e.state
            m["ever_durable"] = True
        for dev, seq, alarm, local in lost:  # the devices' retries arrive: new, and stored
            self._add(dev, seq, alarm, local)

    @invariant()
    def pending_matches_model_in_uplink_order(self) -> None:
        want = [r for r, m in self.model.items() if m["state"] == PENDING]
        got = self.s.pending(1000, alarms_first=False)
        assert [e.ref for e in got] == sorted(want, key=lambda r: self.model[r]["arrival"])
        assert len({(e.device_id, e.seq) for e in got}) == len(got)

        def promoted(r: str) -> bool:
            m = self.model[r]
            return any(
                self.model[o]["alarm"]
                and self.model[o]["dev"] == m["dev"]
                and self.model[o]["arrival"] >= m["arrival"]
                for o in want
            )

        first = [e.ref for e in self.s.pending(1000)]
        assert first == sorted(want, key=lambda r: (not promoted(r), self.model[r]["arrival"]))

    @invariant()
    def alarms_and_durable_undelivered_events_are_there(self) -> None:
        for ref, m in self.model.items():
            e = self.s.get(ref)
            assert e is not None, ref
            assert e.state == m["state"] and e.alarm == m["alarm"]
            if m["ever_durable"]:
                assert e.durable, ref


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# -- threads and the benchmark ---------------------------------------------------------------


def test_usable_from_one_executor_thread(path: Path):
    s = Store(path, hub_id=HUB)  # created on the loop thread
    box: list[object] = []
    t = threading.Thread(target=lambda: box.append(s.add(rec(1, 1, T_SOS))))
    t.start()
    t.join()
    assert box and box[0].durable  # type: ignore[attr-defined]
    assert s.status_of(1, 1) == ACK_STORED
    s.close()


def test_bench_runs(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "store_commit.py"), str(tmp_path), "--rows", "60"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "FULL, 1 row per commit" in proc.stdout and "commits/s" in proc.stdout
    assert not list(tmp_path.iterdir())  # cleans up after itself


def test_alarm_types_match_the_protocol():
    assert [t for t in range(1, 15) if is_alarm(t)] == [1, 2, 3, 4, 5, 6]
