"""Fall and worn/not-worn detection from a wrist accelerometer stream.

Sans-IO, integers only, fixed memory, no allocation per sample. Samples are
milli-g ints (x, y, z), clamped to [-16384, 16383] (the MPU6886 reads +-16 g),
at a constant rate given at construction (25-200 Hz; slower recordings are
resampled up to 25 Hz first); durations are counted in samples, `now_ms` only
dates events.

FallDetector -- impact, then posture change and stillness (docs/fall-detection.md has
the evaluation on SisFall and UMAFall and where each default comes from):

1. Impact: |a| >= ``impact_mg`` (|a|^2 compared, no square root while idle).
   The posture before the fall is the mean acceleration (gravity) over ~1.5-2 s
   before the impact, from a ring of quarter-second block sums, so the fall
   itself does not blur it. ``EV_IMPACT`` (diagnostics). With ``up_axis`` (a
   waist device, whose mounting fixes which axis points up) that posture must
   be upright, within ``up_deg`` of the axis: a hit while lying already
   (turning over in bed) is ``EV_IMPACT | EV_REJECT``, R_LYING.
2. Settle: ``settle_ms`` of bouncing after the impact are ignored; a further
   impact (furniture, then floor) settles again and raises the peak. Impacts
   more than 250 ms apart are counted in ``impacts`` (diagnostics).
3. Rest: then blocks of ``still_ms / 2``; a block is quiet when the variance
   of |a| is <= ``still_mg``**2 (|a| ignores slow turns of the arm). A quiet
   block is *down* when its mean acceleration differs from the pre-impact one
   by more than ``posture_deg`` (cosine compared in integers) and, with
   ``up_axis``, is lying (beyond ``lie_deg`` from the axis: a quick sit leaves
   the pelvis upright). Two down blocks in a row -> ``EV_FALL``: ``fall_at`` =
   ``now_ms`` of the first impact, ``peak_mg`` = largest |a| seen. With
   ``gaps=1`` the two need not follow each other (a wearer moving an arm
   between rests), but must show one resting posture (within 30 degrees).
4. Two quiet blocks in a row that are not down (a slapped table, a hard sit),
   or no fall within ``window_ms`` of the last impact (or impacts going on for
   a minute): ``EV_REJECT`` with ``reject_reason`` (R_POSTURE, R_MOVING).

With ``score_min`` > 0 (the wrist default) step 3's test is a score instead:
integer points per quiet block (shared/fall_score.py; ``score`` keeps the last),
``EV_FALL`` at ``score_min``; R_POSTURE within 30 degrees of the posture before.

Units: milli-g ints in, not g floats (a float is a heap object on MicroPython);
``mag`` holds |a| in milli-g of the last sample looked at closely (diagnostics).
The defaults are the bracelet's wrist settings, chosen on UMAFall's wrist
recordings; a waist device needs others (bench/falls/score.py WAIST: score_min=0,
its upright axis). It cannot see a slow slide to the floor or a fall broken by
the hands (no impact), nor a fall followed by moving about for more than a few
seconds: the SOS button stays the primary trigger.
Wear (worn / not worn) lives in shared/fall_wear.py and is re-exported here.

Event bits are distinct across both modules so callers can OR them.
"""

from shared.compat import const
from shared.fall_score import COS30, points
from shared.fall_wear import EV_NOT_WORN as EV_NOT_WORN, EV_WORN as EV_WORN, Wear as Wear

EV_IMPACT = const(1)
EV_FALL = const(2)
EV_REJECT = const(4)

R_MOVING = const(1)  # no stillness within the window: an activity, not a fall
R_POSTURE = const(2)  # still, but oriented as before: e.g. a slapped table
R_LYING = const(3)  # not upright before the impact (up_axis set): e.g. turning over in bed

_LO = const(-16384)  # samples are clamped to [_LO, _HI]: just beyond the MPU6886's +-16 g,
_HI = const(16383)  # keeps |a|^2 a small int; v is inside iff (v + 16384) >> 15 == 0
_DEV_CLAMP = const(1000)  # |a| deviations beyond 1 g are "not still"; keeps sums small
_BLOCKS = const(8)  # posture history: 8 quarter-second blocks = 2 s
_PRE_FROM = const(6)  # posture before the fall: the mean of the blocks 6 and 7 back,
_PRE_TO = const(7)  # i.e. ~1.5-2 s before the impact (a fall from standing takes ~0.5-1 s)
_SCALE = const(4)  # gravity vectors >> 4 (1 g ~ 62) for the cosine: products stay small ints
_VEC_CLAMP = const(4000)  # components clamped to +-4 g before the cosine

