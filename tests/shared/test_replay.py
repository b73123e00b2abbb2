"""The receiver's replay window: no accepted sequence number is ever accepted twice."""

from hypothesis import given, strategies as st

from shared.replay import R_DUPLICATE, R_NEW, R_TOO_OLD, ReplayWindow


@given(st.sampled_from([8, 64, 2048]), st.lists(st.integers(1, 5000), max_size=300),
       st.integers(0, 300))
def test_window_matches_a_model_and_never_accepts_twice(size, seqs, snap_at):
    w = ReplayWindow(size)
    accepted: set[int] = set()
    top = 0
    for i, s in enumerate(seqs):
        if i == snap_at:
            w = ReplayWindow.from_bytes(w.to_bytes())  # persisted and restored mid-stream
        r = w.check(s)
        if s <= top - size:
            assert r == R_TOO_OLD
        elif s in accepted:
            assert r == R_DUPLICATE
        else:
            assert r == R_NEW
        if r == R_NEW:
            w.accept(s)
            accepted.add(s)
            top = max(top, s)
        if r != R_TOO_OLD:
            assert w.check(s) == R_DUPLICATE  # a replay right after is never new


def test_late_alarm_inside_the_window_is_still_new():
    w = ReplayWindow()
    for s in range(2, 1500):  # routine frames accepted while frame 1 was still retrying
        w.accept(s)
    assert w.check(1) == R_NEW
    w.accept(1)
    assert w.check(1) == R_DUPLICATE


def test_restore_refuses_damaged_state():
    import pytest

    data = ReplayWindow(64).to_bytes()
    for bad in (data[:-1], b"\x09" + data[1:], b""):
        with pytest.raises(ValueError, match="replay window"):
            ReplayWindow.from_bytes(bad)
