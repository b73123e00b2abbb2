"""The ESP32 side of the hardware layer: machine, esp32, bluetooth.

Same surface as firmware/hal/sim.py (see firmware/hal/__init__.py). Choices
that only real hardware can confirm are marked HW-CHECK and listed in
docs/device-behaviour.md.

Radio: the low-level bluetooth.BLE API (aioble is not frozen into the
official firmware). Connectable legacy adverts carry the frame; a GATT server
with the carebeacon service has one writable characteristic; the write IRQ
copies the acknowledgement into a preallocated ring, the app takes it from
there. BLE is switched on only while there is something to send: with BLE up
the loop idles in 20 ms slices instead of light sleep (NimBLE and MicroPython
light sleep are not known to coexist; HW-CHECK).

RTC memory layout (2048 B): "HW" | saved ticks u32 | saved wall ms u48 |
wake pin | wake level | payload length u16 | payload (the app snapshot).
"""

import time

import bluetooth
import esp32
import machine
from micropython import const

from firmware.hal import (
    N_INPUTS,
    WAKE_OTHER,
    WAKE_PIN,
    WAKE_POWER_ON,
    WAKE_SOFT,
    WAKE_TIMER,
    WAKE_WATCHDOG,
    Clock,
)
from firmware.hal.mpu6886 import Mpu6886

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_GPIO_WAKE = const(7)  # ESP_SLEEP_WAKEUP_GPIO (esp_sleep.h); MicroPython has no constant for it
_HDR = const(16)
_RTC_MAX = const(2048)
_ACK_RING = const(4)
_ACK_MAX = const(32)  # GATT buffer: longer than an acknowledgement, so a wrong length is seen
_IDLE_SLICE_MS = const(20)
_LIGHT_MAX_MS = const(5000)  # keep every sleep well inside the watchdog timeout
_SERVICE = bluetooth.UUID("ac159b7a-7476-4193-ac7d-9e0b08be16a2")  # docs/protocol.md
_ACK_CHAR = bluetooth.UUID("ce565160-994a-43fe-8beb-80aae4f11aa5")
_TONE_HZ = (0, 1000, 2000, 3000)  # firmware.feedback.TONE_HZ
_PULLS = {"up": machine.Pin.PULL_UP, "down": machine.Pin.PULL_DOWN}


class Radio:
    def __init__(self):
        self._ble = None
        self._handle: object = None
        self._conn = -1
        self.is_on = False
        self.advertising = False
        self.connected = False
        self.event = False  # set by the IRQ: wait() returns early
        self._ring = [bytearray(_ACK_MAX) for _ in range(_ACK_RING)]
        self._len = [0] * _ACK_RING
        self._r = 0
        self._w = 0

    def on(self):
        if self.is_on:
            return
        ble = bluetooth.BLE()
        ble.active(True)  # ~200 ms on a C3: the caller feeds the watchdog around it
        ble.irq(self._irq)
        svc = (_SERVICE, ((_ACK_CHAR, bluetooth.FLAG_WRITE),))
        ((h,),) = ble.gatts_register_services((svc,))
        ble.gatts_set_buffer(h, _ACK_MAX)
        self._ble = ble
        self._handle = h
        self.is_on = True

    def off(self):
        if self._ble is not None:
            self._ble.active(False)
        self.is_on = False
        self.advertising = False
        self.connected = False
        self._conn = -1

    def advertise(self, adv, interval_us, connectable):
        ble = self._ble
        if ble is None:
            raise OSError("radio off")
        ble.gap_advertise(interval_us, adv, connectable=connectable)
        self.advertising = True

    def stop(self):
        if self._ble is not None and self.advertising:
            self._ble.gap_advertise(None)  # docs: an interval of None stops advertising
        self.advertising = False

    def disconnect(self):
        if self._ble is not None and self._conn >= 0:
            self._ble.gap_disconnect(self._conn)

    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            self._conn = data[0]
            self.connected = True
            self.advertising = False  # NimBLE stops advertising on a connection
        elif event == _IRQ_CENTRAL_DISCONNECT:
            self._conn = -1
            self.connected = False
        elif event == _IRQ_GATTS_WRITE and data[1] == self._handle and self._ble is not None:
            v = self._ble.gatts_read(self._handle)
            nxt = (self._w + 1) % _ACK_RING
            if nxt != self._r:  # full: drop; the hub writes again on the next retry
                n = len(v) if len(v) <= _ACK_MAX else _ACK_MAX
                self._ring[self._w][:n] = v[:n]
                self._len[self._w] = len(v)
                self._w = nxt
        self.event = True

    def take_ack(self, buf):
        if self._r == self._w:
            return 0
        n = self._len[self._r]
        src = self._ring[self._r]
        m = n if n <= len(buf) else len(buf)
        for k in range(m):
            buf[k] = src[k]
        self._r = (self._r + 1) % _ACK_RING
        return n


