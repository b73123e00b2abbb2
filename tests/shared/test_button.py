"""Button: debounce, press/release pairing, long, multi, stuck; wrap-safe, never crashes."""

import pytest
from hypothesis import given, settings, strategies as st

from shared.button import (
    EV_LONG,
    EV_MULTI,
    EV_PRESS,
    EV_RELEASE,
    EV_STUCK,
    EV_UNSTUCK,
    Button,
)
from shared.ticks import MAX_DIFF, PERIOD, wrap

ALL = EV_PRESS | EV_RELEASE | EV_LONG | EV_MULTI | EV_STUCK | EV_UNSTUCK


def samples(segments, step=1):
    """[(level, duration_ms)] -> [(t, level)]: a sample at each segment start, then every step."""
    out, t = [], 0
    for level, dur in segments:
        out.extend((t + k, level) for k in range(0, dur, step))
        t += dur
    return out


def run(b, points, start=0):
    """Feed (t, level) points (None = poll); return [(t, ev, press_at - start, held, count)]."""
    out = []
    for t, level in points:
        now = wrap(start + t)
        ev = b.poll(now) if level is None else b.update(now, level)
        if ev:
            out.append((t, ev, wrap(b.press_at - start), b.held_ms, b.count))
    return out


def kinds(events, mask):
    return [e for e in events if e[1] & mask]


# --- plain behaviour ---------------------------------------------------------------------


def test_clean_press_and_release():
    ev = run(Button(), samples([(0, 200), (1, 300), (0, 1000)]))
    assert ev == [(250, EV_PRESS, 200, 50, 1), (550, EV_RELEASE, 200, 300, 1)]


def test_bounce_is_absorbed_and_press_dated_at_first_edge():
    press = [(1, 2), (0, 1), (1, 3), (0, 2), (1, 400)]  # contact bounce, then held
    release = [(0, 1), (1, 2), (0, 1), (1, 1), (0, 1000)]
    ev = run(Button(), samples([(0, 100), *press, *release]))
    assert [e[1] for e in ev] == [EV_PRESS, EV_RELEASE]
    assert ev[0][0] == 108 + 50  # confirmed 50 ms after the last bounce edge
    assert ev[0][2] == 100  # but dated at the first edge
    assert ev[1][3] == 508 - 100  # held from first press edge to first release edge


def test_pressed_at_first_sample_is_a_press():
    # Woken from deep sleep by the button: the very first sample is already pressed.
    b = Button()
    assert b.update(5000, True) == 0
    assert b.update(5049, True) == 0
    assert b.update(5050, True) == EV_PRESS
    assert b.press_at == 5000


def test_continuous_chatter_gives_nothing_and_cannot_backdate_a_press():
    chatter = [(k % 2, 10) for k in range(1000)]  # 10 s of 50 Hz chatter
    ev = run(Button(), samples([(0, 100), *chatter, (1, 3000), (0, 500)], step=5))
    assert [e[1] for e in ev] == [EV_PRESS, EV_LONG, EV_RELEASE]
    t_press, _, press_at, held, _ = ev[0]
    assert t_press - press_at == held < 2 * 50 + 5  # not dated back into the chatter
    assert ev[1][0] - press_at == 1000  # so the long press runs from a real edge


def test_glitch_during_a_hold_is_not_a_release():
    segs = [(0, 100), (1, 600), (0, 30), (1, 600), (0, 500)]
    ev = run(Button(), samples(segs))
    assert [e[1] for e in ev] == [EV_PRESS, EV_LONG, EV_RELEASE]
    assert ev[1][0] == 1100  # the long press still counts from the first edge
    assert ev[2][3] == 1230


def test_long_press_once_then_release():
    ev = run(Button(), samples([(0, 100), (1, 2500), (0, 1000)], step=10))
    assert [(e[0], e[1]) for e in ev] == [(150, EV_PRESS), (1100, EV_LONG), (2650, EV_RELEASE)]
    assert ev[2][3] == 2500


def test_poll_reports_time_based_events():
    b = Button()
    b.update(0, False)
    b.update(10, True)
    got = [(t, b.poll(t)) for t in range(20, 2000, 10)]
    assert [x for x in got if x[1]] == [(60, EV_PRESS), (1010, EV_LONG)]


def taps(n, hold=100, gap=200):
    segs = []
    for _ in range(n):
        segs += [(1, hold), (0, gap)]
    return segs


@pytest.mark.parametrize("n", [3, 4, 7])
def test_multi_press_reports_count_after_the_gap(n):
    # multi_max widened: by default only exactly 3 presses are a multi-press
    # (tests/shared/test_button_exact_multi.py).
    ev = run(Button(multi_max=7), samples([(0, 100), *taps(n), (0, 2000)], step=5))
    multi = kinds(ev, EV_MULTI)
    assert len(kinds(ev, EV_PRESS)) == n
    assert [e[4] for e in multi] == [n]
    last_release_edge = 100 + n * 300 - 200
    assert multi[0][0] == last_release_edge + 400


