"""Device supervision: offline after missed heartbeats, restoral on return."""

from hub.supervision import OFFLINE, ONLINE, Supervisor

MIN = 60_000


def test_offline_after_two_missed_heartbeats_and_back():
    s = Supervisor(misses=2, grace_ms=10 * MIN)
    s.add(1, 60 * MIN, 0)
    assert s.seen(1, 1000) == ONLINE
    assert s.seen(1, 60 * MIN) is None
    assert s.check(60 * MIN + 130 * MIN - 1) == []
    assert s.check(60 * MIN + 130 * MIN + 1) == [(1, OFFLINE)]
    assert s.check(10**9) == []  # reported once
    assert s.seen(1, 10**9) == ONLINE  # restoral


def test_device_never_heard_goes_offline_after_a_window():
    s = Supervisor()
    s.add(7, 30 * MIN, 5_000)
    assert s.check(5_000 + 70 * MIN + 1) == [(7, OFFLINE)]


def test_learned_gaps_widen_the_window_for_a_slow_device():
    s = Supervisor(misses=2, grace_ms=0)
    s.add(3, 10 * MIN, 0)
    t = 0
    for _ in range(20):
        t += 25 * MIN  # really reports every 25 min although 10 was declared
        assert s.seen(3, t) in (None, ONLINE)
    assert s.window_ms(3) >= 50 * MIN
    assert s.check(t + 45 * MIN) == []


def test_unknown_device_is_ignored():
    s = Supervisor()
    assert s.seen(99, 0) is None and s.state(99) == "unknown"


def test_a_new_interval_applies_at_once_and_forgets_the_old_gaps():
    s = Supervisor(misses=2, grace_ms=0)
    s.add(3, 10 * MIN, 0)
    t = 0
    for _ in range(20):
        t += 25 * MIN
        s.seen(3, t)
    assert s.window_ms(3) >= 50 * MIN  # learned
    s.set_interval(3, 60 * MIN)
    assert s.window_ms(3) == 120 * MIN and s.check(t + 119 * MIN) == []
    s.set_interval(3, 5 * MIN)
    assert s.window_ms(3) == 10 * MIN  # the 25 min gaps were under another interval
    assert s.state(3) == ONLINE
    s.set_interval(99, MIN)  # an unknown device: nothing


def test_the_devices_offline_are_restored_from_their_stored_list():
    from hub.supervision import Supervisor

    before = Supervisor()
    for d in (1, 2, 3):
        before.add(d, 60_000, 0)
    assert len(before.check(20 * 60_000)) == 3  # all offline
    before.seen(2, 20 * 60_000 + 1)  # 2 back
    blob = before.offline_blob()
    after = Supervisor()
    for d in (1, 2):  # 3 removed from hub.toml meanwhile
        after.add(d, 60_000, 0)
    assert after.restore_offline(blob) == {1}
    assert after.state(1) == "offline" and after.state(2) == "unknown"
    assert after.check(10**9) == [(2, "offline")], "1 is not reported again"
    assert after.seen(1, 10**9) == "online"


def test_an_unreadable_stored_list_restores_none(caplog):
    from hub.supervision import Supervisor

    s = Supervisor()
    s.add(1, 60_000, 0)
    assert s.restore_offline(b"not json") == set() and s.state(1) == "unknown"
    assert "supervision_offline is unusable" in caplog.text
