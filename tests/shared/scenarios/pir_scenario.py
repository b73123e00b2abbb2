# Runs on MicroPython and CPython alike (repository root on sys.path): two
# days of one PIR -- warm-up noise, activity with lock-out noise, stillness,
# a stuck output, a silent sensor, late calls -- crossing the tick wrap.
# Prints one line per event ("<ms since start> <EVENT> attrs..."); the output
# must be identical on both runtimes.
from shared.pir import (
    EV_AFTER_STILL,
    EV_MOTION,
    EV_READY,
    EV_SILENT,
    EV_SILENT_CLEARED,
    EV_STUCK,
    EV_SUMMARY,
    EV_UNSTUCK,
    Pir,
)
from shared.ticks import PERIOD, ticks_add, ticks_diff

MIN = 60000
START = PERIOD - 30 * MIN  # the tick wraps 30 min into the session

p = Pir()
t = 0  # ms since START
level = False
rng = 7
wrapped = False
calls = 0


def rnd(lo, hi):
    """Deterministic pseudo-random int in [lo, hi] (ZX81 LCG, small ints only)."""
    global rng
    rng = (rng * 75 + 74) % 65537
    return lo + rng % (hi - lo + 1)


def show(ev):
    if ev & EV_READY:
        print(t, "READY")
    if ev & EV_SUMMARY:
        print(
            t,
            "SUMMARY",
            "count=" + str(p.summary_count),
            "active=" + str(p.summary_active_ms),
            "end=" + str(ticks_diff(p.summary_end, START)),
            "intervals=" + str(p.summary_intervals),
        )
    if ev & EV_MOTION:
        print(t, "MOTION", "at=" + str(ticks_diff(p.motion_at, START)))
    if ev & EV_AFTER_STILL:
        print(t, "AFTER_STILL", "still_ms_before=" + str(p.still_ms_before))
    for bit, name in (
        (EV_STUCK, "STUCK"),
        (EV_UNSTUCK, "UNSTUCK"),
        (EV_SILENT, "SILENT"),
        (EV_SILENT_CLEARED, "SILENT_CLEARED"),
    ):
        if ev & bit:
            print(t, name, "since_motion=" + str(p.since_motion_ms))


def hold(new_level, dur, step):
    """Set the output at once (an update), then poll every step until dur has passed."""
    global t, level, wrapped, calls
    level = new_level
    end = t + dur
    first = True
    while t < end:
        now = ticks_add(START, t)
        if not wrapped and now < START:
            wrapped = True
            print(t, "wrapped")
        calls += 1
        show(p.update(now, level) if first else p.poll(now))
        first = False
        t += step
    t = end


def activity(minutes):
    end = t + minutes * MIN
    while t < end:
        hold(True, rnd(1500, 6000), 500)
        hold(False, rnd(500, 20000), 1000)  # under 2.5 s: the next edge is noise


print("scenario pir")
p.start(START)
activity(1)  # warm-up: the output is meaningless and must be ignored
activity(20)
hold(False, 40 * MIN, 10000)  # stillness: empty summaries
activity(5)  # the first motion after stillness
hold(False, 2 * MIN, 10000)
hold(True, 35 * MIN, 30000)  # stuck high
hold(False, 5 * MIN, 10000)
hold(False, 49 * 60 * MIN, 5 * MIN)  # silent sensor
activity(3)  # clears the silence
hold(False, 22 * MIN, 22 * MIN)  # one late call: collapsed summaries
hold(False, 10 * MIN, 10000)
activity(10)
print("calls", calls, "end", t)