def test_two_presses_are_not_a_multi_press():
    ev = run(Button(), samples([(0, 100), *taps(2), (0, 2000)]))
    assert not kinds(ev, EV_MULTI)
    assert [e[4] for e in kinds(ev, EV_PRESS)] == [1, 2]


def test_gap_of_multi_gap_ms_splits_sequences():
    segs = [(0, 100), *taps(3), (0, 400 - 200), *taps(3, gap=390), (0, 1000)]
    ev = run(Button(), samples(segs))
    assert [e[4] for e in kinds(ev, EV_MULTI)] == [3, 3]


def test_a_long_press_spoils_the_sequence():
    for segs in (
        [(1, 100), (0, 200), (1, 1200), (0, 200), (1, 100), (0, 2000)],
        [(1, 1200), (0, 200), *taps(3), (0, 2000)],
    ):
        ev = run(Button(), samples([(0, 100), *segs], step=5))
        assert kinds(ev, EV_LONG) and not kinds(ev, EV_MULTI)


def test_stuck_is_reported_once_and_silences_the_button():
    b = Button()
    segs = [(0, 100), (1, 45_000), (0, 30), (1, 20_000), (0, 1000)]  # a glitch mid-stuck
    ev = run(b, samples(segs, step=10))
    assert [(e[0], e[1]) for e in ev] == [
        (150, EV_PRESS),
        (1100, EV_LONG),
        (30_100, EV_STUCK),
        (65_130 + 50, EV_RELEASE | EV_UNSTUCK),
    ]
    # Afterwards it is an ordinary button again.
    ev = run(b, samples([(0, 0), (0, 100), (1, 100), (0, 100)]), start=70_000)
    assert [e[1] for e in ev] == [EV_PRESS, EV_RELEASE]


def test_stuck_for_weeks_saturates_without_events():
    b = Button()
    b.update(0, True)
    assert b.update(50, True) == EV_PRESS
    evs, t = [], 50
    for _ in range(24 * 21):  # three weeks of hourly polls, across many tick wraps
        t += 3_600_000
        evs.append(b.poll(wrap(t)))
    assert [e for e in evs if e] == [EV_LONG | EV_STUCK]
    assert b.held_ms == MAX_DIFF
    assert b.update(wrap(t + 10), False) == 0
    assert b.update(wrap(t + 60), False) == EV_RELEASE | EV_UNSTUCK


def test_backwards_or_out_of_contract_gap_counts_as_no_time():
    b = Button()
    b.update(1000, True)
    assert b.update(900, True) == 0  # earlier tick: zero time, not a negative one
    assert b.update(949, True) == 0  # time runs on from the new tick
    assert b.update(950, True) == EV_PRESS
    assert b.press_at == 1000
    assert b.update(wrap(950 + 2**29), True) == 0  # exactly half a period reads as -2**29
    assert b.held_ms == 50


@pytest.mark.parametrize(
    "kw",
    [
        {"debounce_ms": 0},
        {"debounce_ms": 1001},
        {"debounce_ms": 50.0},
        {"long_ms": 100},
        {"long_ms": True},
        {"multi_gap_ms": 0},
        {"multi_min": 1},
        {"stuck_ms": 1000},
        {"stuck_ms": MAX_DIFF + 1},
    ],
)
def test_bad_config_names_the_argument(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        Button(**kw)


# --- properties --------------------------------------------------------------------------

gap = st.one_of(st.integers(0, 120), st.integers(0, 2_000), st.integers(0, MAX_DIFF))
steps = st.lists(st.tuples(gap, st.sampled_from([True, False, None])), max_size=300)


def points_of(step_list):
    t, out = 0, []
    for dt, level in step_list:
        t += dt
        out.append((t, level))
    return out


@settings(deadline=None, max_examples=300)
@given(steps)
def test_never_crashes_and_events_stay_consistent(step_list):
    b = Button()
    pressed = stuck = long_done = False
    for t, level in points_of(step_list):
        ev = b.poll(wrap(t)) if level is None else b.update(wrap(t), level)
        assert type(ev) is int and ev & ~ALL == 0
        assert 0 <= b.held_ms <= MAX_DIFF
        assert not (ev & EV_PRESS and ev & (EV_RELEASE | EV_MULTI))
        if stuck:  # a stuck button says nothing until its clean release
            assert ev in (0, EV_RELEASE | EV_UNSTUCK)
        if ev & EV_PRESS:
            assert not pressed
            pressed, long_done = True, False
        if ev & EV_LONG:
            assert pressed and not long_done
            long_done = True
        if ev & EV_STUCK:
            assert pressed and long_done and not stuck
            stuck = True
        if ev & EV_RELEASE:
            assert pressed
            assert bool(ev & EV_UNSTUCK) == stuck
            pressed = stuck = False
        if ev & EV_MULTI:
            assert not pressed and b.count >= b.multi_min
        assert b.is_pressed == pressed


@settings(deadline=None, max_examples=200)
@given(steps, st.integers(0, PERIOD - 1))
def test_same_events_anywhere_on_the_tick_circle(step_list, start):
    points = points_of(step_list)
    assert run(Button(), points, start) == run(Button(), points, 0)


@settings(deadline=None, max_examples=100)
@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=150),
    st.integers(0, 20_000),
    st.integers(0, 2**29 - 1),
)
def test_wrap_just_ahead_of_the_start(step_list, ahead, offset_seed):
    # Start a little before the wrap so that the presses straddle it.
    pts, t, level = [], 0, False
    for i, dt in enumerate(step_list):
        t += dt * 10
        if i % 7 == 0:
            level = not level
        pts.append((t, level))
    start = PERIOD - 1 - (ahead % (t + 1))
    assert run(Button(), pts, start) == run(Button(), pts, offset_seed)


