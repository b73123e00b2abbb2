"""Fixtures shared by every test. Runtime helpers live in tests/mpy_runtime.py."""

import asyncio
import os
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

# The hub's periodic-task guard raises instead of reporting a fault (hub/daemon.py): a test, and
# any hub process a test starts, must see a bug rather than a logged fault 208.
os.environ["CAREBEACON_RAISE_TASK_ERRORS"] = "1"


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


@pytest.fixture
def system_bus(monkeypatch: pytest.MonkeyPatch):
    """A private dbus-daemon standing in for the system bus; bleak finds it through the env."""
    from hil.sim.dbus_session import PrivateSystemBus

    with PrivateSystemBus() as bus:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
        yield bus


@pytest.fixture
def run(system_bus):
    """run(body, timeout=15, **double_options): await body(double) with a BlueZ double serving
    the private bus, in a fresh event loop (bleak keeps one BlueZ manager per loop)."""
    from hil.sim.bluez import BlueZDouble

    def runner(body, timeout: float = 15.0, **opts):
        async def main():
            async with BlueZDouble(system_bus.address, **opts) as bz:
                return await asyncio.wait_for(body(bz), timeout)

        return asyncio.run(main())

    return runner
