"""The hardware layer: what the apps may touch, with two sides.

``firmware/hal/esp32.py`` drives MicroPython's ``machine``, ``esp32`` and
``bluetooth``; ``firmware/hal/sim.py`` is the same surface on CPython for the
tests, the demo and the rig. The apps only see this interface (duck-typed, no
base class: a method call through a base class costs the same on MicroPython
and buys nothing):

    hal.board                 firmware.board.Board (validated board file)
    hal.wake_cause            WAKE_* latched at boot (before anything slow)
    hal.wake_inputs           bitmask of inputs seen at their wake level at boot
    hal.boot_ticks            the tick of the reset itself (dates a latched press)
    hal.ticks_ms()            ms ticks, wrapping at 2**30, CONTINUOUS across deep
                              sleep (see Clock): tick deadlines survive a sleep
    hal.input(i)              input IN_* is active (pressed / PIR high), bool
    hal.led(on) / hal.tone(t) / hal.vibrate(on)     feedback outputs (TONE_*)
    hal.battery_mv()          battery voltage in mV, 0 if the board has none
    hal.external_power()      running from USB / mains / a charger
    hal.imu_start(rate_hz)    start the accelerometer, False if it does not answer
    hal.imu_read(buf)         samples since the last read into buf (x, y, z
                              milli-g triples); returns the count, -1 on overflow
    hal.radio                 .on() .off() .is_on .advertise(adv, interval_us,
                              connectable) .stop() .advertising .connected
                              .take_ack(buf) -> n bytes (0 = none) .disconnect()
    hal.nvs_get(key, default) / hal.nvs_set(key, value)   durable i32 (committed)
    hal.nvs_get_blob(key, buf) -> n (0: none) / hal.nvs_set_blob(key, buf, n)
                              durable bytes; a write is atomic (old or new value)
    hal.rtc_read(buf) -> n / hal.rtc_write(buf, n)        survives deep sleep only
    hal.feed()                watchdog
    hal.wait(ms, wake_mask, wake_levels)   light sleep or idle; returns early on
                              an input reaching its wake level or an ack write
    hal.deep_sleep(ms, wake_mask, wake_levels)   never returns (sim: raises
                              SleepExit and the runner re-creates the app)
    hal.log(msg)
    hal.trace(what, value)    diagnostics (the pattern played, ...): sim records, esp32 prints
                              when the config asks for a log

Wake masks use input bits (1 << IN_*); wake_levels has the bit set when the
input should wake the device on becoming ACTIVE, clear for becoming inactive
(the HAL turns that into electrical levels with the board's polarity).
"""

from shared.compat import const
from shared.ticks import ticks_add, ticks_diff

# Inputs (board roles).
IN_BUTTON = const(0)  # the SOS button (bracelet: button A)
IN_PIR = const(1)  # PIR output
IN_BUTTON2 = const(2)  # a second button (bracelet: button B), optional
N_INPUTS = const(3)
INPUT_ROLES = ("button", "pir", "button2")  # board-file names, indexed by IN_*

# Why the device is running (latched at boot).
WAKE_POWER_ON = const(0)  # power-on or hard reset: RTC memory is invalid
WAKE_TIMER = const(1)  # deep-sleep timer
WAKE_PIN = const(2)  # deep-sleep wake pin (ext0 / gpio); see wake_inputs
WAKE_SOFT = const(3)  # soft reset (machine.reset, REPL ctrl-D): RTC memory kept
WAKE_WATCHDOG = const(4)  # watchdog or panic reset: RTC memory kept
WAKE_OTHER = const(5)

# Buzzer tones (frequencies in firmware.feedback).
TONE_OFF = const(0)
TONE_LOW = const(1)
TONE_MID = const(2)
TONE_HIGH = const(3)

# App step contract: step(now_ms) returns ms until it must run again (>= 0),
# or DEEP_SLEEP after it saved its state (then app.sleep_ms, app.wake_mask,
# app.wake_levels say how long and on what to wake).
DEEP_SLEEP = const(-1)
FOREVER = const(0x1FFFFFFF)  # "no deadline": the largest tick distance
# Safe boot: the safe-boot input held this long from power-up skips the app (REPL free).
SAFE_BOOT_HOLD_MS = const(3000)

_MASK = const(0x3FFFFFFF)


class SleepExit(Exception):
    """Raised by the sim's deep_sleep(): the app is gone, the runner re-creates it."""


class Clock:
    """Ticks continuous across deep sleep.

    Hardware ticks restart at every wake. Before deep sleep the HAL stores the
    current (continuous) tick and a wall-clock reading that keeps running
    through sleep (ESP32: the RTC; sim: virtual time); at wake the offset is
    rebuilt from how long the sleep really lasted. Deadlines kept as ticks in
    RTC memory (heartbeat, retries, PIR intervals) thus stay right.
    """

    def __init__(self):
        self.offset = 0

    def now(self, hw_ticks):
        return (hw_ticks + self.offset) & _MASK

    def resume(self, hw_ticks, saved_ticks, saved_wall_ms, wall_ms):
        slept = wall_ms - saved_wall_ms
        if slept < 0 or slept > 0x1FFFFFFF:  # clock went back or absurd: count no time
            slept = 0
        self.offset = ticks_diff(ticks_add(saved_ticks, slept), hw_ticks & _MASK)


def bit(i):
    return 1 << i
