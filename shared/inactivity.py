"""Whole-home inactivity detection: learned stillness, pre-alarm, alarm, away.

The hub feeds every sign of life in the home into one `Inactivity`:

    det = Inactivity(**config)
    ev = det.activity(now_ms, tod_ms, source)   # on each input
    ev = det.tick(now_ms, tod_ms)               # at least once a minute

`now_ms` is ticks (wrapping, shared/ticks.py), `tod_ms` the local time of
day in [0, 86_400_000) (other values are taken modulo a day). Both calls
return 0 or an OR of EV_* bits:

- EV_PREALARM: the home has been still for `threshold_ms`; the hub asks
  "are you all right?". EV_ALARM follows `prealarm_ms` later without a
  sign of life (together with EV_PREALARM when prealarm_ms is 0).
- EV_CLEARED: a sign of life ended a pre-alarm or an alarm;
  `ended_still_ms` is how long the home had been still.
- EV_AWAY / EV_HOME: the resident left / came back.

Sources: SRC_MOTION (a PIR room, bracelet movement, any sign of life),
SRC_PRESS (a button press, also a sign of life), SRC_DOOR (front door opened
or closed), SRC_AWAY (bracelet out of range, or an explicit "I'm leaving").
Any other source raises ValueError.

Attributes: `state` (ST_IDLE, ST_PREALARM, ST_ALARM, ST_AWAY), `still_ms`
(time since the last sign of life, also while away; saturates at 2**29 - 1),
`threshold_ms` (stillness that raises the pre-alarm now), `learned_days`
(days of history behind `threshold_ms`; below `min_days` it is `default_ms`),
`ended_still_ms` (stillness ended by the last sign of life or return).

Design
- Time is accumulated from call to call with ticks_diff (a negative step
  counts as 0), so days of stillness never overflow a small int.
- Learning follows Cuddihy et al. 2007: per day and 30-min bin, the longest
  stillness seen by the end of the bin (shared/inactivity_profile.py), kept
  for `days` days. A still period is learned only when a sign of life ends
  it, never while it goes on (the threshold must not chase an emergency),
  and an alarmed period only up to the alarm (a real emergency that lasted
  hours until help came must not teach the home that hours are normal).
  Away periods and stillness that led to going away are not learned.
- Threshold for the current bin: over the days of history, each day's
  longest stillness within +-`neighbours` bins, the `rank`-th largest of
  those (1 = the most still day), times `margin_pct` / 100 plus `buffer_ms`,
  clamped to [floor_ms, ceiling_ms]. Sleep and quiet hours need no rule:
  a long night teaches the night bins long values. Cached; recomputed only
  when the bin or day changes or history is learned, so tick() is cheap.
- Day roll-over: the number of midnights passed is
  round((last tod + elapsed - tod) / 1 day), so a DST or clock step of
  under 12 h never rolls the day and a long gap rolls several.
- A sign of life (motion or press) clears a pre-alarm or alarm at once and
  wins over a pre-alarm falling due in the same call. Door and away inputs
  do not clear: a door can be a visitor or the wind, and a bracelet out of
  range can be a flat battery; during a pre-alarm or alarm they are ignored.
- Away: SRC_AWAY in ST_IDLE goes away at once. A door event arms away only
  if there was a sign of life within `away_after_ms` before it (the resident
  walked to the door; a door opening on a still home is someone else) and
  `door_away` is set; no sign of life for `away_after_ms` after the last
  door event then goes away (doors while armed restart the wait). While
  away nothing alarms. Motion or a press returns home (stillness restarts).
  A door while away also counts as returning: stillness counts from the
  door, so a resident who comes in and collapses before any PIR sees them
  is still caught; a door alone never re-arms away from there (no sign of
  life before it). Set `door_away=False` when the bracelet reports absence.
- Away is a guess (a collapse just after using the door looks like leaving; a
  bracelet out of range may have a flat battery): once still_ms reaches
  `away_max_ms` while away, and the home's threshold too (away may delay an
  alarm, never hasten it), the pre-alarm and the alarm follow as at home. The
  away period is still not learned; a sign of life clears as usual.
- Persistence: to_bytes() stores the state relative to the last call (no
  ticks) plus the history and an Adler-32; from_bytes(data, now_ms,
  **config) restores it as if the last call had been at now_ms (time while
  the hub was off is not counted). Only `days` must match (it is the
  layout); other settings may change across a restart and take effect at
  once, so tuning never throws the learned history away.

Defaults (tunable for evaluation on the data in shared/data/inactivity):
floor 30 min and ceiling 50 h (commercial units: configurable 30 min-50 h);
default_ms 12 h until 3 days are learned (commercial fixed periods are
12-14 h: above a long night, so the first nights do not false-alarm);
pre-alarm 10 min (commercial spoken pre-alarm 5-10 min); away after 10 min;
away at most 24 h (an elder rarely stays out overnight unannounced);
14 days of history (two of each weekday, 1344 bytes); rank 1 (the most
still day: a once-a-fortnight lie-in is normal), margin 120 %, buffer
30 min: with daytime gaps up to 1 h that alarms about 2 h after a daytime
collapse; +-2 bins (+-1 h): a morning up to about an hour later than any in
the history does not alarm (with +-1 bin, 30 min later already would).
Checked on real homes by bench/inactivity_eval.py; results in docs/inactivity.md.
"""

