"""PIR: warm-up, lock-out, motion, summaries, stuck, silent, after-still; wrap-safe."""

import pytest
from hypothesis import given, settings, strategies as st

from shared.pir import (
    EV_AFTER_STILL,
    EV_MOTION,
    EV_READY,
    EV_SILENT,
    EV_SILENT_CLEARED,
    EV_STUCK,
    EV_SUMMARY,
    EV_UNSTUCK,
    Pir,
)
from shared.ticks import MAX_DIFF, PERIOD, ticks_diff, wrap

ALL = 255
MIN = 60_000
HOUR = 3_600_000


def run(p, points, start=0):
    """start() at `start`, feed (t, level) (None = poll); return event records, start-relative."""
    p.start(start)
    out = []
    for t, level in points:
        now = wrap(start + t)
        ev = p.poll(now) if level is None else p.update(now, level)
        if ev:
            out.append(record(p, t, ev, start))
    return out


def record(p, t, ev, start):
    """An event with the attributes that belong to it (others may hold stale values)."""
    rec = [t, ev]
    if ev & EV_MOTION:
        rec.append(wrap(p.motion_at - start))
    if ev & EV_AFTER_STILL:
        rec.append(p.still_ms_before)
    if ev & EV_SUMMARY:
        rec += [p.summary_count, p.summary_active_ms, wrap(p.summary_end - start)]
        rec.append(p.summary_intervals)
    return tuple(rec)


def pulses(spans, until, step=1000):
    """High spans [(rise, fall)] -> sorted sample points: every edge plus a poll every step."""
    pts = {t: None for t in range(0, until, step)}
    for rise, fall in spans:
        pts[rise] = True
        pts[fall] = False
    return sorted(pts.items())


def only(events, mask):
    return [e for e in events if e[1] & mask]


def test_warm_up_hides_everything_then_needs_a_fresh_edge():
    p = Pir()
    spans = [(5000, 8000), (20_000, 70_000), (80_000, 83_000)]
    ev = run(p, pulses(spans, 120_000))
    assert [(e[0], e[1]) for e in ev] == [(60_000, EV_READY), (80_000, EV_MOTION)]
    assert ev[1][2] == 80_000


def test_update_before_start_starts_warm_up():
    p = Pir(warmup_ms=1000)
    assert p.update(500, False) == 0
    assert p.update(1499, True) == 0
    assert p.update(1500, True) == EV_READY  # high at the end of warm-up: not motion


def test_lockout_after_an_accepted_pulse_only():
    p = Pir(warmup_ms=0)
    spans = [
        (1000, 4000),  # motion
        (5000, 6000),  # 1 s after the fall: noise
        (7000, 9000),  # 3 s after the last ACCEPTED fall: motion
        (11_500, 12_000),  # exactly lockout_ms after the fall: motion
    ]
    ev = run(p, pulses(spans, 20_000))
    assert [e[0] for e in only(ev, EV_MOTION)] == [1000, 7000, 11_500]


def test_continuous_motion_with_a_short_block_time_is_still_seen():
    # A sensor whose block time (2.3 s) is below lockout_ms: every other pulse is accepted.
    spans = [(1000 + 5300 * k, 4000 + 5300 * k) for k in range(10)]
    ev = run(Pir(warmup_ms=0), pulses(spans, 60_000, step=100))
    assert [e[0] for e in only(ev, EV_MOTION)] == [1000 + 5300 * k for k in range(0, 10, 2)]


def test_min_pulse_rejects_short_pulses_and_dates_motion_at_the_edge():
    p = Pir(warmup_ms=0, min_pulse_ms=200)
    spans = [(1000, 1100), (1500, 1800)]  # the glitch does not start a lock-out
    ev = run(p, pulses(spans, 3000, step=10))
    assert ev == [(0, EV_READY), (1700, EV_MOTION, 1500)]


