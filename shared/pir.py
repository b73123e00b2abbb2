"""PIR conditioning for HC-SR501 / AM312 digital outputs.

Sans-IO. ``start(now_ms)`` at sensor power-up (``update`` before ``start``
starts it at that tick); ``update(now_ms, level)`` at each poll or edge with the
output level (truthy = high); ``poll(now_ms)`` between samples. Each returns an
int, the OR of:

- ``EV_READY``: warm-up (``warmup_ms``) is over. Before it nothing is reported:
  an HC-SR501 output is meaningless for ~60 s after power-up (datasheet).
- ``EV_MOTION``: one motion event = one accepted rising edge (below).
  ``motion_at`` = tick of that edge.
- ``EV_AFTER_STILL``: this motion is the first after ``>= still_ms`` without
  motion; ``still_ms_before`` = that stillness.
- ``EV_SUMMARY``: interval(s) closed; see "Summaries".
- ``EV_STUCK``: output high continuously ``>= stuck_ms`` (fault); once.
- ``EV_UNSTUCK``: the stuck output fell.
- ``EV_SILENT``: no motion for ``silent_ms`` (a sensor that never fires); once
  until the next motion, which reports ``EV_SILENT_CLEARED``.

Other attributes: ``ready``, ``level`` (last sample), ``stuck``, ``silent``,
``since_motion_ms`` (stillness so far, saturating at ~6.2 days).

Accepting a rising edge (design decisions):

- Lock-out: the HC-SR501 holds its output low for its block time (~2.5 s)
  after a pulse, so a rising edge less than ``lockout_ms`` after the fall of
  the last ACCEPTED pulse is electrical noise. Rejected pulses do not restart
  the lock-out: otherwise a sensor whose block time is a little shorter than
  ``lockout_ms`` would have every pulse of continuous motion rejected.
- Minimum pulse: a pulse is accepted once it has stayed high for
  ``min_pulse_ms`` (0 = at the edge). EV_MOTION is then reported late by up
  to ``min_pulse_ms`` but dated at the edge; a shorter pulse is noise.
- An output already high when warm-up ends is not motion: the next edge is.
- Noise never counts as motion, so it cannot mask stillness or silence.

Stillness: time without motion counts from the fall of the last accepted pulse
(a person in view keeps a retriggering sensor high), from the end of warm-up
when there was none, and, once an output is declared stuck, from that stuck
pulse's rising edge (a stuck output is not a person).

Summaries: intervals of ``interval_ms`` follow one another from the end of
warm-up. When an interval closes, EV_SUMMARY reports ``summary_count`` (motion
events, counted in the interval where they are reported), ``summary_live`` (an
accepted pulse, not stuck, was still high when the interval began: a person in
view keeps a retriggering sensor high, with no new edge to count), ``summary_active_ms``
(time the output was high; the level of a sample is taken to hold until the
next one; noise included, it is the raw output) and ``summary_end`` (tick of
the end of the closed interval). If calls are so late that several intervals
closed at once, they are COLLAPSED into one EV_SUMMARY: ``summary_intervals``
(normally 1) says how many, totals cover them all and ``summary_end`` is the
end of the last. Nothing is queued, so no summary is lost or arrives stale.

Durations accumulate call to call and saturate at ``ticks.MAX_DIFF``; a tick
earlier than the previous call's counts as no time. Events due between calls
are reported at the next call, so with sparse calls one mask may hold an event
and its opposite (STUCK|UNSTUCK, SILENT|SILENT_CLEARED); the attributes
``stuck`` and ``silent`` then give the state after the call.
"""

from shared.compat import const
from shared.ticks import MAX_DIFF, ticks_add, ticks_diff

# Event bits OR-ed into the int that update()/poll() return (this module's own
# numbering; one bit each so that one call can report several).
EV_READY = const(1)
EV_MOTION = const(2)
EV_SUMMARY = const(4)
EV_AFTER_STILL = const(8)
EV_STUCK = const(16)
EV_UNSTUCK = const(32)
EV_SILENT = const(64)
EV_SILENT_CLEARED = const(128)

_SAT = const(0x1FFFFFFF)  # ticks.MAX_DIFF: ceiling of every accumulated duration

# State of the current high pulse.
_LOW = const(0)
_PENDING = const(1)  # high, shorter than min_pulse_ms so far
_MOTION = const(2)  # accepted: a motion event was reported
_NOISE = const(3)  # rejected: warm-up, lock-out


def _check(name, value, lo, hi):
    # type() rather than isinstance(): rejects bools and floats on both runtimes.
    if type(value) is not int or value < lo or value > hi:
        raise ValueError(f"{name} must be an int in [{lo}, {hi}]")


