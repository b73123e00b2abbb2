"""Device entry point: copied to /main.py on the board (with /firmware, /shared,
/boards and the provisioned /config.json next to it).

Boot order, and why:
1. Latch the reset cause and wake reason before anything slow: the press that
   woke the chip may be over before the radio is up.
2. Load /config.json and /boards/<board>.json. Any problem: a clear message on
   the serial console naming the file and the key, the LED blinks the config
   error pattern if the board file at least says where the LED is, and main.py
   ends at the REPL -- never a silent hang.
3. Safe boot (power-on or reset only, not deep-sleep wakes; firmware/safeboot.py):
   the board's safe-boot input held from power-up (or pressed within its
   window_ms, for BOOT buttons that cannot be held through reset) skips the
   app: 10 s where that input is the SOS button (button, bracelet), 3 s for a
   PIR board's BOOT button; never while NVS records an alarm still being sent
   (an elder holding the SOS button through a brown-out must not end up with an
   inert device). Five fast blinks, then the REPL is free for the installer.
   Released earlier, the press is kept and the app starts (it may be an SOS).
4. Watchdog on (30 s), then the app loop: step, then light sleep / idle or
   deep sleep as the app asks. Repeated exceptions reset the chip (a fresh
   start; a pending alarm comes back from NVS).
"""

import machine

_RESET = machine.reset_cause()
_WAKE = machine.wake_reason()

import sys  # noqa: E402  (after the latch on purpose)
import time  # noqa: E402

from firmware.hal import WAKE_POWER_ON, WAKE_SOFT  # noqa: E402

WDT_MS = 30000  # > BLE bring-up and the longest sleep slice (5 s), < a stuck minute
CONFIG = "/config.json"
BOARDS = "/boards/%s.json"


def say(msg):
    print("carebeacon: " + msg)


def _blink_error(board):
    if board is None or board.led_pin < 0:
        return
    led = machine.Pin(board.led_pin, machine.Pin.OUT)
    for _ in range(3):
        for on_ms in (600, 600, 600):
            led.value(board.led_active)
            time.sleep_ms(on_ms)
            led.value(1 - board.led_active)
            time.sleep_ms(200)
        time.sleep_ms(800)


def load():
    """(cfg, board) or None after telling the console what is wrong."""
    from firmware import board as boards, config as configs

    try:
        cfg = configs.load(CONFIG)
    except configs.ConfigError as e:
        say("CONFIG ERROR: %s" % e)
        return None
    path = BOARDS % cfg.board
    try:
        board = boards.load(path)
    except boards.BoardError as e:
        say("BOARD ERROR: %s" % e)
        return None
    if cfg.kind not in board.kinds:
        say("CONFIG ERROR: %s: kind: %r does not run on board %s (kinds: %s)" % (
            CONFIG, cfg.kind, board.name, ", ".join(board.kinds)))
        _blink_error(board)
        return None
    return cfg, board


def safe_boot(hal, kind):
    """True if the installer asks for the REPL (see docstring)."""
    if hal.wake_cause not in (WAKE_POWER_ON, WAKE_SOFT):
        return False
    b = hal.board
    i = b.safe_boot_input
    t0 = time.ticks_ms()
    while not hal.input(i):
        if time.ticks_diff(time.ticks_ms(), t0) >= b.safe_boot_window_ms:
            return False
        time.sleep_ms(10)
    from firmware import safeboot

    if safeboot.alarm_pending(hal):
        return False  # an alarm is still being sent: the app goes on, whatever is held
    hold_ms = safeboot.hold_ms(kind, b)
    hal.led(True)
    t1 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t1) < hold_ms:
        if not hal.input(i):
            hal.led(False)
            return False
        time.sleep_ms(10)
    for _ in range(5):
        hal.led(False)
        time.sleep_ms(50)
        hal.led(True)
        time.sleep_ms(50)
    say("SAFE BOOT: app skipped, REPL available. Reset to run the app.")
    return True


def make_app(kind, hal, cfg):
    if kind == "button":
        from firmware.apps.button import ButtonApp

        return ButtonApp(hal, cfg)
    if kind == "pir":
        from firmware.apps.pir import PirApp

        return PirApp(hal, cfg)
    from firmware.apps.bracelet import BraceletApp

    return BraceletApp(hal, cfg)


def main():
    loaded = load()
    if loaded is None:
        say("app not started; fix the file above and reset")
        return
    cfg, board = loaded
    from firmware.hal.esp32 import Esp32Hal

    hal = Esp32Hal(board, _RESET, _WAKE, cfg.log)
    if safe_boot(hal, cfg.kind):
        return
    from firmware.apps.common import loop_once

    app = make_app(cfg.kind, hal, cfg)
    hal.wdt = machine.WDT(timeout=WDT_MS)
    app.start(hal.ticks_ms())
    errors = 0
    while True:
        hal.feed()
        try:
            loop_once(hal, app)
            errors = 0
        except Exception as e:  # noqa: BLE001  (the loop must survive anything)
            sys.print_exception(e)
            errors += 1
            if errors >= 5:
                say("repeated errors: resetting")
                machine.reset()
            time.sleep_ms(100)


main()
