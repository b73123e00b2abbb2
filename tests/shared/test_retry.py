"""The retry schedule: a fast burst, then bounded backoff, deterministic, wrap-safe."""

import pytest
from hypothesis import given, settings, strategies as st

from shared.retry import Retry
from shared.ticks import PERIOD, ticks_add, ticks_diff


def attempt_times(r: Retry, start: int, seed: int, horizon_ms: int, step: int = 10) -> list[int]:
    r.start(start, seed)
    out, t = [], start
    for _ in range(horizon_ms // step):
        if r.due(t):
            out.append(ticks_diff(t, start))
            r.sent(t)
        t = ticks_add(t, step)
    return out


@settings(deadline=None, max_examples=40)
@given(st.integers(0, PERIOD - 1), st.integers(0, 10**6))
def test_same_schedule_anywhere_on_the_tick_circle(start, seed):
    base = attempt_times(Retry(), 0, seed, 600_000)
    assert attempt_times(Retry(), start, seed, 600_000) == base


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 10**6))
def test_burst_then_bounded_backoff(seed):
    r = Retry(burst=3, burst_ms=600, first_ms=2000, max_ms=60_000, jitter_pct=10)
    times = attempt_times(r, 0, seed, 3 * 3600_000, step=50)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert times[0] == 0  # the first attempt goes out at once
    assert gaps[:2] == [600, 600]  # the burst
    assert all(g <= 66_000 + 50 for g in gaps)  # never waits past the ceiling + jitter
    assert all(g >= 1800 for g in gaps[2:])  # after the burst it backs off
    last_hour = [t for t in times if t >= 2 * 3600_000]
    assert len(last_hour) <= 3600 // 54 + 1  # energy bound: <= one per 54 s at the ceiling


def test_deterministic_for_a_seed_and_spread_between_seeds():
    a = attempt_times(Retry(), 0, 1, 900_000)
    assert a == attempt_times(Retry(), 0, 1, 900_000)
    assert a != attempt_times(Retry(), 0, 2, 900_000)


def test_routine_messages_give_up_and_alarms_do_not():
    routine = Retry(max_attempts=4)
    assert len(attempt_times(routine, 0, 0, 3600_000)) == 4
    assert not routine.active
    alarm = Retry()
    assert len(attempt_times(alarm, 0, 0, 3600_000)) > 20
    assert alarm.active


def test_overdue_after_notify_time_and_stop():
    r = Retry(notify_ms=25_000)
    r.start(PERIOD - 5000)
    assert not r.overdue(ticks_add(PERIOD - 5000, 24_000))
    assert r.overdue(ticks_add(PERIOD - 5000, 25_000))
    r.stop()
    assert not r.due(ticks_add(PERIOD - 5000, 30_000)) and not r.overdue(0)


@pytest.mark.parametrize("kw,word", [
    ({"burst": 0}, "burst"), ({"max_ms": 1000}, "max_ms"), ({"jitter_pct": 80}, "jitter_pct"),
    ({"factor_pct": 50}, "factor_pct"), ({"max_attempts": -1}, "max_attempts"),
])
def test_bad_config_is_named(kw, word):
    with pytest.raises(ValueError, match=word):
        Retry(**kw)
