"""The simulator's runner: boots, steps and sleeps devices on one virtual clock.

SimDevice follows the chip: power-on, boot time (the board's boot_ms, spent
awake), app start, then the same loop body as the device (firmware.apps.common
.loop_once). Deep sleep discards the app; the wake re-creates it from RTC
memory and NVS with the latched wake cause. Energy is accounted per mode
(boot, awake with the radio on, light sleep, deep sleep, advertising,
connected, LED, tone, vibration) for bench/energy_budget.py.
"""

from firmware import safeboot
from firmware.apps.common import loop_once
from firmware.hal import (
    FOREVER,
    N_INPUTS,
    WAKE_PIN,
    WAKE_POWER_ON,
    WAKE_TIMER,
    SleepExit,
)
from firmware.hal.sim import PowerLoss, SimHal, SimRadio


class SimDevice:
    """Boots, steps and sleeps one SimPlatform on the World's virtual clock."""

    def __init__(self, plat, world=None):
        self.plat = plat
        self.world = world
        self.radio = SimRadio(self)
        self.app = None
        self.hal = None
        self.state = "off"  # off, booting, run, wait, deep, safe
        self.next_at = None
        self.reset_at = 0
        self.cause = WAKE_POWER_ON
        self.wake_inputs = 0
        self.spec = (0, 0)
        self.wait_until = 0
        self.out = {"led": False, "tone": 0, "vib": False}
        self._acc_at = 0
        self._wake = (WAKE_TIMER, 0)
        self._plan = None  # ("wait" | "deep", end, mask, levels): re-planned on script changes
        self._boot_held = False
        for s in plat.inputs:
            s.listener = self
        self.sleeps = 0

    # -- energy ------------------------------------------------------------------
    def account(self):
        p = self.plat
        dt = p.now - self._acc_at
        self._acc_at = p.now
        if dt <= 0:
            return
        e = p.energy
        st = self.state
        if st == "booting":
            e["boot"] += dt
        elif st == "deep":
            e["deep"] += dt
        elif st in ("wait", "run", "safe"):
            e["awake" if (self.radio.is_on or st == "safe") else "light"] += dt
        if self.radio.advertising:
            e["adv_fast" if self.radio.interval_us <= 20000 else "adv"] += dt
        if self.radio.connected:
            e["conn"] += dt
        if self.out["led"]:
            e["led"] += dt
        if self.out["tone"]:
            e["tone"] += dt
        if self.out["vib"]:
            e["vib"] += dt

    # -- lifecycle -----------------------------------------------------------------
    def power_on(self, t_ms=None):
        self._reset(WAKE_POWER_ON, self.plat.now if t_ms is None else t_ms)

    def power_loss(self, off_ms=1000):
        """Cut the power now: app and RTC memory gone, committed NVS kept; back after off_ms."""
        self.account()
        self.radio.off()
        m = self.world.medium if self.world else None
        if m is not None:
            m.stop(self)
        self.app = None
        self.plat.rtc = b""
        self.plat.clock_saved = None
        self.state = "off"
        self.out = {"led": False, "tone": 0, "vib": False}
        self.next_at = self.plat.now + off_ms

    def _reset(self, cause, t):
        self.account()
        self.cause = cause
        self.reset_at = t
        self.state = "booting"
        self._boot_held = False  # main.py's safe-boot wait for a held input is over
        self.plat.counts["boots"] += 1
        self.next_at = t + self.plat.board.boot_ms
        p = self.plat
        if cause != WAKE_PIN and cause != WAKE_TIMER:  # a reset: latch what is held (as esp32)
            self.wake_inputs = 0
            for i in range(N_INPUTS):
                if p.board.in_pin[i] >= 0 and p.inputs[i].level(t):
                    self.wake_inputs |= 1 << i

    def poke(self):
        """Something happened (an acknowledgement write, a disconnect): run the app now."""
        if self.state == "wait":
            self.next_at = self.plat.now

    def run(self):
        p = self.plat
        self.account()
        if self.state == "off":
            self._reset(WAKE_POWER_ON, p.now)
            return
        if self.state == "booting":
            self.hal = SimHal(self, self.cause, self.wake_inputs)
            if not self._boot_held:
                start_at = self._safe_boot()
                if start_at is None:
                    return
                if start_at > p.now:  # main.py waits for the release of the held input
                    self._boot_held = True
                    self.next_at = start_at
                    return
            self.app = p.app_class(self.hal, p.cfg)
            self.state = "run"
            try:
                self.app.start(self.hal.ticks_ms())
            except PowerLoss:
                self.power_loss()
                return
        self.state = "run"
        p.counts["steps"] += 1
        try:
            loop_once(self.hal, self.app)
        except SleepExit as s:
            ms, mask, levels = s.args
            self._deep(ms, mask, levels)
        except PowerLoss:
            self.power_loss()

    def _safe_boot(self):
        """firmware/main.py safe_boot(): None if safe boot, else when the app may start
        (a held input released before the hold time: its release)."""
        p = self.plat
        b = p.board
        if self.cause != WAKE_POWER_ON:
            return p.now
        i = b.safe_boot_input
        t0 = p.inputs[i].first_at(True, self.reset_at, self.reset_at + b.safe_boot_window_ms)
        if t0 is None or safeboot.alarm_pending(self.hal):
            return p.now
        released = p.inputs[i].first_at(False, t0, t0 + safeboot.hold_ms(p.cfg.kind, b))
        if released is not None:
            return max(released, p.now)
        self.state = "safe"  # the app never starts: the REPL is free
        self.next_at = None
        return None

    def replan(self):
        if self._plan is None or self.state not in ("wait", "deep"):
            return
        kind, end, mask, levels = self._plan
        old = self.next_at
        old_wake = self._wake
        if kind == "wait":
            self._plan_wait(end, mask, levels)
        else:
            self._plan_deep(end, mask, levels)
        if old is not None and self.next_at is not None and old < self.next_at:
            self.next_at = old  # a poke (or an earlier wake) stays
            self._wake = old_wake

    def plan_wait(self, ms, mask, levels):
        self.state = "wait"
        self._plan_wait(self.plat.now + max(0, min(ms, FOREVER)), mask, levels)

    def _plan_wait(self, end, mask, levels):
        p = self.plat
        self._plan = ("wait", end, mask, levels)
        t = end
        for i in range(N_INPUTS):
            if mask & (1 << i) and p.board.in_pin[i] >= 0:
                want = bool(levels & (1 << i))
                if p.inputs[i].level(p.now) != want:  # wait() wakes on a CHANGE to the level
                    w = p.inputs[i].first_at(want, p.now, end)
                    if w is not None and w < t:
                        t = w
        self.next_at = t

    def _deep(self, ms, mask, levels):
        self.app = None  # gone: the next boot rebuilds it from RTC memory and NVS
        self.state = "deep"
        self.sleeps += 1
        self._plan_deep(self.plat.now + max(0, min(ms, FOREVER)), mask, levels)

    def _plan_deep(self, end, mask, levels):
        p = self.plat
        self._plan = ("deep", end, mask, levels)
        t = end
        woke = 0
        for i in range(N_INPUTS):
            if mask & (1 << i) and p.board.in_pin[i] >= 0 and p.board.in_wake[i]:
                w = p.inputs[i].first_at(bool(levels & (1 << i)), p.now, end)
                if w is not None and w <= t:
                    woke = (woke if w == t else 0) | (1 << i)
                    t = w
        self.next_at = t
        self._wake = (WAKE_PIN if woke else WAKE_TIMER, woke)

    def wake(self):
        cause, woke = self._wake
        self._reset(cause, self.plat.now)
        self.wake_inputs = woke


class World:
    def __init__(self, medium=None, t0=0):
        self.medium = medium
        self.now = t0
        self.devices = []

    def add(self, plat, power_on=True):
        plat.now = self.now
        d = SimDevice(plat, self)
        d._acc_at = self.now
        self.devices.append(d)
        if power_on:
            d.power_on()
        return d

    def _set_now(self, t):
        self.now = t
        for d in self.devices:
            d.plat.now = t

    def run_until(self, t_end, max_steps=2000000):
        steps = 0
        while True:
            tm = self.medium.poll(self.now) if self.medium is not None else None
            t = tm
            for d in self.devices:
                if d.next_at is not None and (t is None or d.next_at < t):
                    t = d.next_at
            if t is None or t > t_end:
                self._set_now(t_end)
                for d in self.devices:
                    d.account()
                return
            if t > self.now:
                self._set_now(t)
            for d in self.devices:
                if d.next_at is not None and d.next_at <= self.now:
                    d.next_at = None
                    if d.state == "deep":
                        d.account()
                        d.wake()
                    else:
                        d.run()
            steps += 1
            if steps > max_steps:
                raise RuntimeError("simulation did not settle by t=%d" % self.now)

    def run_for(self, ms):
        self.run_until(self.now + ms)
