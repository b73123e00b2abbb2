"""The app base: boot and restore, heartbeat and battery, the sleep decision.

Apps are driven, not free-running. The loop (firmware/main.py on the device,
firmware/hal/sim.py in the simulator) calls ``loop_once(hal, app)``:

    r = app.step(hal.ticks_ms())
    r >= 0      -> hal.wait(r, app.wake_mask, app.wake_levels)   light sleep / idle
    DEEP_SLEEP  -> hal.deep_sleep(app.sleep_ms, app.wake_mask, app.wake_levels)

``step`` processes inputs, acknowledgements and timers, and returns the ms
until it must run again. It returns DEEP_SLEEP only after saving every state
object into RTC memory; the next boot (timer, wake pin, soft or watchdog
reset) re-creates the app and ``start`` restores them, so deep sleep keeps
state. A power-on start is fresh; sequence numbers then come from NVS.

Subclasses implement:
    objects()            extra state objects to snapshot (their int/bool/list attrs)
    fresh(now)           first start after power-on (or an unusable snapshot)
    app_step(now, ev0)   inputs and app timers; returns ms until needed again
    can_deep_sleep(now)  nothing the app is doing needs the CPU awake
    hb_flags()           HEARTBEAT flags: bit 0 charging, bit 1 worn
"""

from firmware import persist
from firmware.apps.core import Core
from firmware.feedback import F_ALARM, P_IDENTIFY, P_LOW_BATTERY, P_PREALARM, Feedback
from firmware.hal import DEEP_SLEEP, FOREVER, WAKE_POWER_ON, WAKE_WATCHDOG
from shared.compat import const
from shared.frame import F_WATCHDOG_RESET, T_FAULT, T_HEARTBEAT, T_LOW_BATTERY
from shared.ticks import ticks_add, ticks_diff, ticks_reached

RTC_BYTES = const(1600)  # snapshot budget: RTC user memory is 2048 B, the HAL keeps a header
MIN_DEEP_MS = const(3000)  # shorter waits are cheaper awake than a reboot (~0.3-0.6 s + BLE)
_LOW_REPEAT_MS = const(86400000)  # LOW_BATTERY at most daily; the heartbeat flag says it hourly
_FLAG_LOW = const(4)
_FLAG_EXT = const(8)

# Battery percent from the loaded per-cell voltage (mV, percent), highest first.
# Alkaline: Energizer E91 discharge curves at ~25 mA; lithium-ion: typical 1C-0.2C curve.
_ALKALINE = (1550, 100, 1450, 80, 1350, 60, 1250, 40, 1150, 20, 1050, 5, 900, 0)
_LI_ION = (4150, 100, 4000, 85, 3900, 72, 3800, 55, 3700, 35, 3600, 15, 3500, 5, 3300, 0)


def battery_pct(mv, chemistry, cells):
    """Percent left, piecewise linear on the per-cell voltage; -1 if not measurable."""
    if mv <= 0 or cells <= 0:
        return -1
    t = _ALKALINE if chemistry == "alkaline" else _LI_ION
    v = mv // cells
    if v >= t[0]:
        return 100
    for k in range(2, len(t), 2):
        if v >= t[k]:
            hi_v = t[k - 2]
            hi_p = t[k - 1]
            lo_v = t[k]
            lo_p = t[k + 1]
            return lo_p + (v - lo_v) * (hi_p - lo_p) // (hi_v - lo_v)
    return 0


def loop_once(hal, app):
    """One turn of the device loop; identical on the device and in the simulator."""
    r = app.step(hal.ticks_ms())
    if r == DEEP_SLEEP:
        hal.deep_sleep(app.sleep_ms, app.wake_mask, app.wake_levels)
    else:
        hal.wait(r, app.wake_mask, app.wake_levels)


