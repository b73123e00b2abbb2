"""The bracelet: SOS button, fall detection, worn / not worn, activity.

The accelerometer runs continuously into its FIFO at 50 Hz; the app reads a
batch every second (the CPU light-sleeps in between) and streams it through
shared.fall.FallDetector and shared.fall.Wear. Fall handling:

  EV_FALL -> FALL_SUSPECTED at once (so even a bracelet broken by the fall
             has told the hub), vibration/beeps, and a cancel window of
             cancel_s (10-30 s, a hub setting).
  hold the button 3 s in the window  -> FALL_CANCELLED ("I'm fine")
  a short press in the window        -> FALL_CONFIRMED now ("I need help")
  the window runs out                -> FALL_CONFIRMED, then shown like an SOS
                                        (a long press cancels it: FALL_CANCELLED
                                        naming the FALL_CONFIRMED)

An open window is kept in NVS (the FALL_SUSPECTED's number): a reset or a power cut
inside it (a brown-out from the impact) would otherwise forget it, and the fall would
never be confirmed. A fresh start with a window recorded opens it again, whole: the
wearer can still say "I'm fine", and nothing said confirms the fall.

Outside a fall window the button is the SOS button (firmware/apps/sos.py).
No falls are reported while charging (it is on the table) nor while a
confirmed fall is active. Activity summaries
count seconds with movement per summary interval; WORN / NOT_WORN follow
shared.fall.Wear and charging (charging = not worn). It never deep-sleeps:
fall detection needs the sensor read every second.
"""

from array import array

from firmware.apps.common import App
from firmware.apps.sos import Sos
from firmware.feedback import P_FALL_WINDOW, P_FAULT
from firmware.hal import IN_BUTTON, bit
from shared.button import EV_LONG, EV_MULTI, EV_PRESS, EV_RELEASE, Button
from shared.compat import const
from shared.fall import EV_FALL, EV_NOT_WORN, EV_WORN, FallDetector, Wear
from shared.frame import (
    F_IMU,
    T_ACTIVITY,
    T_FALL_CONFIRMED,
    T_FALL_SUSPECTED,
    T_FAULT,
    T_NOT_WORN,
    T_WORN,
)
from shared.ticks import ticks_add, ticks_diff, ticks_reached

RATE_HZ = const(50)
BATCH_MS = const(1000)  # FIFO read period: 50 samples of the 128 the 1 KB FIFO holds
FIFO_MAX = const(128)
POLL_MS = const(10)
IMU_RETRY_MS = const(600000)  # an IMU that did not answer is tried again every 10 min
LONG_MS = const(3000)
_DEBOUNCE_MS = const(50)  # as firmware/apps/button.py
_MIN = const(60000)
_NVS_WINDOW = "fall_win"  # the open window's FALL_SUSPECTED seq; -1: open, not queued; 0: none
_FLAG_CHARGING = const(1)
_FLAG_WORN = const(2)


