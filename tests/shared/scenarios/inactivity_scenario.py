# Deterministic scenario for shared/inactivity.py, run unchanged under CPython
# and MicroPython; the two outputs must be identical. Three synthetic days at
# 5-minute steps (864 steps): a routine learned from day 1 (min_days=1), a long
# nap, pre-alarms of which every second is answered with a button press, a trip
# out (door, away, back through the door), a save and restore through
# to_bytes()/from_bytes() on day 2 at 12:00, the tick counter wrapping on day 2
# at 06:00, and a collapse at 10:00 on day 3 that pre-alarms and alarms.
# Prints one line per event and the sha256 of the final to_bytes().
# MicroPython-safe: no typing, no f-string "=" specifiers, no random module.
# Run: .venv/bin/python tests/mpy_runtime.py [--cpython] THIS_FILE
import binascii
import hashlib

from shared import inactivity as ina
from shared.inactivity import Inactivity
from shared.ticks import PERIOD, ticks_add

STEP = 5 * 60_000
DAY_STEPS = 288
CFG = {
    "default_ms": 4 * 3_600_000,
    "days": 3,
    "min_days": 1,
    "prealarm_ms": 10 * 60_000,
    "away_after_ms": 10 * 60_000,
}
NAMES = (
    (ina.EV_PREALARM, "PREALARM"),
    (ina.EV_ALARM, "ALARM"),
    (ina.EV_CLEARED, "CLEARED"),
    (ina.EV_AWAY, "AWAY"),
    (ina.EV_HOME, "HOME"),
)

seed = 12345


def lcg():
    # ZX81 generator: small ints only, identical on both runtimes
    global seed
    seed = (seed * 75 + 74) % 65537
    return seed


def report(step, ev, det):
    for bit, name in NAMES:
        if ev & bit:
            print(
                "%d %s still=%d thr=%d days=%d state=%d"
                % (step, name, det.still_ms, det.threshold_ms, det.learned_days, det.state)
            )


det = Inactivity(**CFG)
now = PERIOD - 30 * 3_600_000  # the tick counter wraps 30 h in (day 2, 06:00)
answer = -1  # step at which a pre-alarm is answered with a press
prealarms = 0
for step in range(3 * DAY_STEPS):
    day = step // DAY_STEPS
    s = step % DAY_STEPS  # 5-minute slot of the day
    tod = s * STEP
    src = -1
    r = lcg()
    awake = 84 <= s < 270  # 07:00 to 22:30
    if day == 0 and 156 <= s < 210:  # 13:00-17:30: a long nap
        awake = False
    if day == 1 and s == 168:  # 14:00: walks to the door and leaves
        src = ina.SRC_MOTION
    elif day == 1 and (s == 169 or s == 170):
        src = ina.SRC_DOOR
    elif day == 1 and 170 < s < 204:  # out until 17:00
        awake = False
    elif day == 1 and s == 204:  # comes back: door, then moves about
        src = ina.SRC_DOOR
    elif day == 2 and s >= 120:  # 10:00 on day 3: collapse
        awake = False
    if step == answer:
        src = ina.SRC_PRESS
    elif src < 0 and awake and r % 3 == 0:
        src = ina.SRC_MOTION
    if src >= 0:
        ev = det.activity(now, tod, src)
    else:
        ev = det.tick(now, tod)
    if ev & ina.EV_PREALARM:
        prealarms += 1
        if prealarms % 2 == 0:  # every second pre-alarm is answered at once
            answer = step + 1
    report(step, ev, det)
    if step == 432:  # day 2, 12:00: the hub restarts
        det = Inactivity.from_bytes(det.to_bytes(), now, **CFG)
        print("%d RESTORED still=%d thr=%d" % (step, det.still_ms, det.threshold_ms))
    now = ticks_add(now, STEP)
print("sha256 " + binascii.hexlify(hashlib.sha256(det.to_bytes()).digest()).decode())