def burst(target, gaps):
    """Bounce: segments alternating from `target`, each < debounce."""
    return [(target if i % 2 == 0 else not target, g) for i, g in enumerate(gaps)]


short_runs = st.lists(
    st.lists(st.integers(1, 12), min_size=1, max_size=4).filter(lambda g: sum(g) < 50),
    min_size=1,
    max_size=40,
)


@settings(deadline=None, max_examples=200)
@given(short_runs, st.booleans())
def test_glitches_shorter_than_debounce_never_give_events(runs, held):
    # Each run is sampled at its irregular gaps, lasts < 50 ms, levels alternate.
    base = held
    pts, t = [], 0
    if held:
        pts = [(t, True), (t + 60, True)]  # a clean press first
        t = 100
    for i, gaps in enumerate(runs):
        level = (not base) if i % 2 == 0 else base
        for g in gaps:
            pts.append((t, level))
            t += g
    pts += [(t + k, base) for k in range(0, 1000, 7)]
    ev = run(Button(), pts)
    # Held: the clean press is reported (and becomes long), but no glitch is a release.
    assert [e[1] for e in ev if e[1] != EV_LONG] == ([EV_PRESS] if held else [])


bounce = st.lists(st.integers(1, 4), max_size=5)
press = st.tuples(
    bounce,
    st.one_of(st.integers(61, 400), st.integers(61, 1500)),  # hold after the bounce
    bounce,
    st.one_of(st.integers(61, 390), st.integers(61, 900)),  # rest after the bounce
)


@settings(deadline=None, max_examples=150)
@given(st.lists(press, min_size=1, max_size=8), st.integers(1, 10), st.integers(0, PERIOD - 1))
def test_clean_presses_match_a_reference_model(presses, step, start):
    segs, edges = [(False, 200)], []
    t = 200
    for b_in, hold, b_out, rest in presses:
        down = t
        segs += burst(True, b_in) + [(True, hold)]
        t += sum(b_in) + hold
        segs += burst(False, b_out) + [(False, rest)]
        edges.append((down, t))
        t += sum(b_out) + rest
    segs.append((False, 1000))
    pts = []
    t = 0
    for level, dur in segs:  # every edge sampled, then every `step` ms
        pts.extend((t + k, level) for k in range(0, dur, step))
        t += dur
    ev = run(Button(), pts, start)

    assert len(kinds(ev, EV_PRESS)) == len(kinds(ev, EV_RELEASE)) == len(presses)
    assert [e[2] for e in kinds(ev, EV_PRESS)] == [d for d, _ in edges]
    assert [e[3] for e in kinds(ev, EV_RELEASE)] == [u - d for d, u in edges]
    assert len(kinds(ev, EV_LONG)) == sum(u - d >= 1000 for d, u in edges)
    # Reference sequences: a press joins if it starts < 400 ms after the last release.
    seqs = []
    for i, (d, u) in enumerate(edges):
        if i and d - edges[i - 1][1] < 400:
            seqs[-1].append((d, u))
        else:
            seqs.append([(d, u)])
    want = [
        (len(s), s[-1][1] + 400) for s in seqs if len(s) == 3 and all(u - d < 1000 for d, u in s)
    ]
    got = [(e[4], e[0]) for e in kinds(ev, EV_MULTI)]
    assert [c for c, _ in got] == [c for c, _ in want]
    for (_, t_got), (_, t_due) in zip(got, want, strict=True):
        assert t_due <= t_got < t_due + step


def test_scenario_script_exercises_every_event(cpython):
    out = cpython("tests/shared/scenarios/button_scenario.py")
    for word in ("PRESS", "RELEASE", "LONG", "MULTI", "STUCK", "UNSTUCK", "wrapped"):
        assert word in out