class Pir:
    def __init__(
        self,
        warmup_ms=60000,  # HC-SR501 datasheet: ~1 min to settle after power-up
        interval_ms=300000,  # 5 min activity summaries
        still_ms=1800000,  # 30 min without motion before "first motion after still"
        stuck_ms=1800000,  # 30 min high: HC-SR501 hold is at most ~300 s
        silent_ms=172800000,  # 48 h with no motion: the sensor is suspect
        lockout_ms=2500,  # HC-SR501 block time after the output falls (~2.5 s)
        min_pulse_ms=0,  # AM312 pulses last ~2 s; 0 accepts every edge
    ):
        _check("warmup_ms", warmup_ms, 0, 3600000)
        _check("interval_ms", interval_ms, 1000, 86400000)
        _check("still_ms", still_ms, 1000, MAX_DIFF)
        _check("min_pulse_ms", min_pulse_ms, 0, 60000)
        # Stuck is decided after acceptance, so it must take longer.
        _check("stuck_ms", stuck_ms, max(1000, min_pulse_ms + 1), MAX_DIFF)
        _check("silent_ms", silent_ms, 1000, MAX_DIFF)
        _check("lockout_ms", lockout_ms, 0, 60000)
        self.warmup_ms = warmup_ms
        self.interval_ms = interval_ms
        self.still_ms = still_ms
        self.stuck_ms = stuck_ms
        self.silent_ms = silent_ms
        self.lockout_ms = lockout_ms
        self.min_pulse_ms = min_pulse_ms
        self._started = False
        self.start(0)
        self._started = False

    def start(self, now_ms):
        """Sensor powered up at now_ms: forget everything, begin warm-up."""
        self._started = True
        self._last = now_ms
        self.ready = False
        self.level = False
        self.stuck = False
        self.silent = False
        self.since_motion_ms = 0
        self.motion_at = 0
        self.still_ms_before = 0
        self.summary_count = 0
        self.summary_live = False
        self.summary_active_ms = 0
        self.summary_end = 0
        self.summary_intervals = 0
        self._warm = 0  # ms of warm-up done
        self._pulse = _LOW
        self._high_ms = 0  # ms the output has been high (this pulse)
        self._since_fall = _SAT  # ms since an accepted pulse fell
        self._int_ms = 0  # ms into the open interval
        self._int_count = 0
        self._int_live = False  # an accepted pulse was high as the open interval began
        self._int_active = 0

    def poll(self, now_ms):
        """update() with the last sample: time-based events only."""
        return self.update(now_ms, self.level)

    def update(self, now_ms, level):
        if not self._started:
            self.start(now_ms)
        dt = ticks_diff(now_ms, self._last)
        dt = max(dt, 0)
        self._last = now_ms
        ev = 0
        high = self.level  # the previous sample holds until now
        # Each term < 2**29, so every sum stays a small int (< 2**30).
        if high:
            v = self._high_ms + dt
            self._high_ms = min(v, _SAT)
        v = self._since_fall + dt
        self._since_fall = min(v, _SAT)

        if not self.ready:
            v = self._warm + dt
            if v < self.warmup_ms:
                self._warm = v
                dt = 0
            else:
                self._warm = self.warmup_ms
                self.ready = True
                ev = EV_READY
                dt = v - self.warmup_ms  # the part of dt after warm-up

        if self.ready:
            total = self._int_ms + dt
            if total >= self.interval_ms:
                n = total // self.interval_ms
                rem = total - n * self.interval_ms  # into the new interval
                self.summary_intervals = n
                self.summary_count = self._int_count
                self.summary_live = self._int_live
                self.summary_active_ms = self._int_active + (dt - rem if high else 0)
                self.summary_end = ticks_add(now_ms, -rem)
                self._int_ms = rem
                self._int_count = 0
                self._int_live = self._pulse == _MOTION and not self.stuck
                self._int_active = rem if high else 0
                ev |= EV_SUMMARY
            else:
                self._int_ms = total
                if high:
                    self._int_active += dt
            # A live accepted pulse means someone is there: stillness stays 0.
            if self._pulse != _MOTION or self.stuck:
                v = self.since_motion_ms + dt
                self.since_motion_ms = min(v, _SAT)

        # Time-based checks with the old level, then apply the new sample.
        ev |= self._timers(now_ms)
        level = bool(level)
        if level != self.level:
            self.level = level
            if level:
                self._high_ms = 0
                if not self.ready or self._since_fall < self.lockout_ms:
                    self._pulse = _NOISE
                else:
                    self._pulse = _PENDING
            else:
                if self.stuck:
                    self.stuck = False
                    ev |= EV_UNSTUCK
                if self._pulse == _MOTION:
                    self._since_fall = 0
                self._pulse = _LOW
            ev |= self._timers(now_ms)
        return ev

    def _timers(self, now_ms):
        if not self.ready:
            return 0
        ev = 0
        if self._pulse == _PENDING and self._high_ms >= self.min_pulse_ms:
            self._pulse = _MOTION
            ev = EV_MOTION
            self.motion_at = ticks_add(now_ms, -self._high_ms)
            # Stillness ran on while the pulse was pending; end it at the edge.
            before = self.since_motion_ms - self._high_ms
            before = max(before, 0)
            if before >= self.still_ms:
                self.still_ms_before = before
                ev |= EV_AFTER_STILL
            if self.silent:
                self.silent = False
                ev |= EV_SILENT_CLEARED
            self.since_motion_ms = 0
            self._int_count += 1
        if self.level and not self.stuck and self._high_ms >= self.stuck_ms:
            self.stuck = True
            self._int_live = False  # not a person after all
            ev |= EV_STUCK
            if self._pulse == _MOTION:
                # Not a person after all: stillness counts from the edge.
                self.since_motion_ms = self._high_ms
        if not self.silent and self.since_motion_ms >= self.silent_ms:
            self.silent = True
            ev |= EV_SILENT
        return ev
