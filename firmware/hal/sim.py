"""The simulated side of the hardware layer (CPython: tests, the demo, the rig).

Virtual time in integer ms. A SimPlatform is the physical device: what
survives deep sleep (RTC memory, the saved clock) and power loss (committed
NVS), its scripted inputs and IMU signal, and an energy account. A SimDevice
boots it the way the chip does: deep sleep DISCARDS the app object and the
next boot re-creates it from RTC memory and NVS with the latched wake cause,
so the tests prove that state really survives. World runs devices and one
radio medium on one virtual clock.

The medium (the air, and whatever hub listens) is pluggable and small:

    medium.advertise(device, adv_bytes, connectable)  a device (re)starts
        advertising adv_bytes (31-byte legacy payload; a new payload each attempt)
    medium.stop(device)                  it stopped advertising (or its radio went off)
    medium.poll(now_ms) -> int | None    do what is due at now_ms; return the
        absolute time of the next thing it will do (None: nothing planned)

and talks back through the device's radio:

    device.radio.connect() -> bool       a central connects (only while advertising
                                         connectable; advertising stops, as in NimBLE)
    device.radio.deliver_write(ack) -> bool   a GATT write of the acknowledgement
    device.radio.disconnect()

firmware/hal/simworld.py has the runner (SimDevice, World); firmware/hal/simhub.py
a hub double (LoopbackHub). A later issue plugs a simulated BLE medium / BlueZ
double in here.
"""

from firmware.hal import N_INPUTS, WAKE_POWER_ON, Clock, SleepExit
from shared.ticks import PERIOD

ENERGY_KEYS = ("boot", "awake", "light", "deep", "adv", "adv_fast", "conn", "led", "tone", "vib")


class Script:
    """An input's level over virtual time: a sorted list of (t_ms, level) changes."""

    def __init__(self, level=False):
        self.initial = level
        self.changes = []
        self.listener = None  # the SimDevice: re-plans its wake when the script changes

    def set(self, t_ms, level):
        self.changes.append((t_ms, bool(level)))
        self.changes.sort(key=lambda c: c[0])
        if self.listener is not None:
            self.listener.replan()

    def pulse(self, t_ms, length_ms):
        self.set(t_ms, True)
        self.set(t_ms + length_ms, False)

    def level(self, t_ms):
        v = self.initial
        for t, lv in self.changes:
            if t > t_ms:
                break
            v = lv
        return v

    def first_at(self, level, after, until):
        """Earliest t in [after, until] with the given level, or None."""
        if self.level(after) == level:
            return after
        for t, lv in self.changes:
            if after < t <= until and lv == level:
                return t
        return None


class SimPlatform:
    def __init__(self, board, cfg, app_class, name="dev", tick_origin=PERIOD - 90000):
        self.board = board
        self.cfg = cfg
        self.app_class = app_class
        self.name = name
        self.tick_origin = tick_origin  # hardware ticks at every reset: near the wrap on purpose
        self.now = 0
        self.nvs = {}
        self.nvs_fail = False
        self.nvs_writes = 0
        self.nvs_hook = None  # called with (key, value, "before"|"after") around a commit
        self.rtc = b""
        self.clock_saved = None  # (ticks, wall ms) stored by deep_sleep
        self.inputs = [Script() for _ in range(N_INPUTS)]
        self.imu_fn = None  # t_ms -> (x, y, z) milli-g; None: no sensor answers
        self.imu_rate = 0
        self.imu_k = 0
        self.imu_t0 = 0
        self.battery_mv = 3000
        self.ext_power = False
        self.log = []  # (t, message) from hal.log
        self.traces = []  # (t, what, value) from hal.trace
        self.outputs = []  # (t, "led"|"tone"|"vib", value)
        self.energy = {}
        for k in ENERGY_KEYS:
            self.energy[k] = 0
        self.counts = {"boots": 0, "steps": 0, "radio_on": 0, "imu_reads": 0, "samples": 0}


class SimRadio:
    def __init__(self, device):
        self.device = device
        self.is_on = False
        self.advertising = False
        self.connectable = False
        self.connected = False
        self.interval_us = 0
        self.adv = b""
        self._acks = []

    def on(self):
        if not self.is_on:
            self.is_on = True
            self.device.plat.counts["radio_on"] += 1

    def off(self):
        self.stop()
        self.connected = False
        self.is_on = False
        self._acks = []

    def advertise(self, adv, interval_us, connectable):
        if not self.is_on:
            raise OSError("radio off")
        self.device.account()
        if adv is not None:
            self.adv = bytes(adv)
        self.interval_us = interval_us
        self.connectable = connectable
        self.advertising = True
        m = self.device.world.medium if self.device.world else None
        if m is not None:
            m.advertise(self.device, self.adv, connectable)

    def stop(self):
        if self.advertising:
            self.device.account()
            self.advertising = False
            m = self.device.world.medium if self.device.world else None
            if m is not None:
                m.stop(self.device)

    def take_ack(self, buf):
        if not self._acks:
            return 0
        data = self._acks.pop(0)
        n = min(len(data), len(buf))
        buf[:n] = data[:n]
        return len(data)

    def disconnect(self):
        if self.connected:
            self.device.account()
            self.connected = False
            self.device.poke()

    # -- called by the medium --------------------------------------------------
    def connect(self):
        if not (self.is_on and self.advertising and self.connectable) or self.connected:
            return False
        self.stop()
        self.device.account()
        self.connected = True
        return True

    def deliver_write(self, data):
        if not (self.is_on and self.connected):
            return False
        if len(self._acks) < 4:  # the esp32 side keeps a ring of 4
            self._acks.append(bytes(data))
        self.device.poke()
        return True


