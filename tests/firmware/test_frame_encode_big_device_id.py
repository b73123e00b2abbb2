"""Encoding a frame for a device id >= 2**30 allocates no more than for a small id.

About three ids in four are >= 2**30 (the installer draws 32 random bits): a big int on
MicroPython (31-bit small ints, as the ESP32 and the wasm build have). Shifting it into
the frame per encode allocated 128 bytes a frame; shared/frame.py copies bytes made once.
Measured with bench/shared_alloc.py's drivers under real MicroPython.
"""

from mpy_runtime import GUEST_ROOT, run_micropython

N_CALLS = 100
WARM_UP = 20


def test_a_big_device_id_costs_no_allocation_per_frame():
    code = "\n".join(
        [
            "import sys",
            f"sys.path.append('{GUEST_ROOT}/bench')",
            "import shared_alloc",
            "for name in ('Codec.encode', 'Codec.encode id>=2**30'):",
            f"    print(name + '|' + str(shared_alloc.measure_alloc(name, {N_CALLS}, {WARM_UP})))",
        ]
    )
    out = dict(line.split("|", 1) for line in run_micropython(code).splitlines() if "|" in line)
    small, big = out["Codec.encode"], out["Codec.encode id>=2**30"]
    assert small.isdigit() and big.isdigit(), out
    assert int(big) == int(small), f"id >= 2**30: {big} bytes per {N_CALLS} frames, small: {small}"
