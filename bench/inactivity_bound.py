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

Start-indexed lines (`start_detection_times`, rows `bound-start*`): the threshold is a
function of the time of day the stillness *began* (the last sign of life), not of the time
of day now: T(start) = the longest at-home still period that began within +-`pool_s` of that
start time of day (circularly, over the whole labelled span). Per start *minute* it would be
a 1-min overfit (a minute with no past start would alarm at once), so the value is pooled
over +-30 min (`bound-start30`) and +-60 min (`bound-start60`) of start time: the widest
still period begun anywhere in that window. It is zero-false-alarm by construction (every
real period began inside its own window). It is not the tightest start line (the unpooled
one is lower, and fits single spells): it is what a learner pooling the spells begun within
+-30 min (+-60 min) of a start, as the shipped detector pools +-1 h of bins, would learn from
the whole span with no margin.

Combining it with the time-of-day line L(now) (`bound-either*`): a rule that alarms when
stillness exceeds EITHER line (the earlier of the two) fires on the real stream as soon as
either line alone would, so it is zero-false-alarm exactly when each line alone is; with
each at its own bound it is zero-false-alarm and detects each cut at the earlier of the two
bounds, never later than either alone. A rule that alarms when stillness exceeds BOTH lines
(the later of the two) is zero-false-alarm with each at its bound too, but then detects at
the later of the two, never sooner than either alone; it helps only if both lines are
lowered together (a real period need only stay under one of them at each moment), which is
a joint choice with no single minimal pair (lowering one forces the other up), and the
per-cut best of it (ignoring that one pair must serve all cuts) is a line over (start, now)
pairs: a still spell matched to itself. So `bound-either*` is the EITHER rule at the two
bounds: the fastest zero-false-alarm EITHER rule over these two lines, and the combination
whose lines can be learned separately without raising each other's false alarms (a learned
EITHER rule's false alarms are the union of its lines', so each line must be safe alone).

Any detector (`causal_detection_times`, rows `bound-any*`): the bounds above cover lines
over the time of day, the room or the start time. One bound covers every detector that
learns only from what the hub has received so far (causal), whatever it computes: up to the
first frame after a cut (motion or a door, the inputs an emergency takes away; ticks and
device heartbeats go on alike), the cut stream and the real stream are the same input (to
within a tick: the replay ticks the cut a minute at a time from the cut instant), so a
deterministic detector is in the same state on both. If it alarmed on the cut stream
before that frame, it alarmed on the real stream too: a false alarm. So a detector with no
false alarm detects no cut sooner than the time to the next frame the real stream received
(`bound-any`), and one allowed k false alarms can be faster only inside k still spells (at
best alarming at once there; `bound-any-fa` spends the goal's allowance, 0.05 a day rounded
down, on the spells that hold the most of the cuts' waiting). This needs no hindsight about
what such a detector would learn: it is the wait any detector must sit out. It is about
listening: a detector that asks the resident ("are you all right?") and is answered by a
press learns what no sensor told it. The replay never answers a pre-alarm (the data sets
hold no answers) and the goal does not count pre-alarms, so such asking is outside the
bound; in a home like Ordonez A it would mean asking through every long sit and every night.
"""

from __future__ import annotations

import bisect
import statistics

from bench.datasets.stream import DAY_S, Frame, Home
from shared import inactivity as I

SLOT_S = 60  # one line value per minute of the day: finer than any detector's bins
HORIZON_S = 72 * 3600  # as bench/inactivity_eval.py: slower counts as a miss
_SLOTS = DAY_S // SLOT_S


def _periods(home: Home, frames: list[Frame], per_room: bool):
    """(start, end, room) of each still period at home within the labelled span."""
    signs = _signs(frames, per_room)
    lo, hi = home.labelled
    for (a, room), (b, _) in zip(signs, signs[1:], strict=False):
        if a < lo or b > hi or any(x < b and a < y for x, y in home.absences):
            continue  # outside the labels, or the resident was out: not at-home stillness
        yield a, b, room


def still_lines(home: Home, frames: list[Frame], per_room: bool) -> dict[str, list[float]]:
    """Room (or "" for the whole home) -> per-minute longest at-home stillness, seconds."""
    lines: dict[str, list[float]] = {}
    for a, b, room in _periods(home, frames, per_room):
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


def start_line(home: Home, frames: list[Frame], pool_s: float) -> list[float]:
    """Per start minute of the day: the longest at-home still period (seconds) that began
    within +-pool_s of it, circularly over the day (0 where none began)."""
    own = [0.0] * _SLOTS
    for a, b, _ in _periods(home, frames, False):
        k = int(a % DAY_S) // SLOT_S
        own[k] = max(own[k], b - a)
    w = int(pool_s) // SLOT_S
    return [max(own[(k + j) % _SLOTS] for j in range(-w, w + 1)) for k in range(_SLOTS)]


def start_detection_times(home: Home, frames: list[Frame], cuts: list[float],
                          pool_s: float) -> list[float]:
    """As detection_times, for the start-indexed line: alarm at the first minute after the
    cut whose stillness exceeds T(time of day of the last sign of life)."""
    line = start_line(home, frames, pool_s)
    signs = _signs(frames, False)
    times = [t for t, _ in signs]
    out = []
    for c in cuts:
        i = bisect.bisect_right(times, c) - 1
        if i < 0:
            continue  # nothing seen yet (as detection_times: the lists stay aligned)
        last = signs[i][0]
        limit = line[int(last % DAY_S) // SLOT_S]
        k = 0 if c - last > limit else int((limit - (c - last)) // SLOT_S) + 1
        out.append(min(k * SLOT_S, float(HORIZON_S)))
    return out


def causal_detection_times(frames: list[Frame], cuts: list[float], end: float,
                           false_alarms: int = 0) -> list[float]:
    """Seconds from each cut to the earliest alarm ANY detector could give (module doc:
    "Any detector"): the time to the next frame the hub received after the cut, except in
    the `false_alarms` still spells that hold the most of it (alarming at once in those).
    After the last frame the real stream is still until `end` (the replay ticks on to it):
    a detector alarming before then alarmed on it too."""
    times = sorted(f.t for f in frames)
    out, spell = [], []
    for c in cuts:
        i = bisect.bisect_left(times, c)  # a frame at the cut instant comes after it
        nxt = min(times[i], end) if i < len(times) else end
        out.append(min(nxt - c, float(HORIZON_S)))
        spell.append(i)  # cuts with the same next frame lie in one still spell
    if false_alarms > 0:
        held: dict[int, float] = {}
        for d, i in zip(out, spell, strict=True):
            held[i] = held.get(i, 0.0) + d
        spent = set(sorted(held, key=held.__getitem__, reverse=True)[:false_alarms])
        out = [0.0 if i in spent else d for d, i in zip(out, spell, strict=True)]
    return out


def either(*delays: list[float]) -> list[float]:
    """Per cut, the earlier of several zero-false-alarm rules (module doc: EITHER)."""
    return [min(x) for x in zip(*delays, strict=True)]


def mean_hours(delays: list[float]) -> float:
    return statistics.fmean(delays) / 3600 if delays else float("nan")


def _signs(frames: list[Frame], per_room: bool) -> list[tuple[float, str]]:
    # signs of life only (a door may be a visitor); the room is the sensor's
    return [(f.t, f.sensor if per_room else "") for f in frames if f.source == I.SRC_MOTION]