def test_summaries_count_motion_and_high_time_per_interval():
    p = Pir(warmup_ms=MIN)
    r = MIN  # intervals start at the end of warm-up
    spans = [(r + 10_000 * k, r + 10_000 * k + 3000) for k in range(5)]
    spans.append((r + 299_000, r + 302_000))  # straddles the first boundary
    ev = run(p, pulses(spans, r + 3 * 300_000 + 1))
    sums = [e[-4:] for e in only(ev, EV_SUMMARY)]
    assert sums == [
        (6, 5 * 3000 + 1000, r + 300_000, 1),
        (0, 2000, r + 600_000, 1),
        (0, 0, r + 900_000, 1),
    ]
    assert [e[0] for e in only(ev, EV_SUMMARY)] == [r + 300_000, r + 600_000, r + 900_000]


def test_late_call_collapses_missed_intervals():
    p = Pir(warmup_ms=0, interval_ms=300_000)
    pts = [(0, False), (1000, True), (4000, False), (10_000, True), (1_000_000, None)]
    pts += [(1_150_000, False), (1_200_000, None)]
    ev = run(p, pts)
    first, second = only(ev, EV_SUMMARY)
    # Three intervals closed at once; the output was high from 10 s on, taken as held.
    assert first[0] == 1_000_000
    assert first[-4:] == (2, 3000 + (900_000 - 10_000), 900_000, 3)
    assert second[-4:] == (0, 100_000 + 150_000, 1_200_000, 1)


def test_stuck_output_is_a_fault_and_not_a_person():
    p = Pir(warmup_ms=0)
    stuck_at = 1000 + 30 * MIN
    ev = run(p, pulses([(1000, 1000 + 40 * MIN), (45 * MIN, 45 * MIN + 2000)], 50 * MIN))
    assert [(e[0], e[1] & ~EV_SUMMARY) for e in ev if e[1] != EV_SUMMARY] == [
        (0, EV_READY),
        (1000, EV_MOTION),
        (stuck_at, EV_STUCK),
        (1000 + 40 * MIN, EV_UNSTUCK),
        (45 * MIN, EV_MOTION | EV_AFTER_STILL),
    ]
    # Stillness ran from the stuck pulse's rising edge, not from its fall.
    assert only(ev, EV_AFTER_STILL)[0][3] == 45 * MIN - 1000


def test_a_person_in_view_keeps_stillness_at_zero():
    # Retriggering sensor high for 20 min (not stuck), then 15 min quiet: not "after still".
    p = Pir(warmup_ms=0)
    ev = run(p, pulses([(1000, 1000 + 20 * MIN), (1000 + 35 * MIN, 1000 + 35 * MIN + 2000)], HOUR))
    assert not only(ev, EV_AFTER_STILL | EV_STUCK)
    assert len(only(ev, EV_MOTION)) == 2


