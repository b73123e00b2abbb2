"""Pruning the store: only delivered routine events expire or are trimmed, never alarms or
anything undelivered."""

from __future__ import annotations

from pathlib import Path

from store_testing import DAY, HUB, T0, rec

from hub.store import Store
from shared.frame import T_HEARTBEAT, T_SOS


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