class BraceletApp(App):
    kind = "bracelet"

    def __init__(self, hal, cfg):
        super().__init__(hal, cfg)
        self.button = Button(debounce_ms=_DEBOUNCE_MS, long_ms=LONG_MS, multi_gap_ms=1000)
        self.sos = Sos(self)
        self.fall = FallDetector(rate_hz=RATE_HZ)
        self.wear = Wear(rate_hz=RATE_HZ, not_worn_ms=cfg.not_worn_min * _MIN)
        # x, y, z milli-g, filled in place by the HAL; an array, so not in the RTC snapshot
        self.samples = array("h", bytes(6 * FIFO_MAX))
        self.imu_ok = False
        self.read_at = 0
        self.sum_at = 0
        self.window = False
        self.window_end = 0
        self.susp_seq = 0
        self.charging = False
        self.worn = True
        self.falls = 0
        self.overflows = 0

    def objects(self):
        return [self.button, self.sos]

    def start(self, now_ms):
        super().start(now_ms)
        if self.hal.wake_inputs & bit(IN_BUTTON):  # held at power-on or through a reset
            self.replay_wake_press(self.button, _DEBOUNCE_MS)
        # The IMU is (re)configured at every boot: its FIFO content is not trusted.
        self.imu_ok = self.hal.imu_start(RATE_HZ)
        self.read_at = ticks_add(now_ms, BATCH_MS if self.imu_ok else IMU_RETRY_MS)
        self.sum_at = ticks_add(now_ms, self.core.settings.summary_min * _MIN)
        if not self.imu_ok:
            self.core.send(T_FAULT, (F_IMU << 16) | (1 << 8), now_ms)
            self.fb.play(P_FAULT, now_ms)

    def fresh(self, now_ms):
        seq = self.core.recover_alarm(now_ms)
        if seq:
            self.sos.adopt(seq, self.core.outbox.type_of(seq), now_ms)
        susp = self.hal.nvs_get(_NVS_WINDOW, 0)
        if susp:  # restarted inside a fall's cancel window: open it again
            self.hal.log("fall window open at the restart (seq %d): opened again" % susp)
            self._open_window(susp if susp > 0 else 0, now_ms)

    def _open_window(self, susp_seq, now_ms):
        cancel_s = self.core.settings.cancel_s
        self.susp_seq = susp_seq
        self.window = True
        self.window_end = ticks_add(now_ms, cancel_s * 1000)
        self.fb.play(P_FALL_WINDOW, now_ms, cancel_s * 1000)
        self._record_window(susp_seq if susp_seq else -1)

    def _close_window(self):
        self.window = False
        self.fb.stop()  # FALL_WINDOW holds the feedback (F_HOLD) until the window ends
        self._record_window(0)

    def _record_window(self, v):
        try:
            self.hal.nvs_set(_NVS_WINDOW, v)
        except OSError as e:  # the window goes on; only a restart inside it would lose it
            self.hal.log("fall window not recorded in NVS: %r" % e)

    def hb_flags(self):
        return (_FLAG_CHARGING if self.charging else 0) | (_FLAG_WORN if self.worn else 0)

    def _set_worn(self, worn, now_ms):
        if worn != self.worn:
            self.worn = worn
            self.core.send(T_WORN if worn else T_NOT_WORN, 0, now_ms)

    def _samples(self, now_ms):
        n = self.hal.imu_read(self.samples)
        if n < 0:  # FIFO overflow: samples lost, the stream has a hole
            self.overflows += 1
            self.fall.reset()
            return
        period = 1000 // RATE_HZ
        s = self.samples
        f = self.fall
        w = self.wear
        for k in range(n):
            x = s[3 * k]
            y = s[3 * k + 1]
            z = s[3 * k + 2]
            ev = f.update(ticks_add(now_ms, -(n - 1 - k) * period), x, y, z) | w.update(x, y, z)
            if ev & EV_FALL and not self.charging and not self.window and \
                    not self._fall_alarm_active(now_ms):
                self._fall(now_ms)
            if ev & EV_WORN and not self.charging:
                self._set_worn(True, now_ms)
            if ev & EV_NOT_WORN:
                self._set_worn(False, now_ms)

    def _fall_alarm_active(self, now_ms):
        # A confirmed fall is being called for already; a second window's cancel, should its
        # FALL_SUSPECTED go unheard, could close the first fall's early warning at the hub
        # while that FALL_CONFIRMED is still on its way (hub/pipeline_cancels.py). (A fall
        # during an SOS still opens its window: the platform learns of the fall.)
        sos = self.sos
        return sos.active(now_ms) and sos.alarm_type == T_FALL_CONFIRMED

    def _fall(self, now_ms):
        f = self.fall
        self.falls += 1
        cancel_s = self.core.settings.cancel_s
        peak = f.peak_mg // 100
        arg = ((peak if peak < 255 else 255) << 16) | (cancel_s << 8)
        self._open_window(self.core.send(T_FALL_SUSPECTED, arg, now_ms, 0, f.fall_at), now_ms)

    def _buttons(self, now_ms, ev, boot):
        sos = self.sos
        b = self.button
        if self.window:
            if ev & EV_LONG:  # "I'm fine"
                self._close_window()
                sos.cancel_fall(self.susp_seq, now_ms)  # (susp_seq 0: it was never queued)
            elif ev & EV_RELEASE:  # a short press: "I need help" now
                self._close_window()
                sos.raise_fall(now_ms, self.susp_seq)
            return
        if ev & EV_PRESS:
            sos.on_press(now_ms, b.count == 1, b.press_at, boot & EV_PRESS)
        if ev & EV_LONG:
            sos.on_long(now_ms)
        if ev & EV_MULTI:
            sos.on_multi(now_ms)

    def app_step(self, now_ms):
        b = self.button
        level = self.hal.input(IN_BUTTON)
        boot = self.boot_ev
        ev = boot | b.update(now_ms, level)
        self.boot_ev = 0
        self._buttons(now_ms, ev, boot)
        charging = self.hal.external_power()
        if charging != self.charging:
            self.charging = charging
            if charging:
                self._set_worn(False, now_ms)
        if ticks_reached(now_ms, self.read_at):
            if self.imu_ok:
                self.read_at = ticks_add(now_ms, BATCH_MS)
                self._samples(now_ms)
            else:  # try the sensor again now and then: a loose connector, a brown-out
                self.read_at = ticks_add(now_ms, IMU_RETRY_MS)
                self.imu_ok = self.hal.imu_start(RATE_HZ)
                if self.imu_ok:
                    self.fall.reset()
                    self.core.send(T_FAULT, F_IMU << 16, now_ms)
        if self.window and ticks_reached(now_ms, self.window_end):
            self._close_window()
            self.sos.raise_fall(now_ms, self.susp_seq)
        if ticks_reached(now_ms, self.sum_at):
            mins = self.core.settings.summary_min
            self.sum_at = ticks_add(now_ms, mins * _MIN)
            n = self.wear.take_active()
            self.core.send(T_ACTIVITY, ((n if n < 0xFFFF else 0xFFFF) << 8) | mins, now_ms)
        if not self.window:  # its "not delivered yet" would be refused now: it waits instead
            self.sos.step(now_ms)
        self.wake_mask = bit(IN_BUTTON)
        self.wake_levels = bit(IN_BUTTON)
        if b.is_pressed or level:
            return POLL_MS
        d = ticks_diff(self.read_at, now_ms)
        if self.window:
            d = min(d, ticks_diff(self.window_end, now_ms))
        d = min(d, ticks_diff(self.sum_at, now_ms))
        return d if d > 0 else 0

    def can_deep_sleep(self, now_ms):
        return False

    def on_ack(self, seq, mtype, status, now_ms):
        self.sos.on_ack(seq, mtype, status, now_ms)
