# Cost per sample of shared.fall.FallDetector.update under MicroPython.
#
# Run by bench/fall_eval.py through tests/mpy_runtime.py: the script is copied into a temp
# folder next to the sample files it names, so the guest sees both (the repository is
# mounted read-only and holds no data). Arguments:
#     SETTINGS RATE FILE... SETTINGS: "impact_mg=3000,posture_deg=45" or "-" for defaults;
#                           RATE: Hz; FILE: int16 little-endian x, y, z milli-g, interleaved
# For each file it prints one line:
#     cost FILE SAMPLES LOOP EMPTY DETECTOR BYTES EVENTS
# LOOP = cost of the bare driving loop (reading the samples, advancing the clock), EMPTY =
# the same loop calling a method that does nothing with the same four arguments (the
# baseline), DETECTOR = the same loop calling FallDetector.update, all in wasm fuel
# (deterministic instruction counts) or, without the runner's `host` module, in microseconds
# (on a board: mpremote cp -r shared : + mpremote cp samples.bin : + mpremote run this file;
# with no arguments it reads samples.bin at 50 Hz with the default settings).
# BYTES = heap bytes allocated by the detector run beyond what the same loop allocates
# with the empty method (gc off; the goal is 0), EVENTS = OR of
# the event masks seen. Everything measured in this one run, so the ratios are comparable.
import gc
import sys
from array import array

from shared.fall import FallDetector

try:
    import json

    import host  # tests/mpy_runtime.py

    UNIT = "fuel"

    def _mark():
        return json.loads(host.call("fuel", "[]"))["value"]

    def _spent(start):
        return start - _mark()

except ImportError:
    import time

    UNIT = "us"

    def _mark():
        return time.ticks_us()

    def _spent(start):
        return time.ticks_diff(time.ticks_us(), start)


class Empty:
    def update(self, now_ms, x, y, z):
        return 0


def loop_only(a, n, step):
    t = 0
    ev = 0
    i = 0
    k = 0
    while i < n:
        ev |= a[k] ^ a[k + 1] ^ a[k + 2]  # touch the samples as the real loops do
        t += step
        i += 1
        k += 3
    return ev


def drive(obj, a, n, step):
    upd = obj.update
    t = 0
    ev = 0
    i = 0
    k = 0
    while i < n:
        ev |= upd(t, a[k], a[k + 1], a[k + 2])
        t += step
        i += 1
        k += 3
    return ev


def parse_settings(text):
    kw = {}
    if text != "-":
        for part in text.split(","):
            name, value = part.split("=")
            kw[name] = int(value)
    return kw


def read_samples(path):
    with open(path, "rb") as f:
        raw = f.read()
    return array("h", bytearray(raw))  # bytearray: raw int16s (bytes would be one per byte)


def measure(path, kw, rate=50):
    a = read_samples(path)
    n = len(a) // 3
    step = 1000 // rate
    c = _mark()
    loop_only(a, n, step)
    loop = _spent(c)
    c = _mark()
    drive(Empty(), a, n, step)
    empty = _spent(c)
    det = FallDetector(rate_hz=rate, **kw)
    c = _mark()
    drive(det, a, n, step)
    cost = _spent(c)
    was = gc.isenabled()
    gc.disable()
    e = Empty()
    det = FallDetector(rate_hz=rate, **kw)
    b0 = gc.mem_alloc()
    drive(e, a, n, step)  # the loop's own one-off allocations (the bound method, ...)
    b1 = gc.mem_alloc()
    ev = drive(det, a, n, step)
    used = gc.mem_alloc() - b1 - (b1 - b0)
    if was:
        gc.enable()
    name = path.rsplit("/", 1)[-1]
    print("cost %s %d %d %d %d %d %d" % (name, n, loop, empty, cost, used, ev))


def main(argv):
    print("unit", UNIT)
    if len(argv) < 4:  # e.g. `mpremote run` on a board passes no arguments
        argv = [argv[0] if argv else "", "-", "50", "samples.bin"]
    kw = parse_settings(argv[1])
    rate = int(argv[2])
    here = argv[0].rsplit("/", 1)[0] if "/" in argv[0] else "."
    for name in argv[3:]:
        measure(name if "/" in name else here + "/" + name, kw, rate)


main(sys.argv)
