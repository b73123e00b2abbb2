"""bench/energy_budget.py runs on the current firmware and the battery goals hold (hub 0.8 s)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_energy_budget_meets_the_goals():
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "energy_budget.py")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for board in ("esp32c3-supermini-button", "esp32c3-supermini-pir-am312",
                  "m5stickc-plus2-bracelet", "esp32-devkit-pir-hcsr501"):
        assert "== " + board in out
    assert out.count("MET") == 3 and "NOT MET" not in out
