"""Push-button conditioning: debounce, press, release, long press, multi-press, stuck.

Sans-IO. Call ``update(now_ms, pressed)`` at each poll with the tick (ESP32
``ticks_ms``) and the level, already inverted for active-low wiring (truthy =
pressed); call ``poll(now_ms)`` between samples so time-based events still fire.
Both return an int, the OR of:

- ``EV_PRESS``: a press is confirmed. ``press_at`` = tick of its first edge.
- ``EV_RELEASE``: its release is confirmed. ``held_ms`` = how long it lasted.
- ``EV_LONG``: the press has been held ``>= long_ms`` (once per press).
- ``EV_MULTI``: a sequence of ``multi_min`` to ``multi_max`` presses (by
  default exactly 3), each starting less than ``multi_gap_ms`` after the
  previous release, ended ``multi_gap_ms`` after its last release with no
  further press. ``count`` = presses in it. A sequence with more presses (panic
  hammering, not a gesture) or with a long press in it never gives
  ``EV_MULTI``: when in doubt, no gesture.
- ``EV_STUCK``: held ``>= stuck_ms``: a fault, reported once; nothing more is
  reported until the button is released (cleanly, i.e. debounced).
- ``EV_UNSTUCK``: the stuck button was released (always with ``EV_RELEASE``).

Attributes: ``is_pressed`` (debounced state), ``press_at``, ``held_ms`` (the
current press so far, else the last press), ``count`` (presses in the current
or last sequence). Every ``EV_PRESS`` is followed by exactly one ``EV_RELEASE``.

Debounce (design decision): a change of state is CONFIRMED only once the raw
level has been stable for ``debounce_ms``; every raw change restarts that
timer. A bounce or glitch shorter than ``debounce_ms`` never yields an event
and continuous chatter yields none. Cost: ``debounce_ms`` of latency (50 ms);
an SOS raised by an EMI spike is worse. The confirmed change is dated at the
first edge of the burst that settled, so long-press timing counts from when
the finger went down. A burst already ``debounce_ms`` old restarts at its next
edge away from the confirmed level, so minutes of chatter cannot back-date a
press and fire ``EV_LONG`` together with its ``EV_PRESS``.

Timing: durations are accumulated call to call and saturate at
``ticks.MAX_DIFF`` (~6.2 days), so a button stuck for weeks is fine; a tick
earlier than the previous call's counts as no time. An event falling due
between calls is reported at the next call, so with sparse calls one mask can
hold several, e.g. LONG|RELEASE, STUCK|RELEASE|UNSTUCK, RELEASE|MULTI, and
PRESS|LONG (only when calls are further apart than ``long_ms - 2 *
debounce_ms``); ``is_pressed`` gives the state after the call. EV_MULTI never
shares a call with the next sequence's EV_PRESS, so ``count`` is unambiguous.
"""

from shared.compat import const
from shared.ticks import MAX_DIFF, ticks_diff

# Event bits OR-ed into the int that update()/poll() return (this module's own
# numbering; one bit each so that one call can report several).
EV_PRESS = const(1)
EV_RELEASE = const(2)
EV_LONG = const(4)
EV_MULTI = const(8)
EV_STUCK = const(16)
EV_UNSTUCK = const(32)

_SAT = const(0x1FFFFFFF)  # ticks.MAX_DIFF: ceiling of every accumulated duration


def _check(name, value, lo, hi):
    # type() rather than isinstance(): rejects bools and floats on both runtimes.
    if type(value) is not int or value < lo or value > hi:
        raise ValueError(f"{name} must be an int in [{lo}, {hi}]")


