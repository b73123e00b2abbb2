"""Resample a recorded accelerometer trace to the bracelet's rate.

One method for every data set: **linear interpolation at the output instants**
t_k = t_0 + k * 1000 / rate (ms), on the recording's own time stamps.

- Downsampling SisFall (200 Hz, an exact multiple of 25/50/100 Hz) then takes every
  4th (50 Hz) sample as recorded: a point sample per output period, which is what the
  MPU6886 does too (its accelerometer low-pass filter runs at 1 kHz and SMPLRT_DIV keeps
  one filtered sample per output period; firmware/hal/mpu6886.py). No extra averaging:
  a box average over the output period would flatten impact peaks more than the sensor
  does.
- Upsampling UMAFall's wrist tag (~20 Hz, jittered time stamps, occasional gaps) adds no
  information; it only puts the samples on the detector's fixed grid. A gap in the
  recording becomes a straight line (`gaps_over` counts them so reports can say so).

Output: milli-g ints, interleaved x, y, z in an ``array('h')`` (what the bracelet's FIFO
read gives), clamped to +-16 g like the MPU6886 at its +-16 g range.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

CLAMP_MG = 16000  # the MPU6886's +-16 g range (firmware/hal/mpu6886.py); shared/fall.py clamps too


def _clamp(v: float) -> int:
    i = int(round(v))
    return CLAMP_MG if i > CLAMP_MG else (-CLAMP_MG if i < -CLAMP_MG else i)


def resample(
    t_ms: Sequence[float],
    xs: Sequence[float],
    ys: Sequence[float],
    zs: Sequence[float],
    rate_hz: int,
) -> array:
    """Interleaved milli-g x, y, z at `rate_hz` from samples at times `t_ms` (increasing).

    Output instants run from t_ms[0] to t_ms[-1] inclusive. Equal time stamps (repeats)
    are allowed; the later sample wins between them.
    """
    n = len(t_ms)
    if not (n == len(xs) == len(ys) == len(zs)):
        raise ValueError("t_ms, xs, ys, zs must have the same length")
    if rate_hz <= 0:
        raise ValueError("rate_hz must be positive")
    out = array("h")
    if n == 0:
        return out
    t0 = t_ms[0]
    span = t_ms[-1] - t0
    m = int(span * rate_hz / 1000.0 + 1e-9) + 1  # output samples
    j = 0  # t_ms[j] <= t < t_ms[j + 1]
    for k in range(m):
        t = t0 + k * 1000.0 / rate_hz
        while j + 1 < n and t_ms[j + 1] <= t:
            j += 1
        if j + 1 >= n or t_ms[j + 1] == t_ms[j]:
            f = 0.0
        else:
            f = (t - t_ms[j]) / (t_ms[j + 1] - t_ms[j])
        if f <= 0.0:
            out.append(_clamp(xs[j]))
            out.append(_clamp(ys[j]))
            out.append(_clamp(zs[j]))
        else:
            out.append(_clamp(xs[j] + f * (xs[j + 1] - xs[j])))
            out.append(_clamp(ys[j] + f * (ys[j + 1] - ys[j])))
            out.append(_clamp(zs[j] + f * (zs[j + 1] - zs[j])))
    return out


def decimate(xyz: Sequence[int], factor: int) -> array:
    """Every `factor`-th sample of an interleaved x, y, z sequence (uniform input whose rate
    is `factor` times the output rate): the same result as `resample` there, much faster."""
    out = array("h")
    for k in range(0, len(xyz) - 2, 3 * factor):
        out.append(_clamp(xyz[k]))
        out.append(_clamp(xyz[k + 1]))
        out.append(_clamp(xyz[k + 2]))
    return out


def gaps_over(t_ms: Sequence[float], limit_ms: float) -> int:
    """How many intervals between consecutive time stamps exceed `limit_ms`."""
    return sum(1 for a, b in zip(t_ms, t_ms[1:]) if b - a > limit_ms)


def index_at(t_ms: float, t0_ms: float, rate_hz: int) -> int:
    """The first output sample at or after time `t_ms` (same clock as the input stamps)."""
    k = (t_ms - t0_ms) * rate_hz / 1000.0
    i = int(k)
    return i if i >= k - 1e-9 else i + 1
