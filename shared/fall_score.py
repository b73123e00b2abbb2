"""The wrist's score rule for shared/fall.py's FallDetector (``score_min`` > 0).

Instead of the strict conjunction (impact, then two quiet blocks in a row whose posture
changed by more than ``posture_deg``), each quiet block after the settle time is scored
from what the detector already has, one point per band, fixed before any tuning
(docs/fall-detection.md, "The wrist's score"); only the threshold ``score_min`` is tuned:

- posture change of this block against the one before the impact: > 30 deg +1, > 60 deg +1
- rest: this block is the 2nd quiet block in a row +1, the 3rd or later +1 more
- early rest: that run of quiet blocks began in the first two blocks after the settle
  time that followed the last impact +1
- peak |a| since the first impact: >= 4 g +1, >= 7 g +1 more
- impacts (hits > 250 ms apart): >= 4 -1, >= 8 -1 more (clapping, hopping, jogging)

All ints; called once per quiet block, never per sample.
"""

from shared.compat import const

COS30 = const(87)  # cos(30 deg) * 100
COS60 = const(50)  # cos(60 deg) * 100
MAX_POINTS = const(7)


def points(dot100, norm, run, start, peak_mg, impacts):
    """Score of one quiet block. dot100 = 100 x the dot product of the block's gravity
    vector and the pre-impact one, norm = the product of their lengths (same scale); run =
    quiet blocks in a row including this one; start = index of the run's first block
    after the settle time (0 = the first block)."""
    p = 0
    if dot100 < COS30 * norm:
        p += 1
        if dot100 < COS60 * norm:
            p += 1
    if run >= 2:
        p += 1
        if run >= 3:
            p += 1
    if start <= 1:
        p += 1
    if peak_mg >= 4000:
        p += 1
        if peak_mg >= 7000:
            p += 1
    if impacts >= 4:
        p -= 1
        if impacts >= 8:
            p -= 1
    return p
