"""Baselines for bench/inactivity_eval.py, written here (bench code: floats are fine).

Both take the same inputs as shared.inactivity.Inactivity (activity(now_ms, tod_ms,
source) / tick(now_ms, tod_ms), the same SRC_* and EV_* numbers) but with plain,
non-wrapping milliseconds (`wrapped = False` tells the replay). Both share the input
handling of the shared detector, so that the comparison is about the alarm line only:
- a sign of life (motion, press) restarts stillness and clears a pre-alarm or alarm;
- the same away rule: a door within `away_after_ms` of a sign of life arms away, and no
  sign of life for `away_after_ms` after the last door goes away; nothing alarms while
  away, for at most `away_max_ms` (24 h) of stillness; motion, a press or a door returns
  home;
- a pre-alarm when stillness reaches the line, the alarm `prealarm_ms` later.

FixedThreshold: the line is a constant, 12 h by default (commercial units: a fixed
period of typically 12-14 h).

CuddihyPercentile, in the style of Cuddihy et al. 2007: the day is cut into 48 bins of
30 min; for every past day and bin, the longest stillness seen by the end of that bin
(learned when a sign of life ends a still period; away periods are not learned; an alarmed
period only up to its alarm). The alert line of a bin is the `pct`-th percentile, over
all past days, of each day's maximum over the bin and its `neighbours` on each side, plus
`buffer_ms`; a fixed `default_ms` until `min_days` days are known. All history is kept
(no window).
"""

from __future__ import annotations

import math

from shared.inactivity import (
    EV_ALARM,
    EV_AWAY,
    EV_CLEARED,
    EV_HOME,
    EV_PREALARM,
    SRC_AWAY,
    SRC_DOOR,
    SRC_MOTION,
    SRC_PRESS,
    ST_ALARM,
    ST_AWAY,
    ST_IDLE,
    ST_PREALARM,
)

BIN_MS = 1_800_000
BINS = 48
DAY_MS = 86_400_000
HOUR = 3_600_000


class _Baseline:
    wrapped = False  # plain monotonic ms, not ESP32 ticks

    def __init__(self, prealarm_ms: int = 600_000, away_after_ms: int = 600_000,
                 door_away: bool = True, away_max_ms: int = 24 * HOUR):
        self.prealarm_ms = prealarm_ms
        self.away_max_ms = away_max_ms
        self.away_after_ms = away_after_ms
        self.door_away = door_away
        self.state = ST_IDLE
        self.since: int | None = None  # start of the current still period
        self.alive = False  # that period began with a sign of life
        self.learn = True
        self.armed_at: int | None = None
        self.pre_at = 0
        self.alarm_at: int | None = None
        self.day = 0  # local days since the first call
        self.tod = -1
        self._now = self._now_tod_total = 0

    # -- the alarm line: subclasses ------------------------------------------------------
    def line_ms(self, tod_ms: int) -> float:
        raise NotImplementedError

    def learned(self, start: int, end: int, end_tod: int) -> None:
        """A still period from `start` to `end` (ms) ended at local time `end_tod`."""

    # -- inputs ---------------------------------------------------------------------------
    def activity(self, now: int, tod: int, source: int) -> int:
        self._clock(now, tod)
        if source in (SRC_MOTION, SRC_PRESS):
            ev = 0
            if self.state == ST_AWAY:
                ev = EV_HOME
            else:
                if self.state != ST_IDLE:
                    ev = EV_CLEARED
                if self.learn and self.since is not None:
                    end = self.alarm_at if self.alarm_at is not None else now
                    self.learned(self.since, end, (tod - (now - end)) % DAY_MS)
            self._restart(now, True)
            return ev
        if source == SRC_DOOR:
            if self.state == ST_AWAY:
                self._restart(now, False)
                return EV_HOME
            if (self.state == ST_IDLE and self.door_away and self.since is not None
                    and (self.armed_at is not None
                         or (self.alive and now - self.since <= self.away_after_ms))):
                self.armed_at = now
            return self._check(now, tod)
        if source == SRC_AWAY:
            ev = self._check(now, tod)
            if self.state == ST_IDLE:
                self._away()
                ev |= EV_AWAY
            return ev
        raise ValueError(f"unknown source {source}")

    def tick(self, now: int, tod: int) -> int:
        self._clock(now, tod)
        return self._check(now, tod)

    # -- internals ------------------------------------------------------------------------
    def _clock(self, now: int, tod: int) -> None:
        if self.since is None:
            self.since = now
        elif self.tod >= 0:  # midnights passed, as shared.inactivity counts them
            self.day += round((self.tod + (now - self._now) - tod) / DAY_MS)
        self._now, self._now_tod_total = now, tod
        self.tod = tod

    def _restart(self, now: int, alive: bool) -> None:
        self.state, self.since, self.alive, self.learn = ST_IDLE, now, alive, True
        self.armed_at = self.alarm_at = None

    def _away(self) -> None:
        self.state, self.learn, self.armed_at = ST_AWAY, False, None

    def _check(self, now: int, tod: int) -> int:
        assert self.since is not None
        still = now - self.since
        ev = 0
        if self.state == ST_AWAY and still >= max(self.away_max_ms, self.line_ms(tod)):
            self.state, self.pre_at = ST_PREALARM, now
            ev = EV_PREALARM
        elif self.state == ST_IDLE:
            if self.armed_at is not None and now - self.armed_at >= self.away_after_ms:
                self._away()
                return EV_AWAY
            if still >= self.line_ms(tod):
                self.state, self.pre_at, self.armed_at = ST_PREALARM, now, None
                ev = EV_PREALARM
        if self.state == ST_PREALARM and now - self.pre_at >= self.prealarm_ms:
            self.state, self.alarm_at = ST_ALARM, now
            ev |= EV_ALARM
        return ev

    @property
    def still_ms(self) -> int:
        return self._now - self.since if self.since is not None else 0