def summaries(p, spans, until):
    """(minute, summary_count, summary_live) of each summary over the high `spans`."""
    p.start(0)
    seen = []
    for t, level in pulses(spans, until):
        e = p.poll(t) if level is None else p.update(t, level)
        if e & EV_SUMMARY:
            seen.append((t // MIN, p.summary_count, p.summary_live))
    return seen


def test_a_person_in_view_across_intervals_is_presence_in_each():
    # Review finding: a retriggering sensor held high by someone moving in view gave one edge,
    # then summaries of 0 motions: the hub saw stillness. summary_live says the pulse went on.
    seen = summaries(Pir(warmup_ms=0, interval_ms=5 * MIN), [(1000, 22 * MIN)], 40 * MIN)
    assert seen == [(5, 1, False), (10, 0, True), (15, 0, True), (20, 0, True), (25, 0, True),
                    (30, 0, False), (35, 0, False)]


def test_a_stuck_output_is_no_presence_once_declared():
    seen = summaries(Pir(warmup_ms=0, interval_ms=10 * MIN), [(1000, 80 * MIN)], 90 * MIN)
    # stuck at 30 min + 1 s: the interval it falls in and those after are not presence
    assert seen == [(10, 1, False), (20, 0, True), (30, 0, True), (40, 0, False),
                    (50, 0, False), (60, 0, False), (70, 0, False), (80, 0, False)]


def test_after_still_needs_still_ms_since_the_last_motion():
    p = Pir(warmup_ms=0)
    a = 3000 + 29 * MIN  # 29 min after the first fall
    b = a + 2000 + 31 * MIN  # 31 min after the second fall
    ev = run(p, pulses([(1000, 3000), (a, a + 2000), (b, b + 2000)], b + MIN))
    motions = only(ev, EV_MOTION)
    assert [m[1] & EV_AFTER_STILL for m in motions] == [0, 0, EV_AFTER_STILL]
    assert motions[2][3] == 31 * MIN


def test_noise_never_masks_stillness():
    p = Pir(warmup_ms=0, min_pulse_ms=500)
    glitches = [(MIN * k, MIN * k + 100) for k in range(1, 120)]  # 100 ms spikes, 2 h
    real = 2 * HOUR + 30_000
    ev = run(p, pulses([(1000, 3000), *glitches, (real, real + 2000)], real + MIN, step=10_000))
    motions = only(ev, EV_MOTION)
    assert len(motions) == 2
    assert motions[1][1] & EV_AFTER_STILL and motions[1][3] == real - 3000


def test_silent_sensor_reported_once_then_cleared_by_motion():
    p = Pir(warmup_ms=0)
    end = 3000 + 48 * HOUR
    pts = pulses([(1000, 3000)], 50 * HOUR, step=MIN)
    ev = run(p, [*pts, (50 * HOUR, True)])
    assert [e[0] for e in only(ev, EV_SILENT)] == [end - end % MIN + MIN]
    last = ev[-1]
    assert last[0] == 50 * HOUR
    assert last[1] & (EV_MOTION | EV_SILENT_CLEARED | EV_AFTER_STILL) == (
        EV_MOTION | EV_SILENT_CLEARED | EV_AFTER_STILL
    )
    assert last[3] == 50 * HOUR - 3000


def test_silent_from_power_up_when_nothing_ever_fires():
    p = Pir()
    ev = run(p, [(t, None) for t in range(0, 3 * 24 * HOUR, 10 * MIN)])
    silent = only(ev, EV_SILENT)
    assert len(silent) == 1 and silent[0][0] == MIN * 10 * -(-(MIN + 48 * HOUR) // (10 * MIN))


@pytest.mark.parametrize(
    "kw",
    [
        {"warmup_ms": -1},
        {"interval_ms": 999},
        {"interval_ms": 60_000.0},
        {"still_ms": 0},
        {"stuck_ms": MAX_DIFF + 1},
        {"silent_ms": 10},
        {"lockout_ms": 60_001},
        {"min_pulse_ms": -5},
        {"stuck_ms": 2000, "min_pulse_ms": 2000},
    ],
)
def test_bad_config_names_the_argument(kw):
    with pytest.raises(ValueError, match=sorted(kw)[-1]):
        Pir(**kw)


# --- properties --------------------------------------------------------------------------

gap = st.one_of(st.integers(0, 3000), st.integers(0, 400_000), st.integers(0, MAX_DIFF))
steps = st.lists(st.tuples(gap, st.sampled_from([True, False, None])), max_size=200)
configs = st.fixed_dictionaries(
    {
        "warmup_ms": st.sampled_from([0, 1000, 60_000]),
        "interval_ms": st.sampled_from([1000, 7000, 300_000]),
        "still_ms": st.sampled_from([1000, 20_000, 1_800_000]),
        "stuck_ms": st.sampled_from([5000, 1_800_000]),
        "silent_ms": st.sampled_from([1000, 50_000, 172_800_000]),
        "lockout_ms": st.sampled_from([0, 2500]),
        "min_pulse_ms": st.sampled_from([0, 300]),
    }
)


def points_of(step_list):
    t, out = 0, []
    for dt, level in step_list:
        t += dt
        out.append((t, level))
    return out


@settings(deadline=None, max_examples=300)
@given(steps, configs)
def test_never_crashes_and_nothing_is_lost(step_list, cfg):
    p = Pir(**cfg)
    p.start(0)
    ready_at = cfg["warmup_ms"]
    seen_ready = stuck = silent = False
    motions = summed_count = summed_active = summed_span = high_after_ready = 0
    prev_t, level = 0, False
    for t, sample in points_of(step_list):
        if level:  # the previous sample holds until now
            high_after_ready += max(0, t - max(prev_t, ready_at))
        ev = p.poll(wrap(t)) if sample is None else p.update(wrap(t), sample)
        if sample is not None:
            level = sample
        prev_t = t
        assert type(ev) is int and ev & ~ALL == 0
        if ev & EV_READY:
            assert not seen_ready and t >= ready_at
            seen_ready = True
        assert seen_ready or ev == 0  # nothing before warm-up ends
        assert p.ready == (t >= ready_at)
        motions += bool(ev & EV_MOTION)
        if ev & EV_SUMMARY:
            assert p.summary_intervals >= 1
            assert 0 <= ticks_diff(wrap(t), p.summary_end) < cfg["interval_ms"]
            summed_count += p.summary_count
            summed_active += p.summary_active_ms
            summed_span += p.summary_intervals * cfg["interval_ms"]
        # An event and its opposite may share a call when calls are sparse; the
        # attributes then give the state after the call.
        if ev & EV_STUCK:
            assert not stuck and (level or ev & EV_UNSTUCK)
        if ev & EV_UNSTUCK:
            assert (stuck or ev & EV_STUCK) and not level
        stuck = p.stuck
        assert stuck == bool(level and (ev & EV_STUCK or stuck))
        if ev & EV_SILENT:
            assert not silent or ev & EV_SILENT_CLEARED
        if ev & EV_SILENT_CLEARED:
            assert (silent or ev & EV_SILENT) and ev & EV_MOTION
        if ev & (EV_SILENT | EV_SILENT_CLEARED) == EV_SILENT:
            assert p.silent
        if ev & (EV_SILENT | EV_SILENT_CLEARED) == EV_SILENT_CLEARED:
            assert not p.silent
        silent = p.silent
        if ev & EV_AFTER_STILL:
            assert ev & EV_MOTION and p.still_ms_before >= cfg["still_ms"]
        assert 0 <= p.since_motion_ms <= MAX_DIFF
    # Conservation: every motion, every ms of high output and of time since warm-up is
    # in exactly one summary or in the interval still open.
    assert summed_count + p._int_count == motions
    assert summed_active + p._int_active == high_after_ready
    assert summed_span + p._int_ms == max(0, prev_t - ready_at)


@settings(deadline=None, max_examples=200)
@given(steps, configs, st.integers(0, PERIOD - 1))
def test_same_events_anywhere_on_the_tick_circle(step_list, cfg, start):
    points = points_of(step_list)
    assert run(Pir(**cfg), points, start) == run(Pir(**cfg), points, 0)


@settings(deadline=None, max_examples=100)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=200), st.integers(0, 2**20))
def test_wrap_just_ahead_of_the_start(step_list, ahead):
    pts, t, level = [], 0, False
    for i, dt in enumerate(step_list):
        t += dt * 500
        if i % 3 == 0:
            level = not level
        pts.append((t, level))
    cfg = {"warmup_ms": 1000, "interval_ms": 7000, "still_ms": 5000, "stuck_ms": 8000}
    start = PERIOD - 1 - (ahead % (t + 1))
    assert run(Pir(**cfg), pts, start) == run(Pir(**cfg), pts, 12345)


def test_scenario_script_exercises_every_event(cpython):
    out = cpython("tests/shared/scenarios/pir_scenario.py")
    for word in (
        "READY",
        "MOTION",
        "SUMMARY",
        "AFTER_STILL",
        "STUCK",
        "UNSTUCK",
        "SILENT",
        "SILENT_CLEARED",
        "wrapped",
    ):
        assert word in out
