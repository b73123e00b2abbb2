# Runs on MicroPython and CPython alike (repository root on sys.path): a
# scripted button session -- contact bounce, glitches, chatter, taps, a long
# press, multi-presses, a stuck button, then random presses -- that crosses the
# tick wrap. Prints one line per event ("<ms since start> <EVENT> attrs...");
# the output must be identical on both runtimes.
from shared.button import (
    EV_LONG,
    EV_MULTI,
    EV_PRESS,
    EV_RELEASE,
    EV_STUCK,
    EV_UNSTUCK,
    Button,
)
from shared.ticks import PERIOD, ticks_add, ticks_diff

START = PERIOD - 20000  # the tick wraps 20 s into the session
NAMES = (
    (EV_PRESS, "PRESS"),
    (EV_LONG, "LONG"),
    (EV_STUCK, "STUCK"),
    (EV_RELEASE, "RELEASE"),
    (EV_UNSTUCK, "UNSTUCK"),
    (EV_MULTI, "MULTI"),
)

b = Button()
t = 0  # ms since START
level = False
rng = 1
wrapped = False
calls = 0


def rnd(lo, hi):
    """Deterministic pseudo-random int in [lo, hi] (ZX81 LCG, small ints only)."""
    global rng
    rng = (rng * 75 + 74) % 65537
    return lo + rng % (hi - lo + 1)


def show(ev):
    for bit, name in NAMES:
        if ev & bit:
            print(
                t,
                name,
                "press_at=" + str(ticks_diff(b.press_at, START)),
                "held=" + str(b.held_ms),
                "count=" + str(b.count),
                "pressed=" + str(int(b.is_pressed)),
            )


def hold(new_level, dur, step_lo=3, step_hi=12):
    """Set the level at once, then sample it (update or poll) until dur has passed."""
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
        show(b.update(now, level) if first or rnd(0, 3) else b.poll(now))
        first = False
        t += rnd(step_lo, step_hi)
    t = end


def bounce(target):
    for i in range(rnd(0, 4)):
        hold(target if i % 2 == 0 else not target, rnd(1, 5), 1, 2)


def tap(hold_ms, rest_ms):
    bounce(True)
    hold(True, hold_ms)
    bounce(False)
    hold(False, rest_ms)


print("scenario button")
hold(False, 500)
for _ in range(3):  # test gesture: three taps
    tap(rnd(80, 200), rnd(150, 300))
hold(False, 1000)
for _ in range(10):  # EMI spikes shorter than the debounce time
    hold(True, rnd(1, 30), 1, 3)
    hold(False, rnd(100, 300))
tap(1500, 1000)  # long press
chatter_end = t + 2000
while t < chatter_end:  # a failing contact: never stable for 50 ms
    hold(not level, rnd(3, 20), 1, 4)
hold(False, 1000)
for _ in range(5):
    tap(rnd(60, 150), rnd(100, 250))
hold(False, 800)
tap(100, 200)
tap(100, 1000)  # two taps: no multi-press
bounce(True)
hold(True, 16000, 100, 500)  # stuck: the tick wraps meanwhile
hold(False, 20, 2, 4)  # a glitch while stuck
hold(True, 16000, 100, 500)
bounce(False)
hold(False, 2000)
for _ in range(40):  # random presses of any length
    hold(rnd(0, 1) == 1, rnd(1, 1500), 2, 40)
hold(False, 3000, 5, 50)
print("calls", calls, "end", t)
