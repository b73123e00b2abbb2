"""Board descriptions: boards/<name>.json, validated before anything is driven.

A board file says which chip, which pins do what, how the chip wakes, what
feedback hardware there is, how the battery is measured and which sensor sits
on which bus. Every problem raises BoardError with a message naming the file
and the key, e.g.

    boards/esp32c3-supermini-button.json: inputs.button.pin: GPIO9 cannot wake
    an ESP32-C3 from deep sleep (only GPIO0-GPIO5, esp-idf soc_caps.h)

so a wrong file is caught on the serial console at boot, never a silent hang.
Only json and plain dicts: the same code runs on the device and in the sim.
"""

import json

from firmware.hal import INPUT_ROLES, N_INPUTS

CHIPS = ("esp32", "esp32c3", "esp32s3")
KINDS = ("button", "pir", "bracelet")
CHEMISTRIES = ("alkaline", "lithium-ion")
IMUS = ("mpu6886",)

# Pins per chip (datasheets: ESP32 v4.x ch. 2, ESP32-C3 v1.x ch. 2, ESP32-S3 v1.x ch. 2).
_VALID = {
    "esp32": tuple(range(0, 20)) + (21, 22, 23, 25, 26, 27) + tuple(range(32, 40)),
    "esp32c3": tuple(range(0, 22)),
    "esp32s3": tuple(range(0, 22)) + tuple(range(26, 49)),
}
_FLASH = {  # wired to the SPI flash / PSRAM in the modules: never touch
    "esp32": (6, 7, 8, 9, 10, 11),
    "esp32c3": (12, 13, 14, 15, 16, 17),
    "esp32s3": (26, 27, 28, 29, 30, 31, 32),
}
_USB = {"esp32": (), "esp32c3": (18, 19), "esp32s3": (19, 20)}  # USB serial: the REPL
_INPUT_ONLY = {"esp32": (34, 35, 36, 37, 38, 39), "esp32c3": (), "esp32s3": ()}
# Pins that can wake the chip from deep sleep, and how.
_WAKE = {
    "esp32": ((0, 2, 4, 12, 13, 14, 15, 25, 26, 27) + tuple(range(32, 40)), "ext0"),
    "esp32c3": ((0, 1, 2, 3, 4, 5), "gpio"),  # RTC IO only (soc_caps.h); C3 has no ext0
    "esp32s3": (tuple(range(0, 22)), "ext0"),
}
_WAKE_WHY = {
    "esp32": "only RTC GPIOs (0, 2, 4, 12-15, 25-27, 32-39) drive ext0",
    "esp32c3": "only GPIO0-GPIO5, esp-idf soc_caps.h",
    "esp32s3": "only RTC GPIOs 0-21 drive ext0",
}
_ADC1 = {"esp32": tuple(range(32, 40)), "esp32c3": (0, 1, 2, 3, 4), "esp32s3": tuple(range(1, 11))}
_CHIP_NAME = {"esp32": "ESP32", "esp32c3": "ESP32-C3", "esp32s3": "ESP32-S3"}


class BoardError(ValueError):
    pass


class Board:
    """A validated board file; plain attributes, pins as ints (-1 = not fitted)."""

    def __init__(self):
        self.name = ""
        self.path = ""
        self.chip = ""
        self.kinds: tuple = ()
        self.wake = ""  # "ext0" or "gpio"
        self.in_pin = [-1] * N_INPUTS
        self.in_active = [0] * N_INPUTS  # electrical level when active
        self.in_pull = [""] * N_INPUTS  # "up", "down" or ""
        self.in_wake = [False] * N_INPUTS
        self.safe_boot_input = 0
        self.safe_boot_window_ms = 0
        self.led_pin = -1
        self.led_active = 1
        self.buzzer_pin = -1
        self.vib_pin = -1
        self.vib_active = 1
        self.power = "battery"  # or "usb"
        self.bat_pin = -1
        self.bat_mul = 1000  # battery mV = pin mV * bat_mul / 1000 (divider)
        self.chemistry = ""
        self.cells = 0
        self.charge_pin = -1
        self.charge_active = 0
        self.imu = ""
        self.imu_sda = -1
        self.imu_scl = -1
        self.imu_addr = 0
        self.imu_freq = 400000
        self.hold_pin = -1
        self.hold_level = 1
        self.set_pins: list = []  # (pin, level) driven at boot: backlights off, rails on
        self.light_poll_ms = 250
        self.boot_ms = 600
        self.energy = {}  # currents with their sources, for bench/energy_budget.py

    def has_input(self, i):
        return self.in_pin[i] >= 0


def _err(path, key, msg):
    return BoardError("%s: %s: %s" % (path, key, msg))


def _get(d, path, key, kind, default=None, required=False):
    if key not in d:
        if required:
            raise _err(path, key, "missing")
        return default
    v = d[key]
    if kind == "int" and (type(v) is not int):
        raise _err(path, key, "must be an integer, got %r" % (v,))
    if kind == "str" and type(v) is not str:
        raise _err(path, key, "must be a string, got %r" % (v,))
    if kind == "bool" and type(v) is not bool:
        raise _err(path, key, "must be true or false, got %r" % (v,))
    if kind == "obj" and v is not None and type(v) is not dict:
        raise _err(path, key, "must be an object or null")
    return v


