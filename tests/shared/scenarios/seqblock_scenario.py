# Scenario: shared/seqblock.py through deep sleeps, power losses and interrupted commits.
# Prints deterministic lines that must be identical on CPython and MicroPython
# (tests/shared/test_cross_runtime.py); checks "never repeated" itself and raises if not.
from shared.seqblock import SEQ_MAX, SeqBlock

rng = 12345


def rnd(n):
    """Deterministic pseudo-random int in [0, n) (ZX81 LCG: small ints only)."""
    global rng
    rng = (rng * 75 + 74) % 65537
    return rng % n


nvs = 0  # the committed limit in "NVS"
sb = SeqBlock(nvs, 8)
used = {}
line = []
for step in range(400):
    r = rnd(100)
    if r < 80:
        if sb.needs_commit():
            nvs = sb.reservation()
            sb.committed(nvs)
            line.append("c%d" % nvs)
        n = sb.take()
        if n in used:
            raise AssertionError("number %d repeated" % n)
        used[n] = step
        line.append(str(n))
    elif r < 90:  # deep sleep: RTC memory keeps `next`
        keep = sb.next
        sb = SeqBlock(nvs, 8)
        ok = sb.resume(keep)
        line.append("s%d%s" % (keep, "" if ok else "!"))
    elif r < 96:  # power loss
        sb = SeqBlock(nvs, 8)
        line.append("P%d" % sb.next)
    else:  # power lost during a commit: before or after it became durable
        if sb.needs_commit() and r % 2:
            nvs = sb.reservation()
        sb = SeqBlock(nvs, 8)
        line.append("C%d" % sb.next)
    if len(line) >= 16:
        print(" ".join(line))
        line = []
print(" ".join(line))
print("used", len(used), "max", max(used), "nvs", nvs)

# Stale or corrupted RTC memory is refused; the top of the number space stops with an error.
sb = SeqBlock(100, 8)
print("resume", sb.resume(101), sb.resume(91), sb.resume(92), sb.resume(100), sb.next)
top = SeqBlock(SEQ_MAX - 2, 8)
top.committed(top.reservation())
print("top", top.limit == SEQ_MAX + 1, top.take(), top.take(), top.take())
try:
    top.reservation()
    print("no error")
except ValueError as e:
    print("exhausted:", e)
