"""`./run demo` (until the simulated home exists) walks an alarm through the real core."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_delivers_refuses_forgery_and_alarms():
    out = subprocess.run([sys.executable, "-m", "tools.demo"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert "authenticated ack: STORED" in out
    assert "retries stopped" in out
    assert "refused: bad tag" in out
    assert "pre-alarm" in out and "ALARM to the county platform" in out
