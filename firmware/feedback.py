"""Light, sound and vibration patterns the elder sees and hears.

A pattern is a bytes constant: one flags byte (bit 0 F_ALARM, bit 1 F_HOLD,
bits 4-7 the pattern's number in NAMES, for traces), then (duration, outputs)
pairs.
Duration counts 10 ms (up to 2.55 s per step); outputs: bit 0 LED, bit 1
vibration, bits 2-3 tone (TONE_*). F_ALARM patterns ignore the buzzer quiet
hours (they answer something the elder just did or must act on); the others
(low battery, fault) are light-only during quiet hours. While an F_HOLD pattern
plays (the fall cancel window: the wearer must know it is open) play() refuses
every other pattern; only stop() or its own end releases it. What was refused is
dropped: the status patterns come again with the next acknowledgement, the hub's
pre-alarm rides on every acknowledgement. The table, with what
each one means, is in docs/device-behaviour.md: keep both in step.

The player is non-blocking: play() starts a pattern, step(now) switches the
outputs when due and returns the ms until the next change (FOREVER when idle),
so it runs inside the app's step() under any loop, real or simulated.
"""

from firmware.hal import FOREVER, TONE_OFF
from shared.compat import const
from shared.ticks import ticks_add, ticks_diff, ticks_reached

F_ALARM = const(1)
F_HOLD = const(2)  # nothing replaces it while it plays (see above)
NAMES = ("", "SENDING", "NOT_DELIVERED", "RECEIVED", "CALLING", "HELP", "CANCELLED", "TEST_OK",
         "FALL_WINDOW", "LOW_BATTERY", "FAULT", "SAFE_BOOT", "CONFIG_ERROR", "PREALARM",
         "IDENTIFY")
_L = const(1)  # LED
_V = const(2)  # vibration
# Tone bits: TONE_* << 2, as literals because const() cannot see imported names.
_LO = const(4)  # TONE_LOW << 2
_MI = const(8)  # TONE_MID << 2
_HI = const(12)  # TONE_HIGH << 2

# Tone frequencies for a passive piezo: around its 2-4 kHz resonance, and the
# low one near 1 kHz where elderly hearing is best (presbycusis hits highs first).
TONE_HZ = (0, 1000, 2000, 3000)

# Sending: a double blink and a short beep every second -- "I am calling".
P_SENDING = bytes((F_ALARM | 1 << 4, 10, _L | _MI, 10, 0, 10, _L, 70, 0))
# Not delivered yet: three long low beeps with long flashes, then a pause.
P_NOT_DELIVERED = bytes((F_ALARM | 2 << 4, 50, _L | _LO, 25, 0, 50, _L | _LO, 25, 0,
                         50, _L | _LO, 125, 0))
# Received by the hub: two rising beeps, light held.
P_RECEIVED = bytes((F_ALARM | 3 << 4, 15, _L | _MI, 5, _L, 15, _L | _HI, 70, _L, 1, 0))
# Help is being called (the platform has it): three rising beeps, light held longer.
P_CALLING = bytes((F_ALARM | 4 << 4, 15, _L | _LO, 15, _L | _MI, 30, _L | _HI, 150, _L, 1, 0))
# Help is on the way (an operator acknowledged): a slow three-note chime twice, long light.
P_HELP = bytes((F_ALARM | 5 << 4, 30, _L | _LO, 30, _L | _MI, 60, _L | _HI, 30, _L,
                30, _L | _LO, 30, _L | _MI, 60, _L | _HI, 250, _L, 250, _L, 1, 0))