class Esp32Hal:
    def __init__(self, board, reset_cause, wake_reason, verbose=False):
        self.board = board
        self.verbose = verbose
        self.wdt = None
        self.radio = Radio()
        self.clock = Clock()
        self._mem = bytearray(_RTC_MAX)
        self._pins: list = [None] * N_INPUTS
        for i in range(N_INPUTS):
            n = board.in_pin[i]
            if n >= 0:
                pull = _PULLS.get(board.in_pull[i])  # None: no pull resistor (an external one)
                p = machine.Pin(n, machine.Pin.IN, pull)  # type: ignore[arg-type]  # stub: None = no pull
                p.init(hold=False)  # type: ignore[call-arg]  # stub: ESP32 Pin takes hold= (quickref)
                self._pins[i] = p
        self._led = self._out(board.led_pin, 1 - board.led_active)
        self._vib = self._out(board.vib_pin, 1 - board.vib_active)
        self._pwm = None
        if board.hold_pin >= 0:  # M5StickC Plus2: the power latch, within 100 ms of power-up
            machine.Pin(board.hold_pin, machine.Pin.OUT, value=board.hold_level)
        for pin, level in board.set_pins:
            machine.Pin(pin, machine.Pin.OUT, value=level)
        self._adc = None
        if board.bat_pin >= 0:
            self._adc = machine.ADC(machine.Pin(board.bat_pin), atten=machine.ADC.ATTN_11DB)
        self._charge = None
        if board.charge_pin >= 0:
            self._charge = machine.Pin(board.charge_pin, machine.Pin.IN)
        self._imu = Mpu6886(board) if board.imu == "mpu6886" else None
        self.wake_cause, self.wake_inputs = self._latch(reset_cause, wake_reason)
        self.boot_ticks = self.clock.now(0)  # ticks_ms() counts from the reset

    def _out(self, n, level):
        return machine.Pin(n, machine.Pin.OUT, value=level) if n >= 0 else None

    def _latch(self, reset_cause, wake_reason):
        mem = machine.RTC().memory()
        hdr = len(mem) >= _HDR and mem[0] == 0x48 and mem[1] == 0x57
        if hdr:
            self._mem[: len(mem)] = mem
        if reset_cause == machine.DEEPSLEEP_RESET:
            if hdr:
                self._resume_clock()
            if wake_reason == machine.TIMER_WAKE:
                return WAKE_TIMER, 0
            if wake_reason == machine.EXT0_WAKE or wake_reason == _GPIO_WAKE:
                mask = 0
                for i in range(N_INPUTS):
                    if hdr and self.board.in_pin[i] == self._mem[12]:
                        mask |= 1 << i
                return WAKE_PIN, mask
            return WAKE_OTHER, 0
        # Any other reset: an input held right now is a press to keep (latched). Also after a
        # soft reset (machine.reset(): the firmware's own after five errors) or a watchdog or
        # panic reset: safe boot then waits for the release, and a press not latched was lost.
        mask = 0
        for i in range(N_INPUTS):
            if self._pins[i] is not None and self.input(i):
                mask |= 1 << i
        if reset_cause == machine.SOFT_RESET:
            return WAKE_SOFT, mask
        if reset_cause == machine.WDT_RESET:
            return WAKE_WATCHDOG, mask
        return WAKE_POWER_ON, mask

    def _wall_ms(self):
        return time.time_ns() // 1000000  # the RTC keeps counting through deep sleep (HW-CHECK)

    def _resume_clock(self):
        m = self._mem
        saved = (m[2] << 24) | (m[3] << 16) | (m[4] << 8) | m[5]
        wall = 0
        for k in range(6):
            wall = (wall << 8) | m[6 + k]
        self.clock.resume(time.ticks_ms(), saved, wall, self._wall_ms() & 0xFFFFFFFFFFFF)

    # -- the interface -------------------------------------------------------------
    def ticks_ms(self):
        return self.clock.now(time.ticks_ms())

    def input(self, i):
        p = self._pins[i]
        return p is not None and p.value() == self.board.in_active[i]

    def led(self, on):
        if self._led is not None:
            self._led.value(self.board.led_active if on else 1 - self.board.led_active)

    def vibrate(self, on):
        if self._vib is not None:
            self._vib.value(self.board.vib_active if on else 1 - self.board.vib_active)

    def tone(self, t):
        if self.board.buzzer_pin < 0:
            return
        if self._pwm is None:
            self._pwm = machine.PWM(machine.Pin(self.board.buzzer_pin), freq=2000, duty_u16=0)
        if t:
            self._pwm.freq(_TONE_HZ[t])
            self._pwm.duty_u16(32768)
        else:
            self._pwm.duty_u16(0)

    def battery_mv(self):
        if self._adc is None:
            return 0
        return self._adc.read_uv() // 1000 * self.board.bat_mul // 1000

    def external_power(self):
        if self.board.power == "usb":
            return True
        c = self._charge
        return c is not None and c.value() == self.board.charge_active

    def imu_start(self, rate_hz):
        return self._imu is not None and self._imu.start(rate_hz)

    def imu_read(self, buf):
        if self._imu is None:
            return 0
        try:
            return self._imu.read(buf)
        except OSError:
            return -1

    def nvs_get(self, key, default):
        try:
            return esp32.NVS("carebeacon").get_i32(key)
        except OSError:  # ESP_ERR_NVS_NOT_FOUND
            return default

    def nvs_set(self, key, value):
        n = esp32.NVS("carebeacon")
        n.set_i32(key, value)
        n.commit()  # durable only now (esp32.NVS docs)

    def nvs_get_blob(self, key, buf):
        try:
            return esp32.NVS("carebeacon").get_blob(key, buf)
        except OSError:  # not found, or longer than buf
            return 0

    def nvs_set_blob(self, key, buf, n):
        nv = esp32.NVS("carebeacon")
        # One key is all-or-nothing: ESP-IDF NVS writes the new entry before it erases the
        # old one, so a power cut leaves one or the other (ESP-IDF "Non-Volatile Storage
        # Library", Security, Tampering, and Robustness).
        nv.set_blob(key, memoryview(buf)[:n])
        nv.commit()

    def rtc_read(self, buf):
        m = self._mem
        if m[0] != 0x48 or m[1] != 0x57:
            return 0
        n = (m[14] << 8) | m[15]
        n = n if n <= len(buf) and n <= _RTC_MAX - _HDR else 0
        buf[:n] = m[_HDR: _HDR + n]
        return n

    def rtc_write(self, buf, n):
        m = self._mem
        m[0] = 0x48  # "HW"
        m[1] = 0x57
        m[14] = n >> 8
        m[15] = n & 0xFF
        m[_HDR: _HDR + n] = buf[:n]
        machine.RTC().memory(m[: _HDR + n])

    def feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def log(self, msg):
        if self.verbose:
            print("carebeacon:", msg)

    def trace(self, what, value):
        if self.verbose:
            print("carebeacon:", what, value)

    def _woke(self, mask, levels, start):
        for i in range(N_INPUTS):
            if mask & (1 << i):
                want = levels & (1 << i) != 0
                if self.input(i) == want and start & (1 << i) == 0:
                    return True
        return False

    def _arm(self, mask, levels):
        """Wake sources for light and deep sleep: ext0 (ESP32, S3) or wake_on_gpio (C3)."""
        b = self.board
        for i in range(N_INPUTS):
            p = self._pins[i]
            if mask & (1 << i) and p is not None and b.in_wake[i]:
                active = levels & (1 << i) != 0
                level = b.in_active[i] if active else 1 - b.in_active[i]
                high = esp32.WAKEUP_ANY_HIGH if level else esp32.WAKEUP_ALL_LOW
                if b.wake == "ext0":
                    esp32.wake_on_ext0(p, high)
                else:
                    esp32.wake_on_gpio((p,), high)
                return i, level
        return -1, 0

    def wait(self, ms, mask, levels):
        """Light sleep (radio off) or idle slices (radio on); back early on a change or a write."""
        start = 0
        for i in range(N_INPUTS):
            if mask & (1 << i) and self.input(i) == (levels & (1 << i) != 0):
                start |= 1 << i  # already at its level: only a change counts
        end = time.ticks_add(time.ticks_ms(), ms)
        radio = self.radio
        if not radio.is_on:
            self._arm(mask & ~start, levels)
        while True:
            rem = time.ticks_diff(end, time.ticks_ms())
            if rem <= 0 or radio.event or self._woke(mask, levels, start):
                radio.event = False
                return
            self.feed()
            if radio.is_on:
                time.sleep_ms(rem if rem < _IDLE_SLICE_MS else _IDLE_SLICE_MS)
            else:
                # Pin wake from light sleep: ext0 on ESP32; on the C3 it is capped by
                # light_poll_ms so a press is seen even if GPIO wake does not fire (HW-CHECK).
                cap = self.board.light_poll_ms if mask else _LIGHT_MAX_MS
                machine.lightsleep(rem if rem < cap else cap)

    def deep_sleep(self, ms, mask, levels):
        t = self.ticks_ms()
        w = self._wall_ms()
        m = self._mem
        m[0] = 0x48
        m[1] = 0x57
        m[2] = (t >> 24) & 0xFF
        m[3] = (t >> 16) & 0xFF
        m[4] = (t >> 8) & 0xFF
        m[5] = t & 0xFF
        for k in range(6):
            m[6 + k] = (w >> (8 * (5 - k))) & 0xFF
        self.radio.off()
        i, level = self._arm(mask, levels)
        m[12] = self.board.in_pin[i] if i >= 0 else 0xFF
        m[13] = level
        n = (m[14] << 8) | m[15]
        machine.RTC().memory(m[: _HDR + n])
        p = self._pins[i] if i >= 0 else None
        if p is not None:
            # Keep the wake input's pull through sleep (HW-CHECK leakage with the pull-up).
            p.init(hold=True)
        self.feed()
        machine.deepsleep(ms if ms > 0 else 1)