_CONE_COS = const(87)  # cos(30 deg) * 100: an arm resting on the floor, small moves (a priori)
_GAP_MS = const(250)  # impacts closer than this are one (bounces of one hit: ~0.1-0.2 s)
_CAP_S = const(60)  # an impact burst longer than a minute is an activity, never one fall

_IDLE = const(0)
_SETTLE = const(1)
_STILL = const(2)

# These helpers stay in this module: moved to one of their own and imported, the same code
# cost 16-19 % more per sample under MicroPython (bench/falls/mpy_cost.py, measured).
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
        rate_hz=50,  # the bracelet's MPU6886 FIFO rate (firmware/apps/bracelet.py)
        impact_mg=2750,  # tuned on UMAFall WRIST, all 12 subjects (docs/fall-detection.md)
        settle_ms=1000,  # bouncing after the impact (not tuned: the first version's 1 s)
        window_ms=10000,  # a fall decided within 10 s of the last impact (tuned, as above)
        still_ms=1500,  # quiet blocks of 0.75 s (tuned, as above)
        still_mg=50,  # std dev of |a| in a quiet block (rest: noise + breathing ~10-30 mg)
        posture_deg=45,  # score_min=0: gravity direction changed by > 45 degrees
        gaps=0,  # score_min=0: 1 = the quiet blocks need not follow each other
        up_axis=0,  # device axis reading +1 g when upright: 1..3 = x..z, <0 = minus; 0 = none
        up_deg=60,  # with up_axis: upright before the impact = within up_deg of it
        lie_deg=60,  # with up_axis: lying after = beyond lie_deg from it (tuned, waist)
        score_min=4,  # the wrist's score rule (shared/fall_score.py; tuned); 0: step 3's test
    ):
        _check("rate_hz", rate_hz, 25, 200)
        _check("impact_mg", impact_mg, 1200, 15000)
        _check("settle_ms", settle_ms, 0, 5000)
        _check("still_ms", still_ms, 500, 5000)
        _check("window_ms", window_ms, settle_ms + still_ms, 60000)
        _check("still_mg", still_mg, 5, 500)
        _check("posture_deg", posture_deg, 10, 90)
        _check("gaps", gaps, 0, 1)
        _check("up_axis", up_axis, -3, 3)
        _check("up_deg", up_deg, 10, 90)
        _check("lie_deg", lie_deg, 10, 90)
        _check("score_min", score_min, 0, 9)
        if score_min and (gaps or up_axis):
            raise ValueError("score_min does not combine with gaps or up_axis")
        if posture_deg % 5 or up_deg % 5 or lie_deg % 5:
            raise ValueError("posture_deg, up_deg and lie_deg must be multiples of 5")
        self.rate_hz = rate_hz
        self.impact_mg = impact_mg
        self._impact2 = impact_mg * impact_mg  # compare |a|^2: no sqrt for the common case
        self._settle_n = settle_ms * rate_hz // 1000
        self._window_n = window_ms * rate_hz // 1000
        self._half_n = still_ms * rate_hz // 2000
        self._var_max = still_mg * still_mg
        self._cos100 = _COS100[posture_deg // 5]
        self._gaps = gaps
        self._up = up_axis
        self._up100 = _COS100[up_deg // 5]
        self._lie100 = _COS100[lie_deg // 5]
        self._score_min = score_min
        self._gap_n = rate_hz * _GAP_MS // 1000
        self._cap_n = rate_hz * _CAP_S
        self._blk_n = rate_hz // 4  # posture history: sums over quarter-second blocks
        self._ring = [0] * (3 * _BLOCKS)  # x, y, z sums of the last _BLOCKS complete blocks
        self.reset()

    def reset(self):
        """Forget the stream (e.g. after an IMU restart or a FIFO overflow)."""
        self.mag = 0  # |a| of the last sample looked at closely (impacts, stillness), milli-g
        self.fall_at = 0
        self.peak_mg = 0
        self.impacts = 0
        self.reject_reason = 0
        self.score = 0  # score of the last quiet block (score_min > 0), diagnostics
        self._state = _IDLE
        self._bx = 0  # sums of the block in progress
        self._by = 0
        self._bz = 0
        self._bk = 0  # samples in it
        self._bi = 0  # ring index of the next block
        self._blocks = 0  # complete blocks, saturating at _BLOCKS
        for i in range(3 * _BLOCKS):
            self._ring[i] = 0
        self._px = 0  # posture before the impact (scaled)
        self._py = 0
        self._pz = 0
        self._n = 0  # samples since the first impact
        self._since = 0  # samples since the last sample at or above the impact threshold
        self._settle_left = 0
        self._bn = 0  # samples in the current stillness block
        self._ref = 0  # |a| at the block start
        self._s1 = 0
        self._s2 = 0
        self._sx = 0
        self._sy = 0
        self._sz = 0
        self._quiet = 0  # quiet blocks in a row with the posture as before
        self._down = 0  # quiet blocks with the posture changed (in a row unless gaps)
        self._pn = 0  # |posture before| (scaled), for the cosines
        self._rx = 0  # the resting posture: the first changed quiet block (gaps), scaled
        self._ry = 0
        self._rz = 0
        self._rn = 0
        self._blk = 0  # blocks since the settle time ended (score rule)
        self._run0 = 0  # the block the current run of quiet blocks began at (score rule)

    def update(self, now_ms, x, y, z):
        # Inline clamps, sums and compares: this runs 50 times a second on the bracelet,
        # and a call or an attribute lookup costs more than the arithmetic.
        if ((x - _LO) | (y - _LO) | (z - _LO)) >> 15:  # one is outside [_LO, _HI]
            x = _HI if x > _HI else (_LO if x < _LO else x)
            y = _HI if y > _HI else (_LO if y < _LO else y)
            z = _HI if z > _HI else (_LO if z < _LO else z)
        m2 = x * x + y * y + z * z  # <= 8.1e8 < 2**30: a small int on MicroPython
        self._bx += x
        self._by += y
        self._bz += z
        k = self._bk + 1
        if k >= self._blk_n:
            k = 0
            self._push()
        self._bk = k
        state = self._state
        if state == _IDLE:
            if m2 < self._impact2:
                return 0
            return self._start(now_ms, m2)
        ev = 0
        self._n += 1
        self._since += 1
        if m2 >= self._impact2:
            # Another impact (furniture, then floor): settle again, keep the first time.
            self.mag = isqrt(m2, self.mag)
            if self.mag > self.peak_mg:
                self.peak_mg = self.mag
            if self._since > self._gap_n:
                self.impacts += 1
            self._since = 0
            self._state = _SETTLE
            self._settle_left = self._settle_n
            self._quiet = 0
            self._down = 0
            self._bn = 0
        elif state == _SETTLE:
            self._settle_left -= 1
            if self._settle_left <= 0:
                self._state = _IDLE if self.reject_reason else _STILL
                self._bn = 0
                self._blk = 0
        else:
            self.mag = isqrt(m2, self.mag)
            ev = self._still(x, y, z)
        if self._state != _IDLE and (self._since >= self._window_n or self._n >= self._cap_n):
            self.reject_reason = R_MOVING
            self._state = _IDLE
            ev |= EV_REJECT
        return ev

    def _push(self):
        i = 3 * self._bi
        r = self._ring
        r[i] = self._bx
        r[i + 1] = self._by
        r[i + 2] = self._bz
        self._bx = 0
        self._by = 0
        self._bz = 0
        self._bi = (self._bi + 1) % _BLOCKS
        if self._blocks < _BLOCKS:
            self._blocks += 1

    def _start(self, now_ms, m2):
        # Posture before the fall: the mean of the blocks _PRE_FROM.._PRE_TO back (fewer
        # if the stream just started; the block in progress if none is complete).
        r = self._ring
        sx = sy = sz = 0
        n = 0
        back = _PRE_FROM
        while back <= _PRE_TO:
            b = back if back <= self._blocks else self._blocks
            if b > 0:
                i = 3 * ((self._bi - b) % _BLOCKS)
                sx += r[i]
                sy += r[i + 1]
                sz += r[i + 2]
                n += self._blk_n
            back += 1
        if n == 0:
            sx = self._bx
            sy = self._by
            sz = self._bz
            n = self._bk if self._bk else 1
        self._px = _clamp(sx // n, _VEC_CLAMP) >> _SCALE
        self._py = _clamp(sy // n, _VEC_CLAMP) >> _SCALE
        self._pz = _clamp(sz // n, _VEC_CLAMP) >> _SCALE
        self._pn = isqrt(self._px * self._px + self._py * self._py + self._pz * self._pz, 62)
        self.mag = isqrt(m2, self.impact_mg)
        self.fall_at = now_ms
        self.peak_mg = self.mag
        self.impacts = 1
        self.reject_reason = 0
        self.score = 0
        self._n = 0
        self._since = 0
        self._quiet = 0
        self._down = 0
        self._bn = 0
        self._state = _SETTLE
        self._settle_left = self._settle_n
        if self._up and not self._upright(self._px, self._py, self._pz, self._pn, self._up100):
            # Lying already (turning over in bed, lying down hard): not a fall from upright.
            # Rejected now; the settle time still runs, so its further hits stay silent.
            self.reject_reason = R_LYING
            return EV_IMPACT | EV_REJECT
        return EV_IMPACT

    def _upright(self, x, y, z, norm, cos100):
        # Within the cone around the upright axis: cos = component / norm >= cos100 / 100.
        u = self._up
        c = x if u == 1 or u == -1 else (y if u == 2 or u == -2 else z)
        if u < 0:
            c = -c
        return c * 100 >= cos100 * norm

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
        self._blk += 1
        mean = self._s1 // n
        var = self._s2 // n - mean * mean
        if var > self._var_max:  # moving
            self._quiet = 0
            if not self._gaps:
                self._down = 0
            return 0
        qx = _clamp(self._sx // n, _VEC_CLAMP) >> _SCALE
        qy = _clamp(self._sy // n, _VEC_CLAMP) >> _SCALE
        qz = _clamp(self._sz // n, _VEC_CLAMP) >> _SCALE
        dot = qx * self._px + qy * self._py + qz * self._pz
        a = isqrt(qx * qx + qy * qy + qz * qz, 62)
        if self._score_min:
            return self._scored(dot * 100, a * self._pn)
        # Changed when cos(angle) < cos(posture_deg): dot / (a b) < cos100 / 100; and, with
        # an upright axis, lying now (beyond lie_deg from it).
        if dot * 100 < self._cos100 * a * self._pn and not (
            self._up and self._upright(qx, qy, qz, a, self._lie100)
        ):
            self._quiet = 0
            if self._down and self._gaps:
                # Not in a row: the blocks must show one resting posture (within _CONE_COS).
                if (qx * self._rx + qy * self._ry + qz * self._rz) * 100 < _CONE_COS * a * self._rn:
                    self._down = 0
            if self._down == 0:
                self._rx = qx
                self._ry = qy
                self._rz = qz
                self._rn = a
            self._down += 1
            if self._down < 2:
                return 0
            self._state = _IDLE
            return EV_FALL
        self._quiet += 1
        if not self._gaps:
            self._down = 0
        if self._quiet < 2:
            return 0
        self._state = _IDLE
        self.reject_reason = R_POSTURE
        return EV_REJECT

    def _scored(self, dot100, norm):
        # The score rule: _down counts the quiet blocks in a row, _quiet those of them
        # within 30 degrees of the posture before (two of these: R_POSTURE).
        self._down += 1
        if self._down == 1:
            self._run0 = self._blk - 1
        self.score = points(dot100, norm, self._down, self._run0, self.peak_mg, self.impacts)
        if self.score >= self._score_min:
            self._state = _IDLE
            return EV_FALL
        if dot100 < COS30 * norm:
            self._quiet = 0
            return 0
        self._quiet += 1
        if self._quiet < 2:
            return 0
        self._state = _IDLE
        self.reject_reason = R_POSTURE
        return EV_REJECT
