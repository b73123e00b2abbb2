"""MicroPython, on the DUT of a rig only: markers and IMU injection around the firmware's HAL.

Deployed with hil/real/device/rig_main.py as the board's /main.py (the firmware's own
main.py goes to /carebeacon_main.py, unchanged). `install()` wraps
firmware.hal.esp32.Esp32Hal:

- boot and deep sleep print `carebeacon: rig boot <wake cause>` / `carebeacon: rig
  deep_sleep <ms>`, so the rig knows when a press will meet a sleeping chip;
- IMU injection: a console line `I x,y,z;x,y,z;...` (milli-g) queues samples; from the
  first such line on, imu_start() succeeds and imu_read() returns the queued samples
  instead of the MPU6886's FIFO (the rig streams 50 samples a second, hil/real/rig.py),
  and light sleep becomes a short idle so no console byte is lost while asleep. A triple
  that is not three integers (a byte lost or garbled on the way) is skipped.

Light sleep is replaced in firmware/hal/esp32.py's own `machine` name (a stand-in that
passes everything else to the real module): where `machine` is the built-in C module its
attributes cannot be assigned (AttributeError), so `machine.lightsleep = ...` would fail.

Untested on hardware here (no rig in CI): HW-CHECK before trusting a run. Tested offline
under MicroPython (tests/hil/test_real_rig_device.py) with stand-ins for the ESP32 HAL.
"""

import select
import sys
import time

import machine

_MAX = 256  # samples queued (5 s at 50 Hz)
_q = [0] * (3 * _MAX)
_state: dict = {"n": 0, "r": 0, "on": False, "line": ""}
_poll = select.poll()
_poll.register(sys.stdin, select.POLLIN)


def _feed(line):
    if not line.startswith("I "):
        return
    _state["on"] = True
    for triple in line[2:].split(";"):
        parts = triple.split(",")
        if len(parts) != 3 or _state["n"] >= _MAX:
            continue
        try:
            x, y, z = int(parts[0]), int(parts[1]), int(parts[2])
        except ValueError:
            continue
        w = (_state["r"] + _state["n"]) % _MAX
        _q[3 * w], _q[3 * w + 1], _q[3 * w + 2] = x, y, z
        _state["n"] += 1


def pump():
    """Read what the console has (never blocks)."""
    while _poll.poll(0):
        ch = sys.stdin.read(1)
        if ch == "\n":
            _feed(_state["line"])
            _state["line"] = ""
        elif len(_state["line"]) < 1200:
            _state["line"] += ch


class _Machine:
    """`machine` as firmware/hal/esp32.py sees it on a rig: lightsleep is the hooks'."""

    def __init__(self, lightsleep):
        self.lightsleep = lightsleep

    def __getattr__(self, name):
        return getattr(machine, name)


def install():
    from firmware.hal import esp32 as E

    hal = E.Esp32Hal
    orig_init, orig_sleep = hal.__init__, hal.deep_sleep
    orig_start, orig_read = hal.imu_start, hal.imu_read

    def init(self, board, reset_cause, wake_reason, verbose=False):
        orig_init(self, board, reset_cause, wake_reason, verbose)
        print("carebeacon: rig boot %d" % self.wake_cause)

    def deep_sleep(self, ms, mask, levels):
        print("carebeacon: rig deep_sleep %d" % ms)
        orig_sleep(self, ms, mask, levels)

    def imu_start(self, rate_hz):
        pump()
        return True if _state["on"] else orig_start(self, rate_hz)

    def imu_read(self, buf):
        pump()
        if not _state["on"]:
            return orig_read(self, buf)
        n = 0
        while _state["n"] and 3 * n + 2 < len(buf):
            r = _state["r"]
            buf[3 * n], buf[3 * n + 1], buf[3 * n + 2] = _q[3 * r], _q[3 * r + 1], _q[3 * r + 2]
            _state["r"] = (r + 1) % _MAX
            _state["n"] -= 1
            n += 1
        return n

    def lightsleep(ms=0):
        pump()
        if _state["on"]:
            time.sleep_ms(ms if ms < 20 else 20)
        else:
            machine.lightsleep(ms)

    hal.__init__, hal.deep_sleep = init, deep_sleep  # type: ignore[method-assign]
    hal.imu_start, hal.imu_read = imu_start, imu_read  # type: ignore[method-assign]
    E.machine = _Machine(lightsleep)  # type: ignore[assignment]  # see the docstring
