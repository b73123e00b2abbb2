# Wrap-safe millisecond tick arithmetic, identical to MicroPython's
# time.ticks_add / ticks_diff on ESP32, as pure integer maths so the same code
# gives the same answers on CPython and never reads a clock itself.
#
# ESP32 ticks wrap at 2**30 (MICROPY_PY_TIME_TICKS_PERIOD = small-int range on
# a 32-bit port), so every tick value is in [0, 2**30) and every difference is
# in [-2**29, 2**29): all of them stay small ints, no heap allocation.
from shared.compat import const

PERIOD = const(0x40000000)  # 2**30, ESP32 ticks_ms period
_MASK = const(0x3FFFFFFF)  # PERIOD - 1
_HALF = const(0x20000000)  # PERIOD // 2: largest distance told apart reliably
MAX_DIFF = const(0x1FFFFFFF)  # largest positive ticks_diff (about 6.2 days in ms)


def ticks_add(t, delta):
    """t + delta on the tick circle (delta may be negative, |delta| < 2**29)."""
    return (t + delta) & _MASK


def ticks_diff(a, b):
    """Signed distance a - b on the tick circle, in [-2**29, 2**29)."""
    return ((a - b + _HALF) & _MASK) - _HALF


def ticks_reached(now, deadline):
    """True once `now` is at or past `deadline` (within half a period)."""
    return ((now - deadline + _HALF) & _MASK) - _HALF >= 0


def wrap(t):
    """Bring any integer onto the tick circle (for tests and simulations)."""
    return t & _MASK
