"""The tuning protocol of docs/inactivity.md: a grid over the detector's learning settings,
scored on ONE home (default casas-al-smarthome) with the DEV cut instants only.

    .venv/bin/python bench/inactivity_tune.py [DATA] [--home NAME] [--out FILE]

Prints one line per setting: false alarms per day on that home's real stream and the
mean / p90 detection time on its dev cuts, sorted by mean among those within the goal's
false-alarm rate (<= 0.05/day). The other homes, and the test cuts of every home, are
never looked at here: bench/inactivity_eval.py reports them afterwards.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import inactivity_eval as E  # noqa: E402
from bench.datasets import load  # noqa: E402
from bench.datasets.stream import hub_frames  # noqa: E402
from shared import inactivity as I  # noqa: E402

GRID = {
    "rank": (1, 2, 3),
    "margin_pct": (100, 120, 150),
    "buffer_ms": (0, 900_000, 1_800_000, 3_600_000),
    "neighbours": (1, 2),
    "days": (14, 28),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                   / "shared" / "data" / "inactivity"))
    ap.add_argument("--home", default="casas-al-smarthome")
    ap.add_argument("--out", help="also write the table to this file")
    a = ap.parse_args(argv)
    home = load(Path(a.data) / a.home)
    frames = hub_frames(home)
    cuts = E.cut_points(home, phase=0.25, want=150)  # the dev set
    rows = []
    started = time.monotonic()
    for values in itertools.product(*GRID.values()):
        kw = dict(zip(GRID, values, strict=True))
        if kw["rank"] > 3:
            continue
        r = E.replay(home, frames, lambda kw=kw: I.Inactivity(**kw), cuts, "carebeacon")
        rows.append((r.fa_day, r.stat("mean"), r.stat("p90"), r.missed, kw))
    ok = sorted((x for x in rows if x[0] <= E.GOAL_FA), key=lambda x: x[1])
    bad = sorted((x for x in rows if x[0] > E.GOAL_FA), key=lambda x: x[1])
    lines = [f"{home.name}, {len(cuts)} dev cuts, {len(rows)} settings, "
             f"{time.monotonic() - started:.0f} s"]
    lines += [f"{fa:.3f} FA/day  mean {mean:5.2f} h  p90 {p90:5.2f} h  missed {m}  {kw}"
              for fa, mean, p90, m, kw in ok + bad]
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
