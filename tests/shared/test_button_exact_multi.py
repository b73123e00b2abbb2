"""shared.button: the multi-press is EXACTLY multi_min..multi_max presses (default: 3).

Review finding 5: EV_MULTI fired for any count >= 3, so panic hammering became the
weekly test. Now more presses than multi_max give no EV_MULTI at all, and the decision
is taken only once the gap after the last press has passed with no further press.
"""

import pytest
from hypothesis import given, settings, strategies as st

from shared.button import EV_MULTI, EV_PRESS, Button
from shared.ticks import PERIOD, wrap


def feed(b, segs, start=0, step=5):
    """[(level, ms)] sampled every `step` ms from `start`; returns [(t, ev, count)]."""
    out, t = [], 0
    for level, dur in segs:
        for k in range(0, dur, step):
            ev = b.update(wrap(start + t + k), level)
            if ev:
                out.append((t + k, ev, b.count))
        t += dur
    return out


def taps(n, hold=100, gap=200):
    segs = []
    for _ in range(n):
        segs += [(1, hold), (0, gap)]
    return segs


def multis(events):
    return [(t, c) for t, ev, c in events if ev & EV_MULTI]


def test_default_is_exactly_three():
    b = Button()
    assert (b.multi_min, b.multi_max) == (3, 3)


@pytest.mark.parametrize("n", [4, 5, 6, 10, 30])
def test_more_than_three_presses_are_no_gesture(n):
    ev = feed(Button(multi_gap_ms=1000), [(0, 100), *taps(n, 200, 300), (0, 3000)])
    assert len([e for e in ev if e[1] & EV_PRESS]) == n
    assert not multis(ev)


def test_three_presses_fire_only_after_the_gap_with_no_fourth():
    ev = feed(Button(multi_gap_ms=1000), [(0, 100), *taps(3, 200, 300), (0, 3000)])
    last_release = 100 + 2 * 500 + 200
    assert multis(ev) == [(last_release + 1000, 3)]


def test_a_fourth_press_just_before_the_gap_ends_cancels_the_gesture():
    # The fourth press starts 990 ms after the third's release: it joins, count 4.
    segs = [(0, 100), *taps(2, 200, 300), (1, 200), (0, 990), (1, 200), (0, 3000)]
    ev = feed(Button(multi_gap_ms=1000), segs)
    assert [c for t, e, c in ev if e & EV_PRESS] == [1, 2, 3, 4]
    assert not multis(ev)


def test_a_press_after_the_gap_starts_a_new_sequence():
    segs = [(0, 100), *taps(3, 200, 300), (0, 1000), (1, 200), (0, 3000)]
    ev = feed(Button(multi_gap_ms=1000), segs)
    assert [c for _t, c in multis(ev)] == [3]
    assert [c for t, e, c in ev if e & EV_PRESS] == [1, 2, 3, 1]


def test_the_range_is_configurable_and_checked():
    ev = feed(Button(multi_min=2, multi_max=4), [(0, 100), *taps(4), (0, 2000)])
    assert [c for _t, c in multis(ev)] == [4]
    for kw in ({"multi_max": 2}, {"multi_min": 4, "multi_max": 3}, {"multi_max": 101},
               {"multi_max": 3.0}):
        with pytest.raises(ValueError, match="multi_max"):
            Button(**kw)


@settings(deadline=None, max_examples=150)
@given(st.integers(1, 12), st.integers(0, PERIOD - 1))
def test_only_three_anywhere_on_the_tick_circle(n, start):
    ev = feed(Button(multi_gap_ms=1000), [(0, 100), *taps(n, 150, 400), (0, 2500)], start)
    assert [c for _t, c in multis(ev)] == ([3] if n == 3 else [])