class FixedThreshold(_Baseline):
    def __init__(self, threshold_ms: int = 12 * HOUR, **kw):
        super().__init__(**kw)
        self.threshold_ms = threshold_ms

    def line_ms(self, tod_ms: int) -> float:
        return self.threshold_ms


class CuddihyPercentile(_Baseline):
    def __init__(self, pct: float = 95.0, neighbours: int = 1, buffer_ms: int = HOUR,
                 default_ms: int = 12 * HOUR, min_days: int = 3, floor_ms: int = 1_800_000,
                 **kw):
        super().__init__(**kw)
        self.pct, self.nb, self.buffer_ms = pct, neighbours, buffer_ms
        self.default_ms, self.min_days, self.floor_ms = default_ms, min_days, floor_ms
        self.hist: dict[int, list[float]] = {}  # day -> 48 bins of longest stillness (ms)
        self._cache: tuple[int, int, int] | None = None  # (day, bin, version) of _line
        self._line = float(default_ms)
        self._version = 0

    def learned(self, start: int, end: int, end_tod: int) -> None:
        # end_tod = now's tod - (now - end) + k days, k = midnights between end and now
        k = round((end_tod - self._now_tod_total + self._now - end) / DAY_MS)
        day = self.day - k
        t, elapsed = end_tod, end - start
        while elapsed > 0:
            if t == 0:
                t, day = DAY_MS, day - 1
            b = (t - 1) // BIN_MS  # the bin that ends the overlap at t
            row = self.hist.setdefault(day, [math.nan] * BINS)
            if not elapsed <= row[b]:  # nan or larger
                row[b] = elapsed
            step = t - b * BIN_MS
            if elapsed <= step:
                break
            elapsed -= step
            t = b * BIN_MS
        self._version += 1

    def line_ms(self, tod_ms: int) -> float:
        key = (self.day, tod_ms // BIN_MS, self._version)
        if key != self._cache:
            self._cache = key
            self._line = self._compute(tod_ms // BIN_MS)
        return self._line

    def _compute(self, b: int) -> float:
        vals = []
        for day, row in self.hist.items():
            if day >= self.day:
                continue  # only whole past days
            m = [row[(b + j) % BINS] for j in range(-self.nb, self.nb + 1)]
            m = [v for v in m if not math.isnan(v)]
            if m:
                vals.append(max(m))
        if len(vals) < self.min_days:
            return self.default_ms
        vals.sort()
        k = (len(vals) - 1) * self.pct / 100.0  # linear interpolation between ranks
        lo = int(k)
        hi = min(lo + 1, len(vals) - 1)
        p = vals[lo] + (vals[hi] - vals[lo]) * (k - lo)
        return max(p + self.buffer_ms, self.floor_ms)
