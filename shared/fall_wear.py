"""Worn / not worn and active seconds from the wrist accelerometer stream (shared/fall.py
re-exports it; sans-IO, integers only, no allocation per sample).

Wear -- worn / not worn from movement: each second in which any axis spans
more than ``move_mg`` (max - min) is an *active second*. No active second for
``not_worn_ms`` -> ``EV_NOT_WORN``; the next active second -> ``EV_WORN``.
A new Wear starts as worn (no event); ``active_s`` counts active seconds for
the caller's activity summaries (``take_active()`` reads and clears it). A
wrist at rest still twitches; a bracelet on a table does not, so the default
60 min without any movement above 40 mg (an MPU6886 at rest is ~5-10 mg of
noise) means not worn. Charging is handled by the caller (charging = not worn).

Event bits are distinct from FallDetector's (shared/fall.py) so callers can OR them.
"""

from shared.compat import const

EV_WORN = const(8)
EV_NOT_WORN = const(16)


def _check(name, value, lo, hi):
    if type(value) is not int or value < lo or value > hi:
        raise ValueError("%s must be an int in [%d, %d]" % (name, lo, hi))


class Wear:
    def __init__(self, rate_hz=50, move_mg=40, not_worn_ms=3600000):
        _check("rate_hz", rate_hz, 25, 200)
        _check("move_mg", move_mg, 5, 2000)
        _check("not_worn_ms", not_worn_ms, 60000, 86400000)
        self.rate_hz = rate_hz
        self.move_mg = move_mg
        self.not_worn_s = not_worn_ms // 1000
        self.worn = True
        self.still_s = 0  # seconds since the last active second (saturating)
        self.active_s = 0  # active seconds since take_active()
        self._k = 0
        self._lo_x = 0
        self._hi_x = 0
        self._lo_y = 0
        self._hi_y = 0
        self._lo_z = 0
        self._hi_z = 0

    def take_active(self):
        n = self.active_s
        self.active_s = 0
        return n

    def update(self, x, y, z):
        if self._k == 0:
            self._lo_x = self._hi_x = x
            self._lo_y = self._hi_y = y
            self._lo_z = self._hi_z = z
        else:
            if x < self._lo_x:
                self._lo_x = x
            elif x > self._hi_x:
                self._hi_x = x
            if y < self._lo_y:
                self._lo_y = y
            elif y > self._hi_y:
                self._hi_y = y
            if z < self._lo_z:
                self._lo_z = z
            elif z > self._hi_z:
                self._hi_z = z
        self._k += 1
        if self._k < self.rate_hz:
            return 0
        self._k = 0
        m = self.move_mg
        moved = (
            self._hi_x - self._lo_x > m
            or self._hi_y - self._lo_y > m
            or self._hi_z - self._lo_z > m
        )
        if moved:
            self.still_s = 0
            self.active_s += 1
            if not self.worn:
                self.worn = True
                return EV_WORN
            return 0
        if self.still_s < 0x3FFFFFFF:
            self.still_s += 1
        if self.worn and self.still_s >= self.not_worn_s:
            self.worn = False
            return EV_NOT_WORN
        return 0
