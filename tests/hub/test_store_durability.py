"""Adding to the store: committed before the call returns, stored once however often retried,
one commit per batch, kept across a reopen; the commit benchmark runs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from store_testing import HUB, REPO, T0, rec, side_conn

from hub import contract
from hub.store import DELIVERED, PENDING, Store
from shared.frame import ACK_DELIVERED, ACK_HELP, ACK_STORED, T_MOTION, T_SOS
from shared.replay import R_DUPLICATE, ReplayWindow


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