class Button:
    def __init__(
        self,
        debounce_ms=50,  # micropython-async Pushbutton debounce time
        long_ms=1000,  # micropython-async Pushbutton long press
        multi_gap_ms=400,  # micropython-async Pushbutton double-click window
        multi_min=3,  # test gesture: 3 presses, unlikely by accident
        multi_max=3,  # ...and exactly 3: more is someone hammering the button in panic
        stuck_ms=30000,  # 30x a long press: a fault, not a panic hold
    ):
        # debounce >= 1 ms: a level is only confirmed by a later call, which
        # keeps EV_MULTI and the next EV_PRESS in different calls.
        _check("debounce_ms", debounce_ms, 1, 1000)
        # > 2 * debounce: a press is confirmed before it can become long.
        _check("long_ms", long_ms, 2 * debounce_ms + 1, 600000)
        _check("multi_gap_ms", multi_gap_ms, 1, 10000)
        _check("multi_min", multi_min, 2, 100)
        _check("multi_max", multi_max, multi_min, 100)
        _check("stuck_ms", stuck_ms, long_ms + 1, MAX_DIFF)
        self.debounce_ms = debounce_ms
        self.long_ms = long_ms
        self.multi_gap_ms = multi_gap_ms
        self.multi_min = multi_min
        self.multi_max = multi_max
        self.stuck_ms = stuck_ms

        self.is_pressed = False
        self.press_at = 0
        self.held_ms = 0
        self.count = 0

        self._started = False
        self._last = 0  # tick of the previous call
        self._raw = False  # last raw sample
        self._stable = 0  # ms since the last raw change
        self._burst = False  # raw level has left the confirmed one, unsettled
        self._burst_ms = 0  # ms since the burst's first edge
        self._burst_at = 0  # tick of the burst's first edge
        self._joins = False  # the pending press burst continues the sequence
        self._rel_ms = 0  # ms since the last release's first edge
        self._seq_open = False  # a sequence may still grow
        self._seq_long = False  # the sequence holds a long press: no EV_MULTI
        self._long_done = False
        self._stuck = False

    def poll(self, now_ms):
        """update() with the last sample: time-based events only."""
        return self.update(now_ms, self._raw)

    def update(self, now_ms, pressed):
        pressed = bool(pressed)
        if self._started:
            dt = ticks_diff(now_ms, self._last)
            dt = max(dt, 0)
        else:
            self._started = True
            dt = 0
        self._last = now_ms

        # Age every timer; the previous sample is taken to hold until now.
        # Each term < 2**29, so every sum stays a small int (< 2**30).
        v = self._stable + dt
        self._stable = min(v, _SAT)
        if self._burst:
            v = self._burst_ms + dt
            self._burst_ms = min(v, _SAT)
        if self.is_pressed:
            v = self.held_ms + dt
            self.held_ms = min(v, _SAT)
        else:
            v = self._rel_ms + dt
            self._rel_ms = min(v, _SAT)

        # Timers first: a sequence that ended before this sample's edge must
        # close before that edge is tested for joining it.
        ev = self._timers()

        if pressed != self._raw:
            self._raw = pressed
            self._stable = 0
            if pressed != self.is_pressed:
                if not self._burst:
                    self._burst = True
                    self._burst_ms = 0
                    self._burst_at = now_ms
                    # _timers() has closed the sequence if the gap is over.
                    self._joins = self._seq_open
                elif self._burst_ms >= self.debounce_ms:
                    # Chatter, not bounce: date the press from this edge.
                    self._burst_ms = 0
                    self._burst_at = now_ms

        if self._burst and self._stable >= self.debounce_ms:
            self._burst = False
            if self._raw != self.is_pressed:
                ev |= self._confirm()
            # else: a glitch that returned to the confirmed level: nothing.

        return ev | self._timers()

    def _confirm(self):
        if self._raw:
            self.is_pressed = True
            self.press_at = self._burst_at
            self.held_ms = self._burst_ms
            self._long_done = False
            if self._joins and self._seq_open:
                self.count += 1
            else:
                self.count = 1
                self._seq_open = True
                self._seq_long = False
            return EV_PRESS
        # The press ended at the release burst's first edge.
        held = self.held_ms - self._burst_ms
        self.held_ms = max(held, 0)
        self.is_pressed = False
        self._rel_ms = self._burst_ms
        if self._stuck:
            self._stuck = False
            return EV_RELEASE | EV_UNSTUCK
        return EV_RELEASE

    def _timers(self):
        ev = 0
        if self.is_pressed:
            if self._stuck:
                return 0
            held = self.held_ms
            if self._burst:
                # A release is pending: the press ended at its first edge, if real.
                held -= self._burst_ms
            if not self._long_done and held >= self.long_ms:
                self._long_done = True
                self._seq_long = True
                ev = EV_LONG
            if held >= self.stuck_ms:
                self._stuck = True
                ev |= EV_STUCK
        elif (
            self._seq_open
            and self._rel_ms >= self.multi_gap_ms
            and not (self._burst and self._joins)
        ):
            self._seq_open = False
            n = self.count
            if not self._seq_long and self.multi_min <= n <= self.multi_max:
                ev = EV_MULTI
        return ev