class SimHal:
    def __init__(self, device, cause, wake_inputs):
        plat = device.plat
        self.device = device
        self.plat = plat
        self.board = plat.board
        self.wake_cause = cause
        self.wake_inputs = wake_inputs
        self.radio = device.radio
        self._boot_at = device.reset_at
        self.clock = Clock()
        if cause != WAKE_POWER_ON and plat.clock_saved is not None:
            saved_ticks, saved_wall = plat.clock_saved
            self.clock.resume(self._hw(), saved_ticks, saved_wall, plat.now)
        plat.clock_saved = None  # used once, like the esp32 side's RTC header
        # Continuous tick of the reset itself (hardware ticks start at the reset).
        self.boot_ticks = self.clock.now(plat.tick_origin)

    def _hw(self):
        return (self.plat.tick_origin + self.plat.now - self._boot_at) % PERIOD

    def ticks_ms(self):
        return self.clock.now(self._hw())

    def input(self, i):
        return self.plat.board.in_pin[i] >= 0 and self.plat.inputs[i].level(self.plat.now)

    def _output(self, what, value):
        self.device.account()
        self.device.out[what] = value
        self.plat.outputs.append((self.plat.now, what, value))

    def led(self, on):
        self._output("led", bool(on))

    def tone(self, t):
        self._output("tone", t)

    def vibrate(self, on):
        self._output("vib", bool(on))

    def battery_mv(self):
        return self.plat.battery_mv if self.board.bat_pin >= 0 else 0

    def external_power(self):
        return self.board.power == "usb" or self.plat.ext_power

    def imu_start(self, rate_hz):
        p = self.plat
        if p.imu_fn is None:
            return False
        p.imu_rate = rate_hz
        p.imu_t0 = p.now
        p.imu_k = 1
        return True

    def imu_read(self, buf):
        p = self.plat
        if p.imu_fn is None or not p.imu_rate:
            return 0
        p.counts["imu_reads"] += 1
        n = 0
        cap = len(buf) // 3
        while True:
            t = p.imu_t0 + p.imu_k * 1000 // p.imu_rate
            if t > p.now:
                break
            if n >= cap:  # the FIFO filled up: the hardware drops samples, we report a hole
                p.imu_k = (p.now - p.imu_t0) * p.imu_rate // 1000 + 1
                return -1
            x, y, z = p.imu_fn(t)
            buf[3 * n] = x
            buf[3 * n + 1] = y
            buf[3 * n + 2] = z
            n += 1
            p.imu_k += 1
        p.counts["samples"] += n
        return n

    def nvs_get(self, key, default):
        return self.plat.nvs.get(key, default)

    def nvs_set(self, key, value):
        p = self.plat
        if p.nvs_fail:
            raise OSError("NVS write failed (simulated)")
        if p.nvs_hook:
            p.nvs_hook(key, value, "before")
        p.nvs[key] = int(value)
        p.nvs_writes += 1
        if p.nvs_hook:
            p.nvs_hook(key, value, "after")

    def nvs_get_blob(self, key, buf):
        v = self.plat.nvs.get(key)
        if not isinstance(v, bytes) or len(v) > len(buf):
            return 0  # absent, an integer, or longer than buf: as the ESP32 HAL
        buf[: len(v)] = v
        return len(v)

    def nvs_set_blob(self, key, buf, n):
        p = self.plat
        if p.nvs_fail:
            raise OSError("NVS write failed (simulated)")
        v = bytes(buf[:n])
        if p.nvs_hook:
            p.nvs_hook(key, v, "before")
        p.nvs[key] = v  # one key: the old or the new value survives, never a mix
        p.nvs_writes += 1
        if p.nvs_hook:
            p.nvs_hook(key, v, "after")

    def rtc_read(self, buf):
        data = self.plat.rtc
        buf[: len(data)] = data
        return len(data)

    def rtc_write(self, buf, n):
        self.plat.rtc = bytes(buf[:n])

    def feed(self):
        pass

    def log(self, msg):
        self.plat.log.append((self.plat.now, msg))

    def trace(self, what, value):
        self.plat.traces.append((self.plat.now, what, value))

    def wait(self, ms, wake_mask, wake_levels):
        self.device.plan_wait(ms, wake_mask, wake_levels)

    def deep_sleep(self, ms, wake_mask, wake_levels):
        self.plat.clock_saved = (self.ticks_ms(), self.plat.now)
        self.radio.off()
        raise SleepExit(ms, wake_mask, wake_levels)


class PowerLoss(BaseException):
    """Raised from an nvs_hook to cut the power in the middle of a step."""
