"""A full or failing disk under the store: alarms keep flowing from memory, a fault is raised
and cleared, held events reach the disk first once there is room.

Disk full is simulated two ways, both real SQLite failures rather than mocks of the store:
- `PRAGMA max_page_count` capped at the current size: SQLite then fails any write that needs
  a new page with SQLITE_FULL ("database or disk is full"), exactly the error a full disk
  gives, deterministically and without root or a tiny tmpfs (not available in CI);
- RLIMIT_FSIZE in a subprocess: the kernel refuses writes past the limit (EFBIG), SQLite
  reports SQLITE_IOERR_WRITE ("disk I/O error"), as from a failing SD card.
A connection proxy that fails writes on demand (store_testing.FailingConn) covers the
remaining write paths (marks, state blobs), here and in test_store_state_machine.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from store_testing import HUB, REPO, T0, FailingConn, rec, side_conn

from hub.store import DELIVERED, HELP, PENDING, Store
from shared.frame import ACK_DELIVERED, ACK_HELP, ACK_STORED, T_SOS
from shared.replay import R_DUPLICATE, ReplayWindow

BIG = "x" * 5000  # more than a 4 KiB page: storing it needs new pages


def disk_full(s: Store) -> None:
    """From now on every write needing a new page fails with SQLITE_FULL (see module doc)."""
    pages = s._db.execute("PRAGMA page_count").fetchone()[0]  # type: ignore[union-attr]
    s._db.execute("PRAGMA max_page_count = %d" % pages)  # type: ignore[union-attr]


def disk_freed(s: Store) -> None:
    s._db.execute("PRAGMA max_page_count = 1073741823")  # type: ignore[union-attr]


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
