"""Hub fault 211 (hub/identity_watch.py): raised when another client takes the hub's identity,
cleared after an hour connected without it, not raised and cleared all day by a copied key
used now and then, and kept across a restart."""

from __future__ import annotations

from hub.identity_watch import HOLD_S, IdentityWatch, stored_flag


def run(w: IdentityWatch, start: float, seconds: float, taken: bool, connected: bool = True):
    """Steps once a second; returns the changes (time, +1/-1)."""
    out = []
    t = start
    while t < start + seconds:
        change = w.step(t, taken, connected)
        if change:
            out.append((t, change))
        t += 1.0
    return out


def test_raised_once_and_cleared_after_an_hour_connected_without_a_takeover():
    w = IdentityWatch()
    assert run(w, 0, 600, taken=True) == [(0, 1)]
    assert run(w, 600, HOLD_S - 10, taken=False) == []
    ((t, change),) = run(w, 600 + HOLD_S - 10, 20, taken=False)
    assert change == -1 and 600 + HOLD_S - 1 <= t <= 600 + HOLD_S  # (the step counts from 599)
    assert not w.raised


def test_time_not_connected_does_not_count_towards_the_clear():
    w = IdentityWatch()
    run(w, 0, 10, taken=True)
    assert run(w, 10, 2 * HOLD_S, taken=False, connected=False) == []  # the broker is down
    assert w.raised
    assert run(w, 10 + 2 * HOLD_S, HOLD_S + 5, taken=False)[0][1] == -1


def test_a_copied_key_used_every_five_minutes_raises_it_once_all_day():
    w = IdentityWatch()
    changes = []
    for k in range(288):  # a day: taken over for 10 s every 5 min
        changes += run(w, k * 300, 10, taken=True)
        changes += run(w, k * 300 + 10, 290, taken=False)
    assert changes == [(0, 1)]


def test_a_restart_keeps_it_raised_and_clears_it_later():
    w = IdentityWatch(raised=True)  # from the store
    assert run(w, 1000, 60, taken=False) == []  # not raised again
    assert run(w, 1060, HOLD_S, taken=False)[-1][1] == -1


def test_an_unreadable_stored_flag_sends_the_next_verdict_either_way():
    assert [stored_flag(b) for b in (None, b"0", b"1", b"", b"yes")] == [
        False, False, True, None, None]
    w = IdentityWatch(None)  # maybe raised: an hour connected without a takeover clears it
    ((_, change),) = run(w, 0, HOLD_S + 5, taken=False)
    assert change == -1 and w.raised is False
    w = IdentityWatch(None)  # maybe not raised: a takeover raises it
    assert run(w, 0, 10, taken=True) == [(0, 1)]
