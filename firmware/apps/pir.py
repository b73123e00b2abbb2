"""The PIR activity sensor: motion in, activity summaries and faults out.

shared.pir conditions the output (warm-up, lock-out, stuck, silent); this app
only moves its events onto the radio:

  EV_SUMMARY      -> ACTIVITY: motion count (16 bits), interval minutes (8 bits);
                     late calls collapse several intervals into one message
  EV_AFTER_STILL  -> MOTION: first motion after >= still_min; arg = the still minutes
  EV_STUCK / EV_UNSTUCK     -> FAULT 2 raised / cleared
  EV_SILENT / EV_SILENT_CLEARED -> FAULT 3 raised / cleared

Whether the home is inactive is the hub's call, never this device's. Between
events it deep-sleeps, waking on the OPPOSITE of the output's current level
(ext0 / wake_on_gpio are level wakes: arming "high" while high would wake at
once) and on a timer for the next interval end, stuck or silent check. A
pulse shorter than 10 s is waited out in light sleep (one boot per motion).
"""

from firmware.apps.common import App
from firmware.feedback import P_FAULT
from firmware.hal import FOREVER, IN_PIR, bit
from shared.compat import const
from shared.frame import F_PIR_SILENT, F_PIR_STUCK, T_ACTIVITY, T_FAULT, T_MOTION
from shared.pir import (
    EV_AFTER_STILL,
    EV_SILENT,
    EV_SILENT_CLEARED,
    EV_STUCK,
    EV_SUMMARY,
    EV_UNSTUCK,
    Pir,
)
from shared.ticks import ticks_add, ticks_diff

_MIN = const(60000)
_COUNT_MAX = const(0xFFFF)
# A pulse (AM312 ~2 s; HC-SR501 a few s) is waited out in light sleep for its fall:
# one boot per motion instead of two. Longer (retriggering on and on): deep sleep.
_AWAKE_HIGH_MS = const(10000)


class PirApp(App):
    kind = "pir"

    def __init__(self, hal, cfg):
        super().__init__(hal, cfg)
        self.pir = Pir(interval_ms=self.core.settings.summary_min * _MIN,
                       still_ms=cfg.still_min * _MIN)
        self.start_at = 0  # tick the sensor was powered (warm-up and intervals count from it)
        self.next_sum_at = 0
        self.rise_at = 0  # tick of the last rising edge seen
        self.level = False

    def objects(self):
        return [self.pir]

    def fresh(self, now_ms):
        # The sensor is powered with the board: its warm-up starts now.
        self.pir.start(now_ms)
        self.start_at = now_ms
        self.next_sum_at = ticks_add(now_ms, self.pir.warmup_ms + self.pir.interval_ms)

    def app_step(self, now_ms):
        p = self.pir
        core = self.core
        interval = core.settings.summary_min * _MIN
        if interval != p.interval_ms:  # the hub changed the summary interval: from the next one
            p.interval_ms = interval
        level = self.hal.input(IN_PIR)
        if level and not self.level:
            self.rise_at = now_ms
        self.level = level
        ev = p.update(now_ms, level)
        if ev & EV_SUMMARY:
            # a person in view all along (one retriggered pulse, no new edge) is motion too
            n = p.summary_count if p.summary_count else (1 if p.summary_live else 0)
            n = n if n < _COUNT_MAX else _COUNT_MAX
            mins = p.summary_intervals * p.interval_ms // _MIN
            arg = (n << 8) | (mins if mins < 255 else 255)
            core.send(T_ACTIVITY, arg, now_ms, 0, p.summary_end)
            self.next_sum_at = ticks_add(p.summary_end, p.interval_ms)
        if ev & EV_AFTER_STILL:
            m = p.still_ms_before // _MIN
            core.send(T_MOTION, m if m < 0xFFFFFF else 0xFFFFFF, now_ms, 0, p.motion_at)
        if ev & EV_STUCK:
            core.send(T_FAULT, (F_PIR_STUCK << 16) | (1 << 8), now_ms)
            self.fb.play(P_FAULT, now_ms)
        if ev & EV_UNSTUCK:
            core.send(T_FAULT, F_PIR_STUCK << 16, now_ms)
        if ev & EV_SILENT:
            core.send(T_FAULT, (F_PIR_SILENT << 16) | (1 << 8), now_ms)
        if ev & EV_SILENT_CLEARED:
            core.send(T_FAULT, F_PIR_SILENT << 16, now_ms)
        self.wake_mask = bit(IN_PIR)
        self.wake_levels = 0 if level else bit(IN_PIR)
        return self._next(now_ms, level)

    def _next(self, now_ms, level):
        """ms until the Pir has something time-based to say (edges wake us by themselves)."""
        p = self.pir
        if not p.ready:
            return max(0, ticks_diff(ticks_add(self.start_at, p.warmup_ms), now_ms))
        d = ticks_diff(self.next_sum_at, now_ms)
        if level and not p.stuck:
            d = min(d, ticks_diff(ticks_add(self.rise_at, p.stuck_ms), now_ms))
            if ticks_diff(now_ms, self.rise_at) < _AWAKE_HIGH_MS:
                d = min(d, ticks_diff(ticks_add(self.rise_at, _AWAKE_HIGH_MS), now_ms))
            if p.min_pulse_ms:
                d = min(d, ticks_diff(ticks_add(self.rise_at, p.min_pulse_ms), now_ms))
        if not p.silent:
            d = min(d, p.silent_ms - p.since_motion_ms)
        if d < 0:
            return 0
        return d if d < FOREVER else FOREVER

    def can_deep_sleep(self, now_ms):
        return not self.level or ticks_diff(now_ms, self.rise_at) >= _AWAKE_HIGH_MS