def _pin(b, path, key, v, used, output=False):
    chip = b.chip
    if type(v) is not int:
        raise _err(path, key, "must be a GPIO number, got %r" % (v,))
    if v not in _VALID[chip]:
        raise _err(path, key, "GPIO%d does not exist on the %s" % (v, _CHIP_NAME[chip]))
    if v in _FLASH[chip]:
        raise _err(path, key, "GPIO%d is wired to the SPI flash on %s modules"
                   % (v, _CHIP_NAME[chip]))
    if v in _USB[chip]:
        raise _err(path, key, "GPIO%d is the USB serial port (the REPL)" % v)
    if output and v in _INPUT_ONLY[chip]:
        raise _err(path, key, "GPIO%d is input-only on the %s" % (v, _CHIP_NAME[chip]))
    if v in used:
        raise _err(path, key, "GPIO%d is already used by %s" % (v, used[v]))
    used[v] = key
    return v


def _level(path, key, v):
    if v not in (0, 1) or type(v) is not int:
        raise _err(path, key, "must be 0 or 1, got %r" % (v,))
    return v


def parse(d, path="board"):
    """Validate a decoded board file (dict) and return a Board."""
    if type(d) is not dict:
        raise BoardError("%s: the file must hold one JSON object" % path)
    b = Board()
    b.path = path
    b.name = _get(d, path, "name", "str", required=True)
    chip = _get(d, path, "chip", "str", required=True)
    if chip not in CHIPS:
        raise _err(path, "chip", "%r is not one of %s" % (chip, ", ".join(CHIPS)))
    b.chip = chip
    kinds = d.get("kinds")
    if type(kinds) is not list or not kinds or any(k not in KINDS for k in kinds):
        raise _err(path, "kinds", "must be a non-empty list of %s" % ", ".join(KINDS))
    b.kinds = tuple(kinds)
    wake = _get(d, path, "wake", "str", required=True)
    wake_pins, chip_wake = _WAKE[chip]
    if wake != chip_wake:
        raise _err(path, "wake", "%r does not fit the %s: it wakes by %r%s" % (
            wake, _CHIP_NAME[chip], chip_wake,
            " (the C3 has no ext0: esp32.wake_on_gpio)" if chip == "esp32c3" else ""))
    b.wake = wake
    used: dict = {}
    inputs = _get(d, path, "inputs", "obj", required=True)
    if not inputs:
        raise _err(path, "inputs", "at least one input is needed")
    for role in inputs:
        if role not in INPUT_ROLES:
            raise _err(path, "inputs." + role, "unknown role (known: %s)" % ", ".join(INPUT_ROLES))
        i = INPUT_ROLES.index(role)
        spec = inputs[role]
        key = "inputs." + role
        if type(spec) is not dict:
            raise _err(path, key, "must be an object")
        b.in_pin[i] = _pin(b, path, key + ".pin", spec.get("pin"), used)
        b.in_active[i] = _level(path, key + ".active", spec.get("active"))
        pull = spec.get("pull", "")
        if pull not in ("up", "down", ""):
            raise _err(path, key + ".pull", 'must be "up", "down" or ""')
        if pull and b.in_pin[i] in _INPUT_ONLY[chip]:
            raise _err(path, key + ".pull", "GPIO%d has no internal pull resistor;"
                       " fit one and set \"\"" % b.in_pin[i])
        b.in_pull[i] = pull
        w = spec.get("wake", False)
        if type(w) is not bool:
            raise _err(path, key + ".wake", "must be true or false")
        if w and b.in_pin[i] not in wake_pins:
            raise _err(path, key + ".pin", "GPIO%d cannot wake an %s from deep sleep (%s)" % (
                b.in_pin[i], _CHIP_NAME[chip], _WAKE_WHY[chip]))
        b.in_wake[i] = w
    need = {"button": "button", "pir": "pir", "bracelet": "button"}
    for k in b.kinds:
        if not b.has_input(INPUT_ROLES.index(need[k])):
            raise _err(path, "inputs", "a %s board needs inputs.%s" % (k, need[k]))
    if b.wake == "ext0" and sum(1 for w in b.in_wake if w) > 1:
        raise _err(path, "inputs", "ext0 wakes on ONE pin; mark only one input \"wake\": true")
    sb = _get(d, path, "safe_boot", "obj", required=True)
    role = sb.get("input") if sb else None
    if role not in INPUT_ROLES or not b.has_input(INPUT_ROLES.index(role)):
        raise _err(path, "safe_boot.input", "must name one of this board's inputs")
    b.safe_boot_input = INPUT_ROLES.index(role)
    w = sb.get("window_ms", 0)
    if type(w) is not int or not 0 <= w <= 5000:
        raise _err(path, "safe_boot.window_ms", "must be an integer 0..5000, got %r" % (w,))
    b.safe_boot_window_ms = w
    led = _get(d, path, "led", "obj", required=True)
    if led:
        b.led_pin = _pin(b, path, "led.pin", led.get("pin"), used, True)
        b.led_active = _level(path, "led.active", led.get("active"))
    buz = _get(d, path, "buzzer", "obj")
    if buz:
        b.buzzer_pin = _pin(b, path, "buzzer.pin", buz.get("pin"), used, True)
    vib = _get(d, path, "vibration", "obj")
    if vib:
        b.vib_pin = _pin(b, path, "vibration.pin", vib.get("pin"), used, True)
        b.vib_active = _level(path, "vibration.active", vib.get("active"))
    if b.led_pin < 0 and b.buzzer_pin < 0 and b.vib_pin < 0:
        raise _err(path, "led", "a device needs at least one of led, buzzer, vibration")
    power = _get(d, path, "power", "str", "battery")
    if power not in ("battery", "usb"):
        raise _err(path, "power", 'must be "battery" or "usb"')
    b.power = power
    bat = _get(d, path, "battery", "obj")
    if power == "battery" and not bat:
        raise _err(path, "battery", "a battery-powered board must say how to measure it")
    if bat:
        b.bat_pin = _pin(b, path, "battery.pin", bat.get("pin"), used)
        if b.bat_pin not in _ADC1[chip]:
            raise _err(path, "battery.pin", "GPIO%d is not an ADC1 pin on the %s" % (
                b.bat_pin, _CHIP_NAME[chip]))
        mul = bat.get("multiplier_milli")
        if type(mul) is not int or not 1000 <= mul <= 10000:
            raise _err(path, "battery.multiplier_milli", "divider ratio x1000, 1000..10000")
        b.bat_mul = mul
        if bat.get("chemistry") not in CHEMISTRIES:
            raise _err(path, "battery.chemistry", "must be one of %s" % ", ".join(CHEMISTRIES))
        b.chemistry = bat["chemistry"]
        cells = bat.get("cells")
        if type(cells) is not int or not 1 <= cells <= 4:
            raise _err(path, "battery.cells", "must be 1..4")
        b.cells = cells
        cp = bat.get("charge_pin")
        if cp is not None:
            b.charge_pin = _pin(b, path, "battery.charge_pin", cp, used)
            b.charge_active = _level(path, "battery.charge_active", bat.get("charge_active"))
    imu = _get(d, path, "imu", "obj")
    if "bracelet" in b.kinds and not imu:
        raise _err(path, "imu", "a bracelet board needs an accelerometer")
    if imu:
        if imu.get("type") not in IMUS:
            raise _err(path, "imu.type", "must be one of %s" % ", ".join(IMUS))
        b.imu = imu["type"]
        b.imu_sda = _pin(b, path, "imu.sda", imu.get("sda"), used, True)
        b.imu_scl = _pin(b, path, "imu.scl", imu.get("scl"), used, True)
        a = imu.get("address")
        if type(a) is not int or not 0x08 <= a <= 0x77:
            raise _err(path, "imu.address", "must be a 7-bit I2C address (8..119)")
        b.imu_addr = a
        f = imu.get("freq", 400000)
        if type(f) is not int or not 10000 <= f <= 1000000:
            raise _err(path, "imu.freq", "must be 10000..1000000 Hz")
        b.imu_freq = f
    hold = _get(d, path, "power_hold", "obj")
    if hold:
        b.hold_pin = _pin(b, path, "power_hold.pin", hold.get("pin"), used, True)
        b.hold_level = _level(path, "power_hold.level", hold.get("level"))
    sets = d.get("set_pins", [])
    if type(sets) is not list:
        raise _err(path, "set_pins", "must be a list of {pin, level}")
    for n, sp in enumerate(sets):
        key = "set_pins[%d]" % n
        if type(sp) is not dict:
            raise _err(path, key, "must be an object {pin, level}")
        b.set_pins.append((_pin(b, path, key + ".pin", sp.get("pin"), used, True),
                           _level(path, key + ".level", sp.get("level"))))
    b.light_poll_ms = _get(d, path, "light_poll_ms", "int", 250)
    if not 20 <= b.light_poll_ms <= 5000:
        raise _err(path, "light_poll_ms", "must be 20..5000")
    b.boot_ms = _get(d, path, "boot_ms", "int", 600)
    en = _get(d, path, "energy", "obj", required=True)
    for k in ("deep_sleep_ua", "light_sleep_ua", "awake_ma", "radio_ma", "sources"):
        if not en or k not in en:
            raise _err(path, "energy." + k, "missing (bench/energy_budget.py needs it)")
    b.energy = en
    return b


def load(path):
    """Read and validate a board file; BoardError names the file and the key."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise BoardError("%s: cannot read the board file (is it on the device?)" % path)
    try:
        d = json.loads(text)
    except ValueError as e:
        raise BoardError("%s: not valid JSON (%s)" % (path, e))
    b = parse(d, path)
    base = path.replace("\\", "/").split("/")[-1]
    if base != b.name + ".json":
        raise _err(path, "name", "%r does not match the file name %s" % (b.name, base))
    return b
