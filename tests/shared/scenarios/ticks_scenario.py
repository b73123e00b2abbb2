# Scenario: shared/ticks.py across the 2**30 wrap. Prints deterministic lines that must be
# identical on CPython and MicroPython (tests/shared/test_cross_runtime.py). On MicroPython it
# also checks every result against the VM's own time.ticks_add / ticks_diff (same period,
# 2**30, as on ESP32); those checks print nothing, so the output stays comparable.
import sys

from shared.ticks import MAX_DIFF, PERIOD, ticks_add, ticks_diff, ticks_reached, wrap

ON_MPY = sys.implementation.name == "micropython"
if ON_MPY:
    import time

    mp_add = time.ticks_add
    mp_diff = time.ticks_diff
else:
    mp_add = None
    mp_diff = None

HALF = PERIOD // 2
print("PERIOD", PERIOD, "MAX_DIFF", MAX_DIFF, "HALF", HALF)

# 1. Addition and difference at points around the wrap and around half a period.
POINTS = (0, 1, 999, HALF - 1, HALF, HALF + 1, PERIOD - 1000, PERIOD - 2, PERIOD - 1)
DELTAS = (0, 1, -1, 2, 1000, -1000, 123456789, -123456789, MAX_DIFF, -MAX_DIFF)
n_checked = 0
for t in POINTS:
    row = []
    for d in DELTAS:
        u = ticks_add(t, d)
        back = ticks_diff(u, t)
        row.append("%d:%d" % (u, back))
        if back != d:
            print("MISMATCH diff(add(t, d), t) != d", t, d, u, back)
        if ON_MPY:
            if u != mp_add(t, d) or back != mp_diff(u, t):
                raise AssertionError("differs from time.ticks_*: t=%d d=%d" % (t, d))
            n_checked += 1
    print("add/diff t=%d" % t, " ".join(row))

# 2. Difference is antisymmetric except at exactly half a period, where both are -HALF.
for a, b in ((0, PERIOD - 1), (PERIOD - 1, 0), (0, HALF), (HALF, 0), (5, HALF + 5), (7, 3)):
    d1 = ticks_diff(a, b)
    d2 = ticks_diff(b, a)
    print("diff", a, b, d1, d2, "reached", ticks_reached(a, b), ticks_reached(b, a))
    if ON_MPY and (d1 != mp_diff(a, b) or d2 != mp_diff(b, a)):
        raise AssertionError("differs from time.ticks_diff: %d %d" % (a, b))

# 3. wrap() brings any integer onto the circle (negative, large, multiple periods).
for x in (-1, -PERIOD, -PERIOD - 5, PERIOD, PERIOD + 5, 3 * PERIOD + 7, 2**40 + 11):
    print("wrap", x, wrap(x))

# 4. A timer armed just before the wrap fires once, just after it: a 25 ms loop.
now = PERIOD - 1000
deadline = ticks_add(now, 1500)
print("timer armed now=%d deadline=%d" % (now, deadline))
fired = 0
step = 0
while step < 100:
    now = ticks_add(now, 25)
    step += 1
    if not fired and ticks_reached(now, deadline):
        fired = 1
        print("timer fired at step", step, "now", now, "late_by", ticks_diff(now, deadline))
print("timer fired", fired, "final now", now)

# 5. Long durations accumulate across calls with gaps < 2**29 (6.2 days): 10 days in 6 h gaps,
#    starting 1 s before the wrap, so the clock wraps many times (2**30 ms ~ 12.4 days).
now = PERIOD - 1000
total = 0
gap = 6 * 3600 * 1000
for _ in range(40):
    nxt = ticks_add(now, gap)
    total += ticks_diff(nxt, now)
    now = nxt
print("accumulated_ms", total, "days", total // 86400000, "now", now)

if ON_MPY:
    # Also checked against the VM: 90 tick values x 10 deltas (no output: must match CPython).
    assert n_checked == len(POINTS) * len(DELTAS), n_checked
print("done")
