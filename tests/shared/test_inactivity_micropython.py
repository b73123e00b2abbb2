"""shared/inactivity.py on MicroPython: no allocation per call."""


def test_no_allocation_per_call_on_micropython(micropython):
    code = """
import gc
from shared.inactivity import Inactivity
d = Inactivity(days=3, default_ms=2 * 3600000)
now = 1000000000  # wraps at step ~1229; kept below 2**30 without an overflow
def step(i):
    global now
    now = now + 60000 if now < 1073681824 else now - 1073681824
    tod = (i * 60000) % 86400000
    day = i // 1440
    r = i % 97
    if day % 3 == 0 and r == 5:
        return d.activity(now, tod, 1)
    if day % 3 == 0 and r == 40:
        return d.activity(now, tod, 2)
    if day % 3 != 2 and r % 7 == 0:
        return d.activity(now, tod, 0 if r % 2 else 3)
    return d.tick(now, tod)
a = 0
evs = 0  # every global exists before measuring (a new one may grow the dict)
for i in range(2000):
    step(i)
gc.disable()
a = gc.mem_alloc()
for i in range(2000, 7000):
    evs |= step(i)
print(gc.mem_alloc() - a, evs)
"""
    assert micropython(code).split() == ["0", "31"]
