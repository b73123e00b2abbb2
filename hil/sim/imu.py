"""The bracelet's accelerometer signal (milli-g, as the MPU6886 FIFO gives it to the app).

    wrist = Wrist()
    plat.imu_fn = wrist                 # firmware/hal/sim.py samples it at 50 Hz
    wrist.set(t, "rest")                # asleep: worn, nearly still
    wrist.fall(t)                       # free fall, impact, bounce, then lying on the floor

Modes: "active" (worn, arm moving: a ~150 mg gesture every few seconds), "rest" (worn,
asleep: still but for a turn-over now and then), "table" (taken off), "floor" (lying after
a fall: still, gravity along x instead of z), and the fall's own phases. The numbers follow
shared/fall.py's thresholds (impact >= 2.5 g, then ~1.5 s still with the gravity direction
turned > 45 degrees). Noise is a deterministic function of the sample time.
"""

from __future__ import annotations

import bisect


def _noise(t: int, amp: int) -> int:
    x = (t * 1103515245 + 12345) & 0x7FFFFFFF
    return (x >> 8) % (2 * amp + 1) - amp


class Wrist:
    def __init__(self, mode: str = "active"):
        self._t: list[int] = [-(2**62)]
        self._m: list[str] = [mode]

    def set(self, t: int, mode: str) -> Wrist:
        i = bisect.bisect_right(self._t, t)
        self._t.insert(i, t)
        self._m.insert(i, mode)
        return self

    def fall(self, t: int, after: str = "floor") -> Wrist:
        """A fall whose impact is at t; lying still afterwards (`after`)."""
        return (self.set(t - 400, "freefall").set(t, "impact").set(t + 60, "bounce")
                .set(t + 700, after))

    def mode(self, t: int) -> str:
        return self._m[bisect.bisect_right(self._t, t) - 1]

    def compact(self, before: int) -> None:
        """Forget changes older than `before` (long runs)."""
        i = bisect.bisect_right(self._t, before) - 1
        if i > 0:
            del self._t[:i], self._m[:i]

    def __call__(self, t: int) -> tuple[int, int, int]:
        mode = self.mode(t)
        n = _noise(t, 8)
        if mode == "active":
            g = 150 if (t // 500) % 6 == 0 else 0
            return n + g, _noise(t + 7, 8), 1000 + _noise(t + 13, 8) - g // 2
        if mode == "rest":
            g = 120 if (t // 1000) % 1500 == 0 else 0  # a turn-over every 25 min
            return _noise(t, 3) + g, _noise(t + 7, 3), 1000 + _noise(t + 13, 3)
        if mode == "table":
            return _noise(t, 3), _noise(t + 7, 3), 1000 + _noise(t + 13, 3)
        if mode == "freefall":
            return n, 0, 200
        if mode == "impact":
            return 2500, 800, 3500
        if mode == "bounce":
            return 800 + _noise(t, 800), _noise(t + 3, 600), 500 + _noise(t + 5, 800)
        return 1000 + n, _noise(t + 7, 8), _noise(t + 13, 8)  # floor: gravity along x
