"""Fixtures shared by every test. Runtime helpers live in tests/mpy_runtime.py."""

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = REPO_ROOT / "tests"
# `import shared.x` in-process, and `import mpy_runtime` from any test directory.
for _p in (str(REPO_ROOT), str(TESTS_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import mpy_runtime  # noqa: E402  (needs the path set up above)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def micropython():
    """`micropython(code_or_script_path, fuel=..., args=...)` -> guest stdout.

    One compiled wasm module per session; each call is a fresh MicroPython VM (~5-20 ms).
    Use mpy_runtime.run_micropython_result for stderr and fuel used.
    """
    mpy_runtime.warm_up()
    return mpy_runtime.run_micropython


@pytest.fixture(scope="session")
def cpython():
    """`cpython(code_or_script_path, args=...)` -> stdout of a fresh CPython subprocess."""
    return mpy_runtime.run_cpython