class App:
    kind = ""

    def __init__(self, hal, cfg):
        self.hal = hal
        self.cfg = cfg
        self.fb = Feedback(hal)
        self.core = Core(hal, cfg, self)
        self.sleep_ms = 0
        self.wake_mask = 0
        self.wake_levels = 0
        self.low_battery = False
        self.low_sent_at = 0
        self.low_sent = False
        self.battery_mv = 0
        self.battery_pct = -1
        self.restored = False
        self.boot_ev = 0  # events synthesized from the latched wake (a press already over)
        self._rtc = bytearray(RTC_BYTES)

    def replay_wake_press(self, button, debounce_ms):
        """The SOS press that woke the chip, or was held at power-on or through a reset (the
        HAL latches it; safe boot waits for its release), may be over when the app starts:
        replay it into the debouncer, dated at the reset (the frame's age covers the boot).
        The app's first step reads it from `boot_ev`."""
        t0 = self.hal.boot_ticks
        self.boot_ev |= button.update(t0, True)
        self.boot_ev |= button.update(ticks_add(t0, debounce_ms + 5), True)

    # -- subclass hooks ------------------------------------------------------
    def objects(self):
        return []

    def fresh(self, now_ms):
        pass

    def app_step(self, now_ms):
        return FOREVER

    def can_deep_sleep(self, now_ms):
        return False

    def hb_flags(self):
        return 0

    def on_ack(self, seq, mtype, status, now_ms):
        pass

    def on_done(self, seq, mtype, status):
        pass

    def on_prealarm(self, minutes, now_ms):
        """The hub asks "are you all right?" (whole-home stillness): call out until the alarm
        would go, or stop when the hub says it is over. Moving answers it (the PIR or the
        bracelet tells the hub); a press still calls for help, as it always does. Never over
        the fall cancel window (firmware/feedback.py F_HOLD refuses it): the hub repeats the
        pre-alarm with every acknowledgement, so it comes again after the window."""
        if minutes > 0:
            self.fb.play(P_PREALARM, now_ms, repeat_ms=minutes * 60000)
        elif self.fb.pattern is P_PREALARM:
            self.fb.stop()

    def on_identify(self, seconds, now_ms):
        """The platform asks "which one are you?": show it for `seconds` (0 stops). Never
        over an alarm's own feedback: what the elder must see comes first."""
        fb = self.fb
        if seconds > 0:
            if not (fb.busy and fb.pattern[0] & F_ALARM):
                fb.play(P_IDENTIFY, now_ms, repeat_ms=seconds * 1000)
        elif fb.pattern is P_IDENTIFY:
            fb.stop()

    # -- lifecycle -----------------------------------------------------------
    def _all_objects(self):
        c = self.core
        return [self, c, c.outbox, c.seq, c.settings] + c.outbox.retries + self.objects()

    def start(self, now_ms):
        """Once per boot: restore after sleep or a reset that kept RTC memory, else start fresh."""
        hal = self.hal
        why = "power-on"
        if hal.wake_cause != WAKE_POWER_ON:
            n = hal.rtc_read(self._rtc)
            why = persist.load(self._all_objects(), self._rtc, n, self.cfg.fingerprint)
            # Used once: after a later reset (watchdog, crash) a stale snapshot would roll the
            # state back, sequence numbers included. Such a reset starts fresh instead.
            hal.rtc_write(self._rtc, 0)
        self.restored = why == ""
        self.core.check_seq(self.restored)
        if not self.restored:
            hal.log("fresh start (%s)" % why)
            self.core.hb_at = now_ms  # a first heartbeat at once: the installer sees it arrive
            self.fresh(now_ms)
        if hal.wake_cause == WAKE_WATCHDOG:
            self.core.send(T_FAULT, (F_WATCHDOG_RESET << 16) | (1 << 8), now_ms)

    def save(self):
        n = persist.save(self._all_objects(), self._rtc, self.cfg.fingerprint)
        self.hal.rtc_write(self._rtc, n)

    # -- the step ------------------------------------------------------------
    def step(self, now_ms):
        core = self.core
        self.fb.quiet = core.settings.quiet(now_ms)
        d = self.app_step(now_ms)
        hb_due = ticks_diff(core.hb_at, now_ms)
        # Due now, or soon while this wake sends anyway: one boot and one BLE bring-up
        # for both (the PIR's summaries carry its heartbeats this way).
        if hb_due <= 0 or (core.outbox.busy() and hb_due < core.settings.hb_min * 60000 // 4):
            self.heartbeat(now_ms)
        d = min(d, core.step(now_ms))
        d = min(d, self.fb.step(now_ms))
        if (not self.fb.busy and core.radio_quiet() and self.can_deep_sleep(now_ms)
                and d >= MIN_DEEP_MS):
            self.sleep_ms = d
            self.hal.radio.off()
            self.save()
            return DEEP_SLEEP
        return d if d > 0 else 0

    def heartbeat(self, now_ms):
        core = self.core
        core.hb_at = ticks_add(now_ms, core.settings.hb_min * 60000)
        b = self.hal.board
        ext = self.hal.external_power()
        mv = self.hal.battery_mv()
        pct = battery_pct(mv, b.chemistry, b.cells)
        self.battery_mv = mv
        self.battery_pct = pct
        low = 0 <= pct <= self.cfg.low_battery_pct and not ext
        flags = self.hb_flags() | (_FLAG_LOW if low else 0) | (_FLAG_EXT if ext else 0)
        p = pct if pct >= 0 else 0
        mv20 = mv // 20
        core.send(T_HEARTBEAT, (p << 16) | (flags << 8) | (mv20 if mv20 < 255 else 255), now_ms)
        if low:
            again = ticks_add(self.low_sent_at, _LOW_REPEAT_MS)
            if not self.low_sent or ticks_reached(now_ms, again):
                core.send(T_LOW_BATTERY, (p << 16) | ((mv20 if mv20 < 255 else 255) << 8), now_ms)
                self.low_sent = True
                self.low_sent_at = now_ms
            if not self.fb.busy:
                self.fb.play(P_LOW_BATTERY, now_ms)  # the elder hears it; light-only in quiet hours
        else:
            self.low_sent = False
        self.low_battery = low
