"""The debounce, PIR and inactivity updates, and reading an acknowledgement's number, allocate
nothing in steady state, on MicroPython.

A reduced run of bench/shared_alloc.py (same drivers and scripted inputs: events happen and
the clock crosses the 2**30 wrap inside the measured calls). Full numbers, with cost per call:
    .venv/bin/python tests/mpy_runtime.py bench/shared_alloc.py
"""

import pytest

from mpy_runtime import GUEST_ROOT, REPO_ROOT, run_micropython

CASES = {  # bench case -> the module file it needs
    "Button.update": "shared/button.py",
    "Pir.update": "shared/pir.py",
    "Inactivity.tick": "shared/inactivity.py",
    # a device reads an ack's claimed number before it verifies (firmware/apps/core.py): a
    # write for a number with nothing pending then costs no allocation (and no HMAC)
    "peek_ack_seq": "shared/frame.py",
}
N_CALLS = 300
WARM_UP = 100


@pytest.fixture(scope="module")
def measured():
    present = [name for name, path in CASES.items() if (REPO_ROOT / path).is_file()]
    if not present:
        return {}
    code = "\n".join(
        [
            "import sys",
            f"sys.path.append('{GUEST_ROOT}/bench')",
            "import shared_alloc",
            f"for name in {present!r}:",
            f"    print(name + '|' + str(shared_alloc.measure_alloc(name, {N_CALLS}, {WARM_UP})))",
        ]
    )
    out = run_micropython(code)
    return dict(line.split("|", 1) for line in out.splitlines() if "|" in line)


@pytest.mark.parametrize("case", list(CASES))
def test_zero_bytes_per_call(case, measured):
    path = CASES[case]
    if not (REPO_ROOT / path).is_file():
        pytest.skip(f"{path} does not exist yet")
    result = measured[case]
    assert result.isdigit(), f"{case} could not be measured: {result}"
    assert int(result) == 0, (
        f"{case} allocated {result} bytes in {N_CALLS} steady-state calls on MicroPython "
        "(goal: 0). Profile it with: .venv/bin/python tests/mpy_runtime.py bench/shared_alloc.py"
    )
