"""Replay real homes through the hub's detector and its sensor-coverage measure.

    .venv/bin/python bench/sensor_coverage.py [DATA] [--variants]

For each home (bench/datasets, the frames the hub receives, as bench/inactivity_eval.py) the
frames and a tick a minute go through shared.inactivity as hub/home.py feeds it, and every
input through hub/coverage.Coverage, the class the hub runs, with spells left out while the
detector believes the resident away. Prints, at each new day, the figure (the mean wait an
emergency would have before the hub's next input, over the last whole days) and the days
hub fault 210 would be raised and cleared (docs/inactivity.md, *Sensor coverage*).
`--variants` adds each home with its busiest PIR only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.datasets import load_all  # noqa: E402
from bench.datasets.stream import DAY_S, Home, hub_frames  # noqa: E402
from bench.inactivity_eval import one_pir  # noqa: E402
from hub.coverage import Coverage  # noqa: E402
from shared import inactivity as I  # noqa: E402

_TICKS = 0x3FFFFFFF


def replay(home: Home) -> tuple[list[int | None], list[tuple[int, int]]]:
    """(figure at each new day, [(day, +1 raised / -1 cleared)])."""
    cov, det = Coverage(), I.Inactivity()
    inputs = sorted((f.t, f.source) for f in hub_frames(home))
    series: list[int | None] = []
    verdicts: list[tuple[int, int]] = []
    i, t, end = 0, home.start, home.end  # Home.end is computed on each read
    while t < end:
        while i < len(inputs) and inputs[i][0] <= t:
            ft, src = inputs[i]
            ms = int(ft * 1000)
            if det.state == I.ST_AWAY:
                cov.unreliable()
            det.activity(ms & _TICKS, int(ft % DAY_S) * 1000, src)
            if cov.input(ms, ms):  # wall = mono here: the data's local seconds
                fig = cov.figure()
                series.append(fig["unseen_mean_min"] if fig else None)
                v = cov.decide()
                if v:
                    verdicts.append((len(series), v))
            i += 1
        det.tick(int(t * 1000) & _TICKS, int(t % DAY_S) * 1000)
        if det.state == I.ST_AWAY:
            cov.unreliable()
        t += 60
    return series, verdicts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                   / "shared" / "data"))
    ap.add_argument("--variants", action="store_true", help="also each home with one PIR")
    a = ap.parse_args(argv)
    root = Path(a.data)
    if (root / "inactivity").is_dir():
        root = root / "inactivity"
    unknown: list[str] = []
    homes = load_all(root, unknown)
    if unknown:
        print(f"not evaluated, no loader for: {', '.join(unknown)}", file=sys.stderr)
    if not homes:
        print(f"no data sets under {root}", file=sys.stderr)
        return 2
    if a.variants:
        homes += [one_pir(h) for h in homes]
    for home in homes:
        series, verdicts = replay(home)
        days = " ".join("-" if x is None else str(x) for x in series)
        said = ", ".join(f"day {d} {'raised' if v > 0 else 'cleared'}" for d, v in verdicts)
        print(f"{home.name}: unseen mean (min) at each new day: {days}")
        print(f"  fault 210: {said or 'never raised'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
