"""Fall and worn/not-worn detection from a wrist accelerometer stream.

Sans-IO, integers only (a float is a heap object on MicroPython), fixed memory,
no allocation per sample. Samples are milli-g ints (x, y, z), clamped to
+-16 g, at a constant rate given at construction (25-200 Hz); durations are
counted in samples, `now_ms` only dates events.

FallDetector -- the simple impact-and-stillness method (a later issue tunes
thresholds on SisFall / UMAFall recordings):

1. Impact: |a| >= ``impact_mg``. The posture before the fall is taken from a
   low-passed gravity estimate recorded ~1.5 s before the impact (a snapshot
   ring), so the fall itself does not blur it. ``EV_IMPACT`` (diagnostics).
2. Settle: ``settle_ms`` of bouncing after the impact are ignored (a further
   impact extends the settle time and raises the peak).
3. Stillness: the rest of the window is cut into blocks of ``still_ms / 2``;
   a block is quiet when the variance of |a| is <= ``still_mg``**2. Two quiet
   blocks in a row = ``still_ms`` lying still.
4. Posture: the mean acceleration over the quiet blocks (gravity) must differ
   from the pre-impact one by more than ``posture_deg`` (cosine compared in
   integers). Then ``EV_FALL``: ``fall_at`` = tick of the impact,
   ``peak_mg`` = largest |a| seen.
5. No stillness within ``window_ms`` of the impact, or stillness without a
   posture change: ``EV_REJECT`` with ``reject_reason`` (R_MOVING,
   R_POSTURE); back to watching.

Wear -- worn / not worn from movement: each second in which any axis spans
more than ``move_mg`` (max - min) is an *active second*. No active second for
``not_worn_ms`` -> ``EV_NOT_WORN``; the next active second -> ``EV_WORN``.
A new Wear starts as worn (no event); ``active_s`` counts active seconds for
the caller's activity summaries (``take_active()`` reads and clears it). A
wrist at rest still twitches; a bracelet on a table does not, so the default
60 min without any movement above 40 mg (an MPU6886 at rest is ~5-10 mg of
noise) means not worn. Charging is handled by the caller (charging = not worn).

Event bits are distinct across both classes so callers can OR them.
"""

from shared.compat import const

EV_IMPACT = const(1)
EV_FALL = const(2)
EV_REJECT = const(4)
EV_WORN = const(8)
EV_NOT_WORN = const(16)

R_MOVING = const(1)  # no stillness within the window: an activity, not a fall
R_POSTURE = const(2)  # still, but oriented as before: e.g. a slapped table

_CLAMP = const(16000)  # +-16 g: the widest MPU6886 / BMA423 range
_DEV_CLAMP = const(1000)  # |a| deviations beyond 1 g are "not still"; keeps sums small
_SNAPS = const(8)  # gravity snapshots kept, one per quarter second: 2 s of history
_PRE_SNAPS = const(6)  # posture before the fall = the snapshot ~1.5 s before impact
_SCALE = const(4)  # gravity vectors >> 4 (1 g ~ 62) for the cosine: products stay small ints
_VEC_CLAMP = const(4000)  # components clamped to +-4 g before the cosine

_IDLE = const(0)
_SETTLE = const(1)
_STILL = const(2)

# cos(deg) * 100 for the posture threshold, 5-degree steps from 0 to 90.
_COS100 = (100, 100, 98, 97, 94, 91, 87, 82, 77, 71, 64, 57, 50, 42, 34, 26, 17, 9, 0)


def _check(name, value, lo, hi):
    if type(value) is not int or value < lo or value > hi:
        raise ValueError("%s must be an int in [%d, %d]" % (name, lo, hi))


def _clamp(v, lim):
    if v > lim:
        return lim
    if v < -lim:
        return -lim
    return v