from shared.compat import const
from shared.inactivity_profile import BIN_MS, DAY_MS, MAX_MIN, Profile, adler, get32, put32
from shared.ticks import MAX_DIFF, ticks_add, ticks_diff

# Input sources, event bits and states: this module's own API numbering (the
# hub maps them to its messages), events as bit masks per docs/shared-core.md.
SRC_MOTION = const(0)  # PIR room, bracelet movement: a sign of life
SRC_DOOR = const(1)  # front door opened or closed
SRC_AWAY = const(2)  # bracelet out of range or explicit away
SRC_PRESS = const(3)  # button press: a sign of life

EV_PREALARM = const(1)  # ask "are you all right?"
EV_ALARM = const(2)  # call for help
EV_CLEARED = const(4)  # a sign of life ended a pre-alarm or alarm
EV_AWAY = const(8)  # the resident left
EV_HOME = const(16)  # the resident came back

ST_IDLE = const(0)  # at home, stillness below the threshold
ST_PREALARM = const(1)
ST_ALARM = const(2)
ST_AWAY = const(3)

VERSION = const(1)  # to_bytes() format; bump on any layout change
_HDR = const(29)  # header bytes before the history, see to_bytes()
_HALF_DAY = const(43_200_000)  # roll-over rounding: steps < 12 h never roll
_MIN = const(60_000)
_HOUR = const(3_600_000)
_MAX_CEIL = const(180_000_000)  # 50 h: commercial inactivity periods go to 50 h
_MAX_AWAY = const(518_400_000)  # 6 days: below the saturation of still_ms (~6.2 days)
_NO_CAP = const(0x20000000)  # above any still_ms (MAX_DIFF): learn all of it


def _arg(name, v, lo, hi):
    if type(v) is not int or v < lo or v > hi:
        raise ValueError("%s must be an int in [%d, %d], got %r" % (name, lo, hi, v))
    return v


def _field(name, v, hi):
    if v > hi:
        raise ValueError("%s: saved %d, at most %d" % (name, v, hi))


