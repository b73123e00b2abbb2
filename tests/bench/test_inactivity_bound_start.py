"""The start-indexed hindsight bound of bench/inactivity_bound.py (a line over the time of
day the stillness began) and its EITHER combination with the time-of-day line, on small
synthetic homes whose answer can be worked out by hand."""

from __future__ import annotations

from bench.datasets.stream import DAY_S, Frame, Home, Pulse
from bench.inactivity_bound import (
    HORIZON_S,
    detection_times,
    either,
    start_detection_times,
    start_line,
)
from shared import inactivity as I

H = 3600.0
M = 60.0
NAP_DAY = 3


def routine(days: int) -> tuple[Home, list[Frame]]:
    """A sign of life every 30 min from 07:00 to 22:00, nothing at night (9 h still)."""
    frames = []
    for d in range(days):
        t = d * DAY_S + 7 * H
        while t <= d * DAY_S + 22 * H:
            frames.append(Frame(t, I.SRC_MOTION, "hall", "activity"))
            t += 30 * M
    end = days * DAY_S
    return Home("synthetic", [Pulse(0.0, end, "hall", "hall", "pir")], [], (0.0, end)), frames


def with_nap() -> tuple:
    """The routine (a sign every 30 min 07:00-22:00), plus a 3-h nap on day 3: no sign
    between 13:00 and 16:00."""
    home, frames = routine(10)
    lo, hi = NAP_DAY * DAY_S + 13 * H, NAP_DAY * DAY_S + 16 * H
    return home, [f for f in frames if not lo < f.t < hi]


def test_start_line_is_the_longest_period_begun_within_the_pool():
    home, frames = with_nap()
    line = start_line(home, frames, 30 * M)
    assert line[12 * 60 + 29] == 30 * M  # the nap began at 13:00: out of a +-30 min pool
    assert line[12 * 60 + 30] == line[13 * 60 + 30] == 3 * H
    assert line[13 * 60 + 31] == 30 * M
    assert line[21 * 60 + 30] == line[22 * 60 + 30] == 9 * H  # the night began at 22:00
    assert line[3 * 60] == 0.0  # nothing ever began at 03:00: no constraint
    wide = start_line(home, frames, 60 * M)
    assert wide[12 * 60] == wide[14 * 60] == 3 * H and wide[14 * 60 + 1] == 30 * M


def test_a_short_spell_after_the_nap_hour_is_caught_by_its_start():
    home, frames = with_nap()
    cut = 5 * DAY_S + 15 * H + 10 * M  # last sign at 15:00, inside the nap's hours
    tod = detection_times(home, frames, [cut])
    start = start_detection_times(home, frames, [cut], 30 * M)
    # the time-of-day line must wait for the nap's end (16:00); after 15:00 no spell ever
    # lasted beyond 30 min, so the start line alarms as stillness passes 30 min
    assert tod == [50 * M]
    assert start == [21 * M]
    assert either(tod, start) == [21 * M]


def test_a_spell_begun_at_the_nap_hour_waits_for_the_nap():
    home, frames = with_nap()
    cut = 5 * DAY_S + 13 * H + 10 * M  # last sign at 13:00, when the nap began
    tod = detection_times(home, frames, [cut])
    start = start_detection_times(home, frames, [cut], 30 * M)
    assert tod == [2 * H + 50 * M]  # 16:00
    assert start == [2 * H + 51 * M]  # stillness above 3 h: 16:01
    assert either(tod, start) == tod


def test_a_night_collapse_waits_for_the_morning_and_the_lists_stay_aligned():
    home, frames = routine(10)
    night = 5 * DAY_S + 23 * H  # last sign at 22:00: a 9-h night began then
    early = 1 * H  # before the first sign: skipped by both, as in detection_times
    start = start_detection_times(home, frames, [early, night], 30 * M)
    assert start == [8 * H + 1 * M]
    assert len(start) == len(detection_times(home, frames, [early, night]))
    quiet = [Frame(0.0, I.SRC_MOTION, "hall", "activity"),
             Frame(4 * DAY_S, I.SRC_MOTION, "hall", "activity")]
    assert start_detection_times(home, quiet, [10 * H], 30 * M) == [HORIZON_S]


def test_the_eval_prints_the_start_and_either_rows():
    from bench import inactivity_eval as E

    home, frames = with_nap()
    cuts = [5 * DAY_S + 15 * H + 10 * M, 5 * DAY_S + 13 * H + 10 * M]
    rows = {r.method: r.delays for r in E.bounds(home, frames, cuts)}
    assert list(rows) == ["bound-tod", "bound-room", "bound-start30", "bound-either30",
                          "bound-start60", "bound-either60", "bound-any"]
    assert rows["bound-either30"] == [21 * M, 2 * H + 50 * M]
    assert rows["bound-either60"] == either(rows["bound-tod"], rows["bound-start60"])