# Cancelled: a falling pair, light off.
P_CANCELLED = bytes((F_ALARM | 6 << 4, 20, _L | _HI, 60, _L | _LO, 1, 0))
# Test recorded by the platform: two quick high beeps.
P_TEST_OK = bytes((F_ALARM | 7 << 4, 10, _L | _HI, 10, 0, 10, _L | _HI, 1, 0))
# Fall suspected, cancel window open: pulse every second (vibration where fitted).
P_FALL_WINDOW = bytes((F_ALARM | F_HOLD | 8 << 4, 30, _L | _V | _MI, 70, 0))
# Low battery: three very short chirps (light only in quiet hours).
P_LOW_BATTERY = bytes((9 << 4, 4, _L | _HI, 16, 0, 4, _L | _HI, 16, 0, 4, _L | _HI, 1, 0))
# Fault (stuck button, sensor fault): one long low tone.
P_FAULT = bytes((10 << 4, 100, _L | _LO, 1, 0))
# Safe boot: five fast blinks, then the light stays on two seconds.
P_SAFE_BOOT = bytes((F_ALARM | 11 << 4, 5, _L, 5, 0, 5, _L, 5, 0, 5, _L, 5, 0, 5, _L, 5, 0,
                     5, _L, 5, 0, 200, _L, 1, 0))
# Configuration error: long-long-long blinks (no sound: nobody to alarm).
P_CONFIG_ERROR = bytes((12 << 4, 60, _L, 20, 0, 60, _L, 20, 0, 60, _L, 100, 0))
# The hub's whole-home pre-alarm, "are you all right?": a rising call with light and vibration,
# repeated; sounds in quiet hours too (an alarm follows if nobody moves)
P_PREALARM = bytes((F_ALARM | 13 << 4, 20, _L | _V | _MI, 20, _L, 20, _L | _V | _HI, 140, 0))
# "It's me": the platform's identify request, so a worker can tell which device is meant;
# a quick blink-blink and one low chirp a second, repeated; light only in quiet hours
P_IDENTIFY = bytes((14 << 4, 15, _L | _LO, 15, 0, 15, _L, 55, 0))


class Feedback:
    def __init__(self, hal):
        self.hal = hal
        self.pattern = b""  # b"": idle
        self.quiet = False  # buzzer quiet hours (set by the app from the hub's clock)
        self.plays = 0  # patterns started (tests, diagnostics)
        self._i = 0
        self._at = 0  # tick of the next step
        self._until = 0  # repeat the pattern until this tick
        self._repeat = False
        self._led = False
        self._tone = 0
        self._vib = False

    @property
    def busy(self):
        return len(self.pattern) > 0

    def play(self, pattern, now_ms, repeat_ms=0):
        """Start `pattern` now; with repeat_ms, loop it until that long has passed.
        False (and nothing changes) while an F_HOLD pattern plays."""
        p = self.pattern
        if p and p[0] & F_HOLD and pattern is not p:
            return False
        self.pattern = pattern
        self.plays += 1
        self.hal.trace("pattern", pattern[0] >> 4)
        self._i = 1
        self._at = now_ms
        self._repeat = repeat_ms > 0
        self._until = ticks_add(now_ms, repeat_ms)
        self.step(now_ms)
        return True

    def stop(self):
        self.pattern = b""
        self._out(0)

    def _out(self, bits):
        hal = self.hal
        led = bits & _L != 0
        vib = bits & _V != 0
        tone = (bits >> 2) & 3
        if tone and self.quiet and self.pattern and not self.pattern[0] & F_ALARM:
            tone = TONE_OFF
        if led != self._led:
            self._led = led
            hal.led(led)
        if vib != self._vib:
            self._vib = vib
            hal.vibrate(vib)
        if tone != self._tone:
            self._tone = tone
            hal.tone(tone)

    def step(self, now_ms):
        """Apply due steps; ms until the next change, FOREVER when idle."""
        p = self.pattern
        while p and ticks_reached(now_ms, self._at):
            if self._i >= len(p):
                if self._repeat and not ticks_reached(now_ms, self._until):
                    self._i = 1
                else:
                    self.pattern = b""
                    self._out(0)
                    return FOREVER
            self._out(p[self._i + 1])
            self._at = ticks_add(self._at, p[self._i] * 10)
            self._i += 2
        if not p:
            return FOREVER
        d = ticks_diff(self._at, now_ms)
        return d if d > 0 else 0