def isqrt(n, guess=1000):
    """floor(sqrt(n)) for 0 <= n < 2**30 by integer Newton from `guess` (1-3 steps when close)."""
    if n <= 0:
        return 0
    g = guess if guess > 0 else 1
    # One step from any positive guess lands at or above floor(sqrt(n)) (AM-GM);
    # from there the iteration decreases monotonically to the floor.
    g = (g + n // g) >> 1
    if g < 1:
        g = 1
    while True:
        h = (g + n // g) >> 1
        if h >= g:
            return g
        g = h


class FallDetector:
    def __init__(
        self,
        rate_hz=50,  # MPU6886 FIFO at 50 Hz: 2.5 s of samples in its 1 KB
        impact_mg=2500,  # 2.5 g: the lower end of threshold methods on SisFall (~2-3 g)
        settle_ms=1000,  # bouncing after the impact
        window_ms=10000,  # stillness must start within 10 s of the impact
        still_ms=1500,  # ~1-2 s lying still (issue)
        still_mg=80,  # std dev of |a| while lying still (sensor noise + breathing ~10-30 mg)
        posture_deg=45,  # gravity direction changed by > 45 degrees
    ):
        _check("rate_hz", rate_hz, 25, 200)
        _check("impact_mg", impact_mg, 1200, 15000)
        _check("settle_ms", settle_ms, 0, 5000)
        _check("still_ms", still_ms, 500, 5000)
        _check("window_ms", window_ms, settle_ms + still_ms, 60000)
        _check("still_mg", still_mg, 5, 500)
        _check("posture_deg", posture_deg, 10, 90)
        if posture_deg % 5:
            raise ValueError("posture_deg must be a multiple of 5")
        self.rate_hz = rate_hz
        self.impact_mg = impact_mg
        self._impact2 = impact_mg * impact_mg  # compare |a|^2: no sqrt for the common case
        self._settle_n = settle_ms * rate_hz // 1000
        self._window_n = window_ms * rate_hz // 1000
        self._half_n = still_ms * rate_hz // 2000
        self._var_max = still_mg * still_mg
        self._cos100 = _COS100[posture_deg // 5]
        self._snap_n = rate_hz // 4
        # Low-pass time constant ~0.3 s at every rate: alpha = 2**-shift.
        s = 2
        while (1 << s) < rate_hz * 32 // 100:
            s += 1
        self._shift = s
        self._snaps = [0] * (3 * _SNAPS)  # ring of low-passed gravity (x, y, z) * 2**shift
        self.reset()

    def reset(self):
        """Forget the stream (e.g. after an IMU restart or a FIFO overflow)."""
        self.mag = 0  # |a| of the last sample, milli-g
        self.fall_at = 0
        self.peak_mg = 0
        self.reject_reason = 0
        self._state = _IDLE
        self._primed = 0  # samples seen, saturating at the history length
        self._lx = 0
        self._ly = 0
        self._lz = 0
        self._snap_i = 0
        self._snap_k = 0
        for i in range(3 * _SNAPS):
            self._snaps[i] = 0
        self._px = 0  # posture before the impact (scaled)
        self._py = 0
        self._pz = 0
        self._n = 0  # samples since the impact
        self._settle_left = 0
        self._bn = 0  # samples in the current stillness block
        self._ref = 0  # |a| at the block start
        self._s1 = 0
        self._s2 = 0
        self._sx = 0
        self._sy = 0
        self._sz = 0
        self._quiet = 0  # quiet blocks in a row

    def update(self, now_ms, x, y, z):
        x = _clamp(x, _CLAMP)
        y = _clamp(y, _CLAMP)
        z = _clamp(z, _CLAMP)
        m2 = x * x + y * y + z * z  # <= 7.7e8 < 2**30: a small int on MicroPython
        self.mag = isqrt(m2, self.mag)
        if self._state == _IDLE:
            return self._idle(now_ms, x, y, z, m2)
        ev = 0
        self._n += 1
        if m2 >= self._impact2:
            # Another impact (furniture, then floor): settle again, keep the first time.
            if self.mag > self.peak_mg:
                self.peak_mg = self.mag
            self._state = _SETTLE
            self._settle_left = self._settle_n
            self._quiet = 0
            self._bn = 0
        elif self._state == _SETTLE:
            self._settle_left -= 1
            if self._settle_left <= 0:
                self._state = _STILL
                self._bn = 0
        else:
            ev = self._still(x, y, z)
        if self._state != _IDLE and self._n >= self._window_n:
            self.reject_reason = R_MOVING
            self._state = _IDLE
            ev |= EV_REJECT
        return ev

    def _idle(self, now_ms, x, y, z, m2):
        sh = self._shift
        if self._primed == 0:  # start the low-pass at the first sample, not at 0
            self._lx = x << sh
            self._ly = y << sh
            self._lz = z << sh
        self._lx += x - (self._lx >> sh)
        self._ly += y - (self._ly >> sh)
        self._lz += z - (self._lz >> sh)
        if self._primed < (_SNAPS + 1) * self._snap_n:
            self._primed += 1
        self._snap_k += 1
        if self._snap_k >= self._snap_n:
            self._snap_k = 0
            i = self._snap_i
            self._snaps[3 * i] = self._lx
            self._snaps[3 * i + 1] = self._ly
            self._snaps[3 * i + 2] = self._lz
            self._snap_i = (i + 1) % _SNAPS
        if m2 < self._impact2:
            return 0
        # The snapshot _PRE_SNAPS quarter-seconds back (the ring's write index
        # is the oldest; fewer if the stream just started).
        back = _PRE_SNAPS if self._primed > _PRE_SNAPS * self._snap_n else 1
        j = (self._snap_i - back) % _SNAPS
        if self._primed < self._snap_n:
            px, py, pz = self._lx, self._ly, self._lz
        else:
            px, py, pz = self._snaps[3 * j], self._snaps[3 * j + 1], self._snaps[3 * j + 2]
        self._px = _clamp(px >> sh, _VEC_CLAMP) >> _SCALE
        self._py = _clamp(py >> sh, _VEC_CLAMP) >> _SCALE
        self._pz = _clamp(pz >> sh, _VEC_CLAMP) >> _SCALE
        self.fall_at = now_ms
        self.peak_mg = self.mag
        self.reject_reason = 0
        self._n = 0
        self._quiet = 0
        self._bn = 0
        self._state = _SETTLE
        self._settle_left = self._settle_n
        return EV_IMPACT

    def _still(self, x, y, z):
        if self._bn == 0:
            self._ref = self.mag
            self._s1 = 0
            self._s2 = 0
            self._sx = 0
            self._sy = 0
            self._sz = 0
        d = _clamp(self.mag - self._ref, _DEV_CLAMP)
        self._s1 += d
        self._s2 += d * d  # <= 200 samples * 1e6 < 2**30
        self._sx += x
        self._sy += y
        self._sz += z
        self._bn += 1
        if self._bn < self._half_n:
            return 0
        n = self._bn
        self._bn = 0
        mean = self._s1 // n
        var = self._s2 // n - mean * mean
        if var > self._var_max:
            self._quiet = 0
            return 0
        self._quiet += 1
        if self._quiet < 2:
            return 0
        self._state = _IDLE
        qx = _clamp(self._sx // n, _VEC_CLAMP) >> _SCALE
        qy = _clamp(self._sy // n, _VEC_CLAMP) >> _SCALE
        qz = _clamp(self._sz // n, _VEC_CLAMP) >> _SCALE
        dot = qx * self._px + qy * self._py + qz * self._pz
        a = isqrt(qx * qx + qy * qy + qz * qz, 62)
        b = isqrt(self._px * self._px + self._py * self._py + self._pz * self._pz, 62)
        # Changed when cos(angle) < cos(posture_deg): dot / (a b) < cos100 / 100.
        if dot * 100 < self._cos100 * a * b:
            return EV_FALL
        self.reject_reason = R_POSTURE
        return EV_REJECT


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
