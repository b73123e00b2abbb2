"""The report of one rig run: report.md, results.json and latency.png in the run's folder.

    write_report(run_dir, backend="sim", rig="sim", results=[...], started=time.time())

`results`: one dict per scenario: name, outcome (passed / failed / skipped), reason,
duration_s, and the scenario's hil.rig.Metrics (clock, latencies_ms, expected, delivered,
duplicates, notes). Latencies are plotted per clock ("virtual" and "real": the sim's two
sinks, or the real rig), because they measure different paths.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from hil.budget import BUDGET_MS, table
from hil.png import histogram_png
from hil.rig import percentile

CLOCK_NAMES = {"virtual": "simulated home, virtual clock (in-process hub core)",
               "real": "simulated home, real time (hub process, BlueZ double, mosquitto)",
               "rig": "real rig (board, adapter, hub, mosquitto)"}


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "min": min(values), "p50": percentile(values, 50),
            "p90": percentile(values, 90), "p99": percentile(values, 99), "max": max(values),
            "over_budget": sum(v > BUDGET_MS for v in values)}


def _ms(v) -> str:
    return "-" if v is None else f"{v:.0f}"


def write_report(run_dir: Path | str, *, backend: str, rig: str, results: list[dict],
                 started: float) -> Path:
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    series: dict[str, list[float]] = {}
    for r in results:
        m = r.get("metrics") or {}
        if m.get("latencies_ms"):
            series.setdefault(m.get("clock") or "?", []).extend(m["latencies_ms"])
    stats = {k: _stats(v) for k, v in series.items()}
    histogram_png(d / "latency.png",
                  {CLOCK_NAMES.get(k, k): v for k, v in sorted(series.items())}, BUDGET_MS)
    counts = {o: sum(r["outcome"] == o for r in results) for o in ("passed", "failed", "skipped")}
    doc = {"backend": backend, "rig": rig, "started": time.strftime(
        "%Y-%m-%dT%H:%M:%S%z", time.localtime(started)), "duration_s": round(time.time() - started,
                                                                             1),
           "python": sys.version.split()[0], "machine": platform.platform(),
           "budget_ms": BUDGET_MS, "counts": counts, "latency": stats, "scenarios": results}
    (d / "results.json").write_text(json.dumps(doc, indent=1, default=str))

    lines = [f"# carebeacon rig run: {rig} ({backend} backend)", "",
             f"{doc['started']}, {doc['duration_s']} s, on {doc['machine']}. "
             f"**{counts['passed']} passed, {counts['failed']} failed, "
             f"{counts['skipped']} skipped.**", "",
             "## Scenarios", "",
             "| scenario | clock | result | alarms expected | delivered | lost | duplicates "
             "| presses timed | p99 (ms) | notes |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        m = r.get("metrics") or {}
        lat = m.get("latencies_ms") or []
        res = r["outcome"].upper() if r["outcome"] == "failed" else r["outcome"]
        note = "; ".join(m.get("notes") or [])
        if r.get("reason"):
            note = (note + "; " if note else "") + r["reason"]
        lines.append(f"| {r['name']} | {m.get('clock') or '-'} | {res} | "
                     f"{m.get('expected', '-')} | {m.get('delivered', '-')} | "
                     f"{m.get('lost', '-')} | {m.get('duplicates', '-')} | {len(lat)} | "
                     f"{_ms(percentile(lat, 99)) if lat else '-'} | "
                     f"{note.replace('|', '/')[:300]} |")
    lines += ["", "## Press -> platform latency", "", "![latency histogram](latency.png)", "",
              "| clock | n | min | p50 | p90 | p99 | max | over budget |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for k, s in sorted(stats.items()):
        lines.append(f"| {CLOCK_NAMES.get(k, k)} | {s['n']} | {_ms(s['min'])} | {_ms(s['p50'])} "
                     f"| {_ms(s['p90'])} | {_ms(s['p99'])} | {_ms(s['max'])} | "
                     f"{s['over_budget']} |")
    lines += ["", f"Budget: p99 <= {BUDGET_MS} ms. The physical path (docs/hil.md):", "",
              table(), ""]
    (d / "report.md").write_text("\n".join(lines))
    return d
