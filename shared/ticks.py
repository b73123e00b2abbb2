# Wrap-safe millisecond tick arithmetic, identical to MicroPython's
# time.ticks_add / ticks_diff on ESP32, as pure integer maths so the same code
# gives the same answers on CPython and never reads a clock itself.
#
# ESP32 ticks wrap at 2**30 (MICROPY_PY_TIME_TICKS_PERIOD = small-int range on
# a 32-bit port), so every tick value is in [0, 2**30) and every difference is
# in [-2**29, 2**29). A small int on a 32-bit MicroPython holds [-2**30, 2**30),
# so `t + delta` or `(x + _HALF) & _MASK` can overflow into a heap-allocated big
# int: the fast paths below keep every intermediate inside the small-int range.
from shared.compat import const

PERIOD = const(0x40000000)  # 2**30, ESP32 ticks_ms period
_MASK = const(0x3FFFFFFF)  # PERIOD - 1
_HALF = const(0x20000000)  # PERIOD // 2: largest distance told apart reliably
MAX_DIFF = const(0x1FFFFFFF)  # largest positive ticks_diff (about 6.2 days in ms)


def ticks_add(t, delta):
    """t + delta on the tick circle (t a tick value, |delta| < 2**29)."""
    if 0 <= t <= _MASK:
        if 0 <= delta < _HALF:
            r = t - (_MASK - delta) - 1  # t + delta - PERIOD, never above the small-int range
            return r if r >= 0 else r + _MASK + 1
        if -_HALF <= delta < 0:
            r = t + delta
            return r if r >= 0 else r + _MASK + 1
    return (t + delta) & _MASK  # out-of-contract inputs: still right, may allocate


def ticks_diff(a, b):
    """Signed distance a - b on the tick circle, in [-2**29, 2**29)."""
    if 0 <= a <= _MASK and 0 <= b <= _MASK:
        d = a - b
        if d >= _HALF:
            return d - _MASK - 1
        if d < -_HALF:
            return d + _MASK + 1
        return d
    return ((a - b + _HALF) & _MASK) - _HALF


def ticks_reached(now, deadline):
    """True once `now` is at or past `deadline` (within half a period)."""
    return ticks_diff(now, deadline) >= 0


def wrap(t):
    """Bring any integer onto the tick circle (for tests and simulations)."""
    return t & _MASK
