"""The hindsight bound of bench/inactivity_bound.py on small synthetic homes whose answer
can be worked out by hand."""

from __future__ import annotations

import pytest

from bench.datasets.stream import DAY_S, Frame, Home, Pulse
from bench.inactivity_bound import HORIZON_S, detection_times, still_lines
from shared import inactivity as I

H = 3600.0
M = 60.0


def routine(days: int, sensor: str = "hall", absences=()) -> tuple[Home, list[Frame]]:
    """A sign of life every 30 min from 07:00 to 22:00, nothing at night (9 h still)."""
    frames = []
    for d in range(days):
        t = d * DAY_S + 7 * H
        while t <= d * DAY_S + 22 * H:
            frames.append(Frame(t, I.SRC_MOTION, sensor, "activity"))
            t += 30 * M
    end = days * DAY_S
    home = Home("synthetic", [Pulse(0.0, end, sensor, "hall", "pir")], list(absences),
                (0.0, end))
    return home, frames


def test_day_and_night_lines():
    home, frames = routine(10)
    line = still_lines(home, frames, per_room=False)[""]
    assert line[int(12 * 60 + 29)] == 30 * M  # a 30-min gap ends at 12:30
    assert line[int(12 * 60 + 30)] == 1 * M
    assert line[int(6 * 60 + 59)] == 9 * H  # the night ends at 07:00


def test_a_daytime_collapse_is_caught_when_the_gap_outlasts_any_normal_one():
    home, frames = routine(10)
    cut = 5 * DAY_S + 12 * H + 10 * M  # last sign at 12:00
    assert detection_times(home, frames, [cut]) == [20 * M]  # alarm at 12:30


def test_a_night_collapse_waits_for_the_morning():
    home, frames = routine(10)
    cut = 5 * DAY_S + 23 * H  # last sign at 22:00
    assert detection_times(home, frames, [cut]) == [8 * H]  # alarm at 07:00


def test_absences_do_not_raise_the_line():
    absent = (3 * DAY_S + 12 * H + 1, 3 * DAY_S + 16 * H)
    home, frames = routine(10, absences=[absent])
    frames = [f for f in frames if not (absent[0] <= f.t < absent[1])]  # out: no signs
    cut = 5 * DAY_S + 12 * H + 10 * M
    assert detection_times(home, frames, [cut]) == [20 * M]
    home.absences = []  # the same 4-h gap at home is normal: the line must wait beyond it
    assert detection_times(home, frames, [cut])[0] > 3 * H


def test_per_room_lines_know_where_the_resident_was_last_seen():
    # by day in the kitchen, the last sign before the night in the bedroom
    home, frames = routine(10, sensor="kitchen")
    frames = [Frame(f.t, f.source, "bedroom" if f.t % DAY_S == 22 * H else "kitchen", f.what)
              for f in frames]
    cut = 5 * DAY_S + 12 * H + 10 * M
    tod, room = (detection_times(home, frames, [cut], per_room=p)[0] for p in (False, True))
    assert tod == room == 20 * M
    # a kitchen sign late on the last night (so not itself learned): no stillness ever
    # followed the kitchen at that hour, so it is caught at once
    late = [*frames, Frame(9 * DAY_S + 23 * H, I.SRC_MOTION, "kitchen", "activity")]
    cut = 9 * DAY_S + 23 * H + 5 * M
    assert detection_times(home, late, [cut], per_room=True) == [0.0]
    assert detection_times(home, late, [cut], per_room=False)[0] == pytest.approx(8 * H - 5 * M)


def test_no_sign_yet_or_never_still_enough():
    home, frames = routine(2)
    assert detection_times(home, frames, [1 * H]) == []  # before the first sign
    line_home, _ = routine(2)
    quiet = [Frame(0.0, I.SRC_MOTION, "hall", "activity"),
             Frame(2 * DAY_S - 1, I.SRC_MOTION, "hall", "activity")]
    # one still period of two days: the line at each minute is the second day's stillness,
    # so a cut on the first day is caught only once stillness passes two days
    assert detection_times(line_home, quiet, [10 * H]) == [2 * DAY_S - 10 * H]
    assert detection_times(line_home, quiet[:1], [10 * H]) == [HORIZON_S]  # no line at all
