"""The SOS button: one press calls for help.

Gestures come from shared.button (debounce 50 ms, long press 3 s, multi-press
of exactly 3 with gaps < 1 s, stuck after 30 s) and go to the SOS policy in
firmware/apps/sos.py. Between events the device deep-sleeps with the button
as wake source; a press that woke it is latched by the HAL at boot and
replayed here even if the finger is already gone when the app starts.

A stuck button (something resting on it) raises FAULT 1 once and the device
then sleeps waking on the RELEASE instead of the press, so it neither alarms
nor wakes in a loop; the release clears the fault.
"""

from firmware.apps.common import App
from firmware.apps.sos import Sos
from firmware.feedback import P_FAULT
from firmware.hal import FOREVER, IN_BUTTON, bit
from shared.button import EV_LONG, EV_MULTI, EV_PRESS, EV_RELEASE, EV_STUCK, EV_UNSTUCK, Button
from shared.compat import const
from shared.frame import F_BUTTON_STUCK, T_FAULT
from shared.ticks import ticks_add, ticks_reached

POLL_MS = const(10)  # sampling while the button is in use: 5 samples per debounce time
STUCK_POLL_MS = const(1000)
LONG_MS = const(3000)  # "hold 3 s to cancel": a firm 1 s press must not cancel an alarm
_DEBOUNCE_MS = const(50)
# Gap allowed between the presses of a multi-press: an easy pace (about one press a
# second) must work, also from deep sleep where the first ~0.6 s after the wake press
# are boot time (presses then are not seen). Longer costs nothing: the SOS never waits.
_GAP_MS = const(1000)


class ButtonApp(App):
    kind = "button"

    def __init__(self, hal, cfg):
        super().__init__(hal, cfg)
        self.button = Button(debounce_ms=_DEBOUNCE_MS, long_ms=LONG_MS, multi_gap_ms=_GAP_MS)
        self.sos = Sos(self)
        self.stuck = False
        self.gap_open = False  # after a release a multi-press sequence may still grow
        self.gap_until = 0
        self.in_use = False

    def objects(self):
        return [self.button, self.sos]

    def start(self, now_ms):
        super().start(now_ms)
        hal = self.hal
        if hal.wake_inputs & bit(IN_BUTTON) and not self.stuck:
            self.replay_wake_press(self.button, _DEBOUNCE_MS)
            self.in_use = True

    def fresh(self, now_ms):
        seq = self.core.recover_alarm(now_ms)
        if seq:
            self.sos.adopt(seq, self.core.outbox.type_of(seq), now_ms)

    def app_step(self, now_ms):
        b = self.button
        level = self.hal.input(IN_BUTTON)
        boot = self.boot_ev
        ev = boot | b.update(now_ms, level)
        self.boot_ev = 0
        sos = self.sos
        if ev & EV_PRESS:
            sos.on_press(now_ms, b.count == 1, b.press_at, boot & EV_PRESS)
        if ev & EV_LONG:
            sos.on_long(now_ms)
        if ev & EV_RELEASE:
            self.gap_open = True
            self.gap_until = ticks_add(now_ms, _GAP_MS + 2 * _DEBOUNCE_MS)
        if ev & EV_MULTI:
            sos.on_multi(now_ms)
        if ev & EV_STUCK:
            self.stuck = True
            self.core.send(T_FAULT, (F_BUTTON_STUCK << 16) | (1 << 8), now_ms)
            self.fb.play(P_FAULT, now_ms)
        if ev & EV_UNSTUCK:
            self.stuck = False
            self.core.send(T_FAULT, F_BUTTON_STUCK << 16, now_ms)
        sos.step(now_ms)
        # Awake and sampling while a press is on or a sequence may still grow.
        if self.gap_open and ticks_reached(now_ms, self.gap_until):
            self.gap_open = False
        self.in_use = b.is_pressed or level or self.gap_open
        if self.stuck:
            self.wake_mask = bit(IN_BUTTON)
            self.wake_levels = 0  # wake on release
            return STUCK_POLL_MS if level != b.is_pressed else FOREVER
        self.wake_mask = bit(IN_BUTTON)
        self.wake_levels = bit(IN_BUTTON)
        return POLL_MS if self.in_use else FOREVER

    def can_deep_sleep(self, now_ms):
        return not self.in_use or self.stuck

    def on_ack(self, seq, mtype, status, now_ms):
        self.sos.on_ack(seq, mtype, status, now_ms)
