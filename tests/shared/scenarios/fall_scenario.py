# Scenario: shared/fall.py on synthetic wrist signals (a fall, a slap on a table, a hard
# sit-down while walking, a stumble with several hits before lying still, a sample beyond
# the sensor range, minutes on a table) at 25, 50 and 200 Hz, across the tick wrap; with the
# wrist settings (the score rule) and (at 50 Hz) with the strict conjunction and waist-like
# settings (an upright axis, interrupted rest allowed), where a hit while already lying
# ("turn") is rejected.
# Prints one line per event (and the last score); identical on CPython and MicroPython. On
# MicroPython it also checks that update() allocates nothing per sample, idle and through a
# whole fall (prints nothing: output stays comparable).
import sys

from shared.fall import EV_FALL, EV_IMPACT, EV_NOT_WORN, EV_REJECT, EV_WORN, FallDetector, Wear
from shared.ticks import PERIOD, ticks_add, ticks_diff

ON_MPY = sys.implementation.name == "micropython"
T0 = PERIOD - 7000  # the tick wraps 7 s in


def noise(k, amp):
    x = (k * 1103515245 + 12345) & 0x7FFFFFFF
    return (x >> 8) % (2 * amp + 1) - amp


S = [0, 0, 0]  # the current sample, filled in place: the guest heap is never collected


def signal(kind, t):
    n = noise(t, 10)
    x, y, z = n // 2, 0, 1000
    if kind == "fall":
        if t < 4600:
            x, y = n + (120 if (t // 400) % 5 == 0 else 0), noise(t + 1, 10)
        elif t < 5000:
            x, z = n, 150
        elif t < 5050:
            x, y, z = 2600, 900, 3300
        elif t < 5700:
            x, y, z = 700 + noise(t, 700), noise(t + 3, 500), 400 + noise(t + 5, 700)
        else:
            x, y, z = n, 1000 + noise(t + 1, 8), noise(t + 2, 8)
    elif kind == "slap":
        if 3000 <= t < 3040:
            x, y, z = 0, 300, 3800
    elif kind == "burst":  # hits at 3.2, 4.0 and 4.8 s (the last beyond +-16 g), then lying
        if t < 3000:
            x, y = n + (120 if (t // 400) % 5 == 0 else 0), noise(t + 1, 10)
        elif t < 5400:
            x, y, z = noise(t, 250), noise(t + 1, 250), 1000 + noise(t + 2, 250)
            if t % 800 < 40:
                x, y, z = 2100, -40000 if t >= 4600 else -900, 2600
        else:
            x, y, z = noise(t, 8), noise(t + 1, 8), -1000 + noise(t + 2, 8)
    elif kind == "sitdown":
        if 3000 <= t < 3060:
            x, y, z = 300, 200, 2800
        else:
            st = 300 if (t // 250) % 2 else -200
            x, y, z = n + st // 2, noise(t + 1, 20), 1000 + st
    elif kind == "turn":  # lying on the side, a hit, lying on the back
        if t < 5000:
            x, y, z = 1000 + n, noise(t + 1, 10), noise(t + 2, 10)
        elif t < 5050:
            x, y, z = 2600, 900, 3300
        else:
            x, y, z = n, 1000 + noise(t + 1, 8), noise(t + 2, 8)
    else:  # table
        x, y, z = noise(t, 4), noise(t + 1, 4), 1000 + noise(t + 2, 4)
    S[0] = x
    S[1] = y
    S[2] = z


def names(ev):
    out = []
    for bit, name in ((EV_IMPACT, "IMPACT"), (EV_FALL, "FALL"), (EV_REJECT, "REJECT"),
                      (EV_WORN, "WORN"), (EV_NOT_WORN, "NOT_WORN")):
        if ev & bit:
            out.append(name)
    return "+".join(out)


def check_alloc(det, wear, rate):
    if not ON_MPY:
        return
    import gc  # the test runner never collects: mem_alloc() deltas are exact

    before = gc.mem_alloc()
    for k in range(2 * rate):
        det.update(k, 10, -20, 1000 + (k % 7))
        wear.update(10, -20, 1000 + (k % 7))
    used = gc.mem_alloc() - before
    if used > 64:  # the loop itself may touch a few bytes once; per sample it must be 0
        raise AssertionError("fall/wear allocate %d bytes over %d samples" % (used, 2 * rate))


def check_alloc_fall(kw, rate, seconds):
    # A whole fall (impact, settle, quiet blocks, the score or the conjunction), the samples
    # computed first (the signal's arithmetic allocates), then fed with nothing else allocating.
    if not ON_MPY:
        return
    import gc

    n = seconds * rate
    buf = [0] * (3 * n)
    for k in range(n):
        signal("fall", k * 1000 // rate)
        buf[3 * k] = S[0]
        buf[3 * k + 1] = S[1]
        buf[3 * k + 2] = S[2]
    det = FallDetector(rate_hz=rate, **kw)
    seen = 0
    k = 0
    before = gc.mem_alloc()
    while k < n:
        seen |= det.update(k, buf[3 * k], buf[3 * k + 1], buf[3 * k + 2])
        k += 1
    used = gc.mem_alloc() - before
    if used > 64 or not seen & EV_FALL:
        raise AssertionError("a fall allocates %d bytes over %d samples (events %d)"
                             % (used, n, seen))


CONJ = {"score_min": 0, "still_mg": 80, "still_ms": 1500, "window_ms": 5000}
WAIST = {"score_min": 0, "up_axis": 3, "up_deg": 60, "lie_deg": 55, "gaps": 1,
         "window_ms": 10000}
for rate in (25, 50, 200):
    cases = [("fall", 12, {}), ("slap", 8, {}), ("sitdown", 15, {}), ("burst", 12, {})]
    if rate == 50:  # the other settings at one rate: the guest's fuel is limited
        cases += [("fall", 12, CONJ), ("burst", 12, CONJ), ("fall", 12, WAIST),
                  ("burst", 12, WAIST), ("turn", 10, WAIST)]
    for kind, seconds, kw in cases:
        label = "waist" if kw is WAIST else ("conj" if kw is CONJ else "wrist")
        det = FallDetector(rate_hz=rate, **kw)
        for k in range(seconds * rate):
            t = k * 1000 // rate
            signal(kind, t)
            ev = det.update(ticks_add(T0, t), S[0], S[1], S[2])
            if ev:
                print(rate, kind, label, t, names(ev), "peak", det.peak_mg,
                      "at", ticks_diff(det.fall_at, T0), "reason", det.reject_reason, "mag",
                      det.mag, "impacts", det.impacts, "score", det.score)
        check_alloc(det, Wear(rate_hz=rate), rate)
for kw in ({}, CONJ, WAIST):
    check_alloc_fall(kw, 50, 12)

w = Wear(rate_hz=25, not_worn_ms=2 * 60000)
for k in range(25 * 60 * 3):  # 3 minutes on the table, the last 20 s picked up
    signal("table", k * 40)
    if k >= 25 * 160:
        S[0] += 300 if k % 25 < 4 else 0
    ev = w.update(S[0], S[1], S[2])
    if ev:
        print("wear", k // 25, names(ev), "still_s", w.still_s, "active", w.active_s)
print("wear done", w.worn, w.take_active())
