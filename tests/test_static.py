"""Static checks: mypy on device code against the ESP32 stubs, ruff on the whole repo.

Configuration lives in pyproject.toml ([tool.mypy], [tool.ruff]). Same commands by hand:
    .venv/bin/mypy shared firmware
    .venv/bin/ruff check .
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TYPINGS = REPO_ROOT / "typings"
INSTALL_HINT = (
    "the MicroPython ESP32 stubs are missing from ./typings; install them (not into the venv:"
    " they shadow the standard library) with\n"
    "    .venv/bin/pip install --target typings micropython-esp32-stubs==1.29.0.post1"
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def _mypy(*targets: str) -> subprocess.CompletedProcess[str]:
    if not (TYPINGS / "machine.pyi").is_file() or not (TYPINGS / "stdlib" / "VERSIONS").is_file():
        pytest.fail(INSTALL_HINT)
    return _run("mypy", "--config-file", str(REPO_ROOT / "pyproject.toml"), *targets)


def test_mypy_device_code():
    targets = [d for d in ("shared", "firmware") if any((REPO_ROOT / d).rglob("*.py"))]
    proc = _mypy(*targets)
    assert proc.returncode == 0, f"mypy {' '.join(targets)}:\n{proc.stdout}{proc.stderr}"


def test_mypy_uses_esp32_stubs(tmp_path):
    # Guards the configuration itself: against CPython's typeshed this probe would pass.
    probe = tmp_path / "probe.py"
    probe.write_text("import time\n\ntime.monotonic()\n")
    proc = _mypy(str(probe))
    assert proc.returncode == 1 and '"monotonic"' in proc.stdout, (
        "mypy is not checking against ./typings (ESP32 stubs); check [tool.mypy] in"
        f" pyproject.toml\n{proc.stdout}{proc.stderr}"
    )


def test_ruff():
    proc = _run("ruff", "check", "--output-format", "concise", ".")
    assert proc.returncode == 0, f"ruff check .:\n{proc.stdout}{proc.stderr}"
