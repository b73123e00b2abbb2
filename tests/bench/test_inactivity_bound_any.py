"""The any-detector bound of bench/inactivity_bound.py: no detector that learns only from
the frames so far can alarm on a cut before the real stream's next frame without alarming on
the real stream too. Checked by hand on small streams, and against real replays of the
shipped detector and the baselines, which must never beat it except inside a still spell
where they did alarm on the real stream."""

from __future__ import annotations

import bisect
import random

import pytest

from bench import inactivity_eval as E
from bench.datasets.stream import DAY_S, Frame, Home, Pulse
from bench.inactivity_bound import HORIZON_S, causal_detection_times
from shared import inactivity as I

H = 3600.0
M = 60.0


def _motion(t: float) -> Frame:
    return Frame(t, I.SRC_MOTION, "hall", "activity")


def test_the_wait_is_to_the_next_frame_of_any_kind():
    frames = [_motion(1 * H), Frame(3 * H, I.SRC_DOOR, "front", "door"), _motion(7 * H)]
    # a door is no sign of life, but a detector sees it: the streams part there
    assert causal_detection_times(frames, [2 * H, 4 * H], end=10 * H) == [1 * H, 3 * H]


def test_after_the_last_frame_the_real_stream_is_still_until_its_end():
    frames = [_motion(1 * H)]
    assert causal_detection_times(frames, [2 * H], end=9 * H) == [7 * H]
    assert causal_detection_times(frames, [2 * H], end=200 * H) == [HORIZON_S]


def test_false_alarms_are_spent_on_the_spells_holding_the_most_waiting():
    frames = [_motion(0.0), _motion(4 * H), _motion(5 * H), _motion(11 * H)]
    cuts = [1 * H, 3 * H, 4.5 * H, 6 * H, 10 * H]  # spells: 0-4 h, 4-5 h, 5-11 h
    assert causal_detection_times(frames, cuts, 12 * H) == [3 * H, 1 * H, 0.5 * H, 5 * H, 1 * H]
    # the 5-11 h spell holds 6 h of waiting, the 0-4 h spell 4 h: one alarm goes to the first
    assert causal_detection_times(frames, cuts, 12 * H, 1) == [3 * H, 1 * H, 0.5 * H, 0, 0]
    assert causal_detection_times(frames, cuts, 12 * H, 2) == [0, 0, 0.5 * H, 0, 0]


def _home(seed: int, days: int = 12) -> tuple[Home, list[Frame]]:
    """A resident moving every 20-40 min by day, with random naps, late mornings and
    nights out of the ordinary: enough irregularity for the detectors to alarm sometimes."""
    rnd = random.Random(seed)
    frames = []
    for d in range(days):
        t = d * DAY_S + rnd.uniform(6, 9) * H
        bed = d * DAY_S + rnd.uniform(21, 23.5) * H
        while t < bed:
            frames.append(_motion(t))
            t += rnd.uniform(20, 40) * M
            if rnd.random() < 0.05:
                t += rnd.uniform(1, 4) * H  # a nap or a long sit
    end = days * DAY_S
    home = Home(f"synthetic-{seed}", [Pulse(0.0, end, "hall", "hall", "pir")], [], (0.0, end))
    return home, frames


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_detector_beats_the_bound_without_a_false_alarm_in_that_spell(seed):
    home, frames = _home(seed)
    cuts = [3 * DAY_S + k * 2.3 * H for k in range(80)]
    bound = causal_detection_times(frames, cuts, home.end)
    times = [f.t for f in frames]
    quick = {"floor_ms": 20 * 60_000, "min_days": 1, "margin_pct": 100, "buffer_ms": 0}
    makers = {**E.methods({}), "fast": lambda: I.Inactivity(**quick)}
    faster_seen = 0
    for name, make in makers.items():
        r = E.replay(home, frames, make, cuts, name, tick_s=60)
        alarm_times = sorted(t for t, _ in r.alarms)
        for c, d, b in zip(cuts, r.delays, bound, strict=True):
            if d >= b:
                continue
            # faster than the bound: only where the real stream alarmed in this very spell
            faster_seen += 1
            i = bisect.bisect_right(times, c)
            nxt = times[i] if i < len(times) else home.end
            last = times[i - 1] if i else home.start
            assert any(last <= a <= nxt for a in alarm_times), (name, c, d, b)
    assert faster_seen  # the "fast" detector does alarm falsely and beat the bound there


def test_the_eval_prints_the_any_rows_with_the_goals_allowance():
    home, frames = _home(4, days=45)  # 45 days: the goal allows 2 false alarms
    cuts = [8 * DAY_S + k * 7.1 * H for k in range(100)]
    rows = {r.method: r for r in E.bounds(home, frames, cuts)}
    assert rows["bound-any"].delays == causal_detection_times(frames, cuts, home.end)
    assert rows["bound-any"].fa_day == 0
    assert len(rows["bound-any-fa"].alarms) == 2
    assert rows["bound-any-fa"].delays == causal_detection_times(frames, cuts, home.end, 2)
    short = _home(4, days=12)
    names = [r.method for r in E.bounds(*short, cuts[:10])]
    assert "bound-any" in names and "bound-any-fa" not in names  # 12 days: none allowed
