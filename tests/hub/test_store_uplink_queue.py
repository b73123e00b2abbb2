"""The store as the uplink's queue: each device's order kept with alarms first, a long backlog
drained once and in order, marks that only climb, deferred marks sharing one commit."""

from __future__ import annotations

import random
from pathlib import Path

from store_testing import HUB, T0, rec, side_conn

from hub.store import DELIVERED, HELP, Event, Store
from shared.frame import ACK_DELIVERED, T_FALL_CONFIRMED, T_HEARTBEAT, T_MOTION, T_SOS


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
