"""Integer geometry for the fall detector (shared/fall.py): no floats, no allocation.

A float is a heap object on MicroPython, so the detector compares angles as cosines * 100
and takes square roots by integer Newton steps from the previous result.
"""

# cos(deg) * 100 for the posture threshold, 5-degree steps from 0 to 90.
COS100 = (100, 100, 98, 97, 94, 91, 87, 82, 77, 71, 64, 57, 50, 42, 34, 26, 17, 9, 0)


def clamp(v, lim):
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
