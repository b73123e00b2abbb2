"""bench/hub_latency.py runs end to end with tiny counts and prints every figure it promises
(their values are the bench's business, not a test's)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(90)
def test_hub_latency_bench_prints_its_figures(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "hub_latency.py"), "--frames", "5", "--burst",
         "10", "--idle-s", "1", "--devices", "1", "--dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=80)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    ms = r"p50 +[\d.]+ ms +p99 +[\d.]+ ms"
    for pattern in (
        rf"frame -> PUBACK \(HubCore \+ Store FULL \+ Uplink\), +5 frames: +{ms}",
        rf"bare paho QoS 1 publish -> PUBACK, +5: +{ms}",
        rf"one SQLite FULL commit \(Store\.add\), +5: +{ms}",
        r"ratio hub p50 / bare p50: [\d.]+x; goal .* = [\d.]+ ms: (met|NOT met)",
        r"burst: 10 alarms fed at once -> all delivered in [\d.]+ s: \d+ events/s",
        r"RSS [\d.]+ MB \(peak [\d.]+ MB\); goal <= 40 MB: (met|NOT met)",
        r"idle CPU over 1 s: [\d.]+ % of a core; goal <= 1 %: (met|NOT met)",
    ):
        assert re.search(pattern, text), f"missing /{pattern}/ in:\n{text}"
