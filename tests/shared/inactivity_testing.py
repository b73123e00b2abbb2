"""Helpers for the tests of shared/inactivity.py (test_inactivity_*.py): a home on an absolute
timeline, a routine day, the learned history read back from to_bytes()."""

from shared.inactivity import SRC_MOTION, Inactivity
from shared.ticks import wrap

M = 60_000
H = 3_600_000
DAY = 86_400_000
HDR = 29  # to_bytes() header length (format version 1)


class Home:
    """Drives a detector on an absolute timeline t (ms since day 0, 00:00)."""

    def __init__(self, det=None, base=0, **cfg):
        self.det = det if det is not None else Inactivity(**cfg)
        self.cfg = cfg
        self.base = base  # ticks at t = 0
        self.t = 0
        self.events = []  # (t, ev)

    def at(self, t, source=None):
        self.t = t
        now = wrap(self.base + t)
        if source is None:
            ev = self.det.tick(now, t % DAY)
        else:
            ev = self.det.activity(now, t % DAY, source)
        if ev:
            self.events.append((t, ev))
        return ev

    def idle(self, until, step=M):
        """Tick every `step` ms until t reaches `until`; returns the OR of events."""
        acc = 0
        t = self.t + step
        while t <= until:
            acc |= self.at(t)
            t += step
        return acc

    def first(self, bit, since=0):
        for t, ev in self.events:
            if ev & bit and t >= since:
                return t
        return None


def routine_day(home, day, rng, collapse=None, wake=7 * 60, late=0):
    """A regular day at 1-min steps: up at 7:00 (+-20 min, plus `late`), moving about
    with gaps of 1-60 min, in bed from 22:00 (+-20 min). `collapse` = minute of the day
    after which nothing moves any more. Returns the minute of the last movement."""
    up = wake + rng.randint(-20, 20) + late
    bed = 22 * 60 + rng.randint(-20, 20)
    moves = set()
    m = up
    while m < bed:
        moves.add(m)
        m += rng.randint(1, 60)
    last = -1
    for minute in range(1440):
        moving = minute in moves and (collapse is None or minute < collapse)
        home.at(day * DAY + minute * M, SRC_MOTION if moving else None)
        if moving:
            last = minute
    return last


def threshold_at(home, t):
    """The threshold a copy of home's detector would have at a later time t."""
    copy = Inactivity.from_bytes(home.det.to_bytes(), 0, **home.cfg)
    copy.tick(t - home.t, t % DAY)
    return copy.threshold_ms


def history(det):
    data = det.to_bytes()
    return data[HDR:-4], data[4]


def slot(det, day, b):
    h, _ = history(det)
    i = (day * 48 + b) * 2
    return h[i] | (h[i + 1] << 8)
