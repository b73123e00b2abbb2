"""Every tests/shared/scenarios/*.py prints the same lines on CPython and on MicroPython.

A scenario is a plain script: it imports shared.* and prints deterministic lines (no
addresses, floats' reprs, dict/set orders, exception reprs or paths). Add a file there and it
is picked up here; run one by hand with
    .venv/bin/python tests/mpy_runtime.py tests/shared/scenarios/NAME.py
    .venv/bin/python tests/mpy_runtime.py --cpython tests/shared/scenarios/NAME.py
"""

import difflib
from pathlib import Path

import pytest

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
SCENARIOS = sorted(p for p in SCENARIOS_DIR.glob("*.py") if not p.name.startswith("_"))


def _diff(cpy: str, mpy: str, limit: int = 60) -> str:
    lines = list(
        difflib.unified_diff(
            cpy.splitlines(), mpy.splitlines(), "CPython", "MicroPython", lineterm="", n=2
        )
    )
    more = f"\n... {len(lines) - limit} more diff lines" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


@pytest.mark.parametrize("script", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_same_output_on_cpython_and_micropython(script, micropython, cpython):
    cpy = cpython(script)
    mpy = micropython(script)
    assert cpy.strip(), f"{script.name} printed nothing on CPython"
    assert cpy == mpy, f"{script.name}: output differs between runtimes\n{_diff(cpy, mpy)}"


def test_there_are_scenarios():
    assert SCENARIOS, f"no scenarios found in {SCENARIOS_DIR}"