class Inactivity:
    def __init__(
        self,
        floor_ms=1_800_000,  # 30 min: commercial lower bound
        ceiling_ms=_MAX_CEIL,  # 50 h: commercial upper bound
        default_ms=43_200_000,  # 12 h: commercial fixed period, above a night
        prealarm_ms=600_000,  # 10 min: commercial spoken pre-alarm 5-10 min
        away_after_ms=600_000,  # 10 min without a sign of life after a door
        away_max_ms=86_400_000,  # 24 h: no away silences the alarm for longer
        door_away=True,  # False: only SRC_AWAY (bracelet) means away
        days=14,  # history depth: two of each weekday
        min_days=3,  # days of history before the learned threshold is used
        rank=1,  # 1 = most still day, 2 = second most still, 3
        neighbours=2,  # bins each side pooled (Cuddihy: neighbouring bins)
        margin_pct=120,  # threshold = learned * margin_pct / 100 + buffer_ms
        buffer_ms=1_800_000,  # 30 min
    ):
        # floor may go down to 1 min for tests and demos; deploy >= 30 min
        self._floor = _arg("floor_ms", floor_ms, _MIN, _MAX_CEIL)
        self._ceil = _arg("ceiling_ms", ceiling_ms, floor_ms, _MAX_CEIL)
        self._default = _arg("default_ms", default_ms, _MIN, _MAX_CEIL)
        self._pre = _arg("prealarm_ms", prealarm_ms, 0, 30 * _MIN)
        self._away_after = _arg("away_after_ms", away_after_ms, _MIN, 2 * _HOUR)
        self._away_max = _arg("away_max_ms", away_max_ms, _HOUR, _MAX_AWAY)
        if door_away is not True and door_away is not False:
            raise ValueError("door_away must be True or False, got %r" % (door_away,))
        self._door_away = door_away
        _arg("days", days, 1, 56)
        self._min_days = _arg("min_days", min_days, 1, days)
        self._rank = _arg("rank", rank, 1, min(3, min_days))
        self._nb = _arg("neighbours", neighbours, 0, 4)
        self._margin = _arg("margin_pct", margin_pct, 100, 400)
        self._buffer = _arg("buffer_ms", buffer_ms, 0, 6 * _HOUR)
        self._prof = Profile(days)
        self.state = ST_IDLE
        self.still_ms = 0
        self.ended_still_ms = 0
        self.threshold_ms = 0
        self.learned_days = 0
        self._started = False
        self._last = 0  # ticks of the last call
        self._tod = 0  # tod_ms of the last call
        self._bin = 0
        self._learn = True  # the current still period may be learned
        self._alive = False  # it began with a sign of life (not install/door)
        self._pre_at = 0  # still_ms when the pre-alarm was raised
        self._cap = 0  # still_ms when the alarm was raised (0: none)
        self._away_left = 0  # ms until an armed door check goes away
        self._armed = False
        self._refresh()

    # -- inputs -----------------------------------------------------------

    def tick(self, now_ms, tod_ms):
        self._advance(now_ms, tod_ms)
        return self._check()

    def activity(self, now_ms, tod_ms, source):
        if source == SRC_MOTION or source == SRC_PRESS:
            self._advance(now_ms, tod_ms)
            st = self.state
            ev = 0
            if st == ST_AWAY:
                ev = EV_HOME
            else:
                if st != ST_IDLE:
                    ev = EV_CLEARED
                if self._learn:
                    cap = self._cap if self._cap > 0 else _NO_CAP
                    if self._prof.commit(self.still_ms, self._tod, cap):
                        self._refresh()
            self._restart(True)
            return ev
        if source != SRC_DOOR and source != SRC_AWAY:
            raise ValueError("source must be SRC_MOTION, SRC_DOOR, SRC_AWAY or SRC_PRESS")
        self._advance(now_ms, tod_ms)
        st = self.state
        if source == SRC_DOOR:
            if st == ST_AWAY:
                self._restart(False)
                return EV_HOME
            if (
                st == ST_IDLE
                and self._door_away
                and (self._armed or (self._alive and self.still_ms <= self._away_after))
            ):
                self._armed = True  # (re)start the wait, also if it was due now
                self._away_left = self._away_after
            return self._check()
        ev = self._check()  # a pre-alarm or away due by now comes first
        if self.state == ST_IDLE:
            self._go_away()
            ev |= EV_AWAY
        return ev

    # -- internals (no allocation) -----------------------------------------

    def _restart(self, alive):
        # a sign of life (alive) or a return by the door: a new, learnable
        # still period begins; only one begun by a sign of life lets a door
        # arm away
        self.ended_still_ms = self.still_ms
        self.still_ms = 0
        self.state = ST_IDLE
        self._learn = True
        self._alive = alive
        self._pre_at = 0
        self._cap = 0
        self._armed = False

    def _go_away(self):
        self.state = ST_AWAY
        self._learn = False
        self._armed = False
        self._cap = 0

    def _advance(self, now_ms, tod_ms):
        tod = tod_ms % DAY_MS
        if not self._started:
            self._started = True
            self._last = ticks_add(now_ms, 0)
            self._tod = tod
            self._bin = tod // BIN_MS
            self._refresh()
            return
        dt = ticks_diff(now_ms, self._last)
        self._last = ticks_add(now_ms, 0)
        dt = max(dt, 0)
        self.still_ms = min(self.still_ms + dt, MAX_DIFF)
        if self._armed:
            self._away_left = max(self._away_left - dt, 0)
        n = (self._tod + dt - tod + _HALF_DAY) // DAY_MS
        self._tod = tod
        b = tod // BIN_MS
        if n > 0:
            self._prof.roll(n)
        if n > 0 or b != self._bin:
            self._bin = b
            self._refresh()

    def _check(self):
        ev = 0
        if (
            self.state == ST_AWAY
            and self.still_ms >= self._away_max
            and self.still_ms >= self.threshold_ms
        ):
            # away too long: a guess must not silence forever, nor alarm sooner than at home
            self.state = ST_PREALARM
            self._pre_at = self.still_ms
            ev = EV_PREALARM
        elif self.state == ST_IDLE:
            if self._armed and self._away_left == 0:
                self._go_away()
                return EV_AWAY
            # not while the away check waits: going out would alarm whenever the stillness
            # before the door plus away_after reached the threshold (a collapse at the door
            # is then caught at away_max, as any absence that is not one)
            if self.still_ms >= self.threshold_ms and not self._armed:
                self.state = ST_PREALARM
                self._pre_at = self.still_ms
                ev = EV_PREALARM
        if self.state == ST_PREALARM and self.still_ms - self._pre_at >= self._pre:
            self.state = ST_ALARM
            self._cap = self.still_ms
            ev |= EV_ALARM
        return ev

    def _refresh(self):
        p = self._prof
        top = p.order_stat(self._bin, self._nb, self._rank)
        self.learned_days = p.known
        if p.known < self._min_days:
            t = self._default
        else:
            m = top * self._margin // 100
            t = min(m, MAX_MIN) * _MIN + self._buffer
        self.threshold_ms = min(max(t, self._floor), self._ceil)

    # -- persistence ---------------------------------------------------------

    def to_bytes(self):
        """Version 1: [0] version, [1] days, [2] state, [3] flags (1 started,
        2 learn, 4 armed, 8 alive), [4] today's ring index, then uint32 LE at 5 tod_ms,
        9 still_ms, 13 pre-alarm still, 17 alarm still, 21 away wait left,
        25 ended_still_ms; the history (days * 96 bytes, see
        inactivity_profile.py); Adler-32 of all before as uint16 LE a, b."""
        h = self._prof.hist
        n = _HDR + len(h)
        buf = bytearray(n + 4)
        buf[0] = VERSION
        buf[1] = self._prof.days
        buf[2] = self.state
        buf[3] = (
            (1 if self._started else 0)
            | (2 if self._learn else 0)
            | (4 if self._armed else 0)
            | (8 if self._alive else 0)
        )
        buf[4] = self._prof.day
        put32(buf, 5, self._tod)
        put32(buf, 9, self.still_ms)
        put32(buf, 13, self._pre_at)
        put32(buf, 17, self._cap)
        put32(buf, 21, self._away_left)
        put32(buf, 25, self.ended_still_ms)
        buf[_HDR:n] = h
        a, b = adler(buf, n)
        buf[n] = a & 0xFF
        buf[n + 1] = a >> 8
        buf[n + 2] = b & 0xFF
        buf[n + 3] = b >> 8
        return bytes(buf)

    @classmethod
    def from_bytes(cls, data, now_ms, **config):
        """Restore to_bytes() output as if the last call had been at now_ms."""
        obj = cls(**config)
        p = obj._prof
        if len(data) < _HDR or data[0] != VERSION:
            raise ValueError("version: expected %d" % VERSION)
        if data[1] != p.days:
            raise ValueError("days: saved %d, configured %d" % (data[1], p.days))
        n = _HDR + len(p.hist)
        if len(data) != n + 4:
            raise ValueError("length: expected %d bytes, got %d" % (n + 4, len(data)))
        a, b = adler(data, n)
        if data[n] | (data[n + 1] << 8) != a or data[n + 2] | (data[n + 3] << 8) != b:
            raise ValueError("checksum: data is corrupt")
        state = data[2]
        flags = data[3]
        tod = get32(data, 5)
        still = get32(data, 9)
        pre_at = get32(data, 13)
        cap = get32(data, 17)
        left = get32(data, 21)
        ended = get32(data, 25)
        p.hist[:] = data[_HDR:n]
        _field("state", state, ST_AWAY)
        _field("flags", flags, 15)
        _field("day", data[4], p.days - 1)
        _field("tod_ms", tod, DAY_MS - 1)
        _field("still_ms", still, MAX_DIFF)
        _field("prealarm still", pre_at, still)
        _field("alarm still", cap, still)
        _field("away wait", left, 2 * _HOUR)
        _field("ended_still_ms", ended, MAX_DIFF)
        if not p.valid():
            raise ValueError("history: value out of range")
        p.day = data[4]
        obj.state = state
        obj._started = flags & 1 != 0
        obj._learn = flags & 2 != 0
        obj._armed = flags & 4 != 0
        obj._alive = flags & 8 != 0
        obj._tod = tod
        obj._bin = tod // BIN_MS
        obj.still_ms = still
        obj._pre_at = pre_at
        obj._cap = cap
        obj._away_left = min(left, obj._away_after)
        obj.ended_still_ms = ended
        obj._last = ticks_add(now_ms, 0)
        obj._refresh()
        return obj
