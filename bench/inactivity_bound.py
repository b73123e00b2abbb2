"""How fast could any time-of-day threshold detect, on this home, without a false alarm?

A hindsight bound, not a detector: it looks at the whole labelled span at once. For every
minute of the day it takes the longest stillness the resident ever reached at that minute
while at home (between two signs of life the hub received, labelled absences left out), so
a line at or above those values never alarms on the real stream, and no lower line avoids
it. A simulated emergency (a cut) is then detected at the first minute whose stillness
exceeds that line. The pre-alarm needs no extra time: a zero-false-alarm line sits 10 min
(the pre-alarm) below the stillness it must never reach, and the alarm fires 10 min later.

`per_room=True` gives each sensor that saw the last sign of life its own line (stillness
after the kitchen differs from stillness after the bedroom): the bound for methods that
also know where the resident was last seen (a sensor is a room or part of one, so this is
at least as generous as one line per room).

So on a home where the bound's mean is above the goal's 3 h, no method that alarms on a
learned or fixed function of the time of day (and of the last room) can meet the goal
with zero false alarms: Cuddihy-style profiles, fixed periods and carebeacon's detector
are all of that kind. Methods with more context (the length of the previous activity, a
person's routine as a sequence) are not covered by it.
"""

from __future__ import annotations

import bisect
import statistics

from bench.datasets.stream import DAY_S, Frame, Home
from shared import inactivity as I

SLOT_S = 60  # one line value per minute of the day: finer than any detector's bins
HORIZON_S = 72 * 3600  # as bench/inactivity_eval.py: slower counts as a miss
_SLOTS = DAY_S // SLOT_S


def still_lines(home: Home, frames: list[Frame], per_room: bool) -> dict[str, list[float]]:
    """Room (or "" for the whole home) -> per-minute longest at-home stillness, seconds."""
    signs = _signs(frames, per_room)
    lo, hi = home.labelled
    lines: dict[str, list[float]] = {}
    for (a, room), (b, _) in zip(signs, signs[1:], strict=False):
        if a < lo or b > hi or any(x < b and a < y for x, y in home.absences):
            continue  # outside the labels, or the resident was out: not at-home stillness
        line = lines.setdefault(room, [0.0] * _SLOTS)
        t = a
        while t < b:
            end = min(b, (t // SLOT_S + 1) * SLOT_S)
            k = int(t % DAY_S) // SLOT_S
            line[k] = max(line[k], end - a)
            t = end
    return lines


def detection_times(home: Home, frames: list[Frame], cuts: list[float],
                    per_room: bool = False) -> list[float]:
    """Seconds from each cut to the bound's alarm (HORIZON_S when it never comes)."""
    lines = still_lines(home, frames, per_room)
    signs = _signs(frames, per_room)
    times = [t for t, _ in signs]
    never = [float("inf")] * _SLOTS  # a room never followed by stillness: no line at all
    out = []
    for c in cuts:
        i = bisect.bisect_right(times, c) - 1
        if i < 0:
            continue  # nothing seen yet: nothing to measure from
        last, room = signs[i]
        line = lines.get(room, never)
        t = c
        while t - c < HORIZON_S and t - last <= line[int(t % DAY_S) // SLOT_S]:
            t += SLOT_S
        out.append(min(t - c, float(HORIZON_S)))
    return out


def mean_hours(delays: list[float]) -> float:
    return statistics.fmean(delays) / 3600 if delays else float("nan")


def _signs(frames: list[Frame], per_room: bool) -> list[tuple[float, str]]:
    # signs of life only (a door may be a visitor); the room is the sensor's
    return [(f.t, f.sensor if per_room else "") for f in frames if f.source == I.SRC_MOTION]
