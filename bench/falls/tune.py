"""Choose FallDetector parameters on a set of subjects of one data set (grid search).

    .venv/bin/python bench/falls/tune.py sisfall|umafall [DATA] [--rate 50] [--jobs N]
        [--grid "impact_mg=2000,2500,3000 posture_deg=30,45,60"] [--top 15] [--fold A|B|all]

Fold A (the default) loads only the DEV subjects (bench/falls/score.py): what the waist
ships (WAIST) and half of the 2-fold subject cross-validation. Fold B tunes on the other
subjects with the same grid and rule, the other half: every subject is then scored once by
settings tuned without it. `--fold all` tunes on every subject: what the bracelet ships
(the FallDetector defaults), judged by bench/falls/loso.py's leave-one-subject-out CV.
Rule, fixed before looking at the results (docs/fall-detection.md):
  1. keep the settings whose false-alarm share on the tuning subjects is at most the goal
     (2 % SisFall, 3 % UMAFall);
  2. among them the highest sensitivity; ties: fewer false alarms, then the shorter median
     delay (decision time where there are no onset labels), then the earlier grid entry
     (the grids list the plain, default-like values first).
Prints the best settings, then the top of the ranking, so neighbours can be compared (a
setting whose neighbours are much worse is luck, not a choice).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.falls import Trial, load  # noqa: E402
from bench.falls.score import DEV_SUBJECTS, Outcome, run_all, summarize  # noqa: E402

GOAL_FA = {"sisfall": 0.02, "umafall": 0.03}
GRIDS = {
    # Waist: the device's upright axis is a fact of the mounting (SisFall's belt device reads
    # -1 g on y when standing), so up_axis is fixed; up_deg=90 / lie_deg=10 switch the
    # upright-before / lying-after tests off and come first (the plain values).
    "sisfall": "impact_mg=2250,2000,2500,2750,3000 posture_deg=35,45 still_mg=80,120 "
    "up_deg=90,75,60 lie_deg=10,45,55,65",
    # Wrist: the score rule (shared/fall_score.py; fixed points, the threshold score_min is
    # tuned, the middle value first); posture_deg and gaps play no part in it.
    "umafall": "score_min=5,4,6,3 impact_mg=2750,2500,3000,3250,3500 still_mg=80,50,120 "
    "still_ms=1500,2500 window_ms=5000,7500,10000",
}
# The wrist's conjunction grid of the previous round (no up_axis: a forearm has none; gaps=1
# lets the quiet blocks be interrupted by arm movement in one resting posture), for --grid.
CONJUNCTION_GRID = ("score_min=0 impact_mg=2750,2500,3000,3250,3500 posture_deg=45,35,55,65 "
                    "still_mg=80,50,120 still_ms=1500,2500 window_ms=5000,7500,10000 gaps=0,1")
FIXED = {"sisfall": "score_min=0 up_axis=-2 still_ms=1500 window_ms=10000", "umafall": ""}


def peak2(t: Trial) -> int:
    """The largest |a|^2 of a trial, clamped as the detector clamps."""
    a = t.xyz
    best = 0
    for i in range(0, len(a), 3):
        x, y, z = (max(-16384, min(16383, v)) for v in a[i:i + 3])
        m2 = x * x + y * y + z * z
        if m2 > best:
            best = m2
    return best


def parse_grid(spec: str) -> list[dict[str, int]]:
    names: list[str] = []
    values: list[list[int]] = []
    for part in spec.split():
        name, vals = part.split("=", 1)
        names.append(name)
        values.append([int(v) for v in vals.split(",")])
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def run_grid(trials: list[Trial], grid: list[dict[str, int]], fixed: dict[str, int],
             jobs: int = 0) -> list[list[Outcome]]:
    """Per grid entry, the outcome of every trial (in `trials` order). A trial whose largest
    |a| stays below every impact_mg of the grid never alarms: only the others are run
    (exact, and 2-3 times faster)."""
    low = min(p.get("impact_mg", fixed.get("impact_mg", 2750)) for p in grid) ** 2
    busy = [i for i, t in enumerate(trials) if peak2(t) >= low]
    table = []
    for params in grid:
        row = [Outcome(t, []) for t in trials]
        for i, o in zip(busy, run_all([trials[i] for i in busy], fixed | params, jobs)):
            row[i] = o
        table.append(row)
    return table


def rank(table: list[list[Outcome]], grid: list[dict[str, int]], goal: float,
         keep: Callable[[Trial], bool] = lambda t: True) -> list[tuple]:
    """The rule, on the trials `keep` selects: (over the FA goal, -sensitivity, FA share,
    median delay, grid index, settings, Summary), best first."""
    ranked = []
    for k, (params, row) in enumerate(zip(grid, table)):
        s = summarize([o for o in row if keep(o.trial)])
        delays = s.fall_all.delays or s.fall_all.decisions
        med = statistics.median(delays) if delays else 99.0
        ranked.append((s.adl_all.share > goal, -s.fall_all.share, s.adl_all.share, med, k,
                       params, s))
    ranked.sort(key=lambda r: r[:5])
    return ranked


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", choices=sorted(GOAL_FA))
    ap.add_argument("data", nargs="?", default=None, help="data folder (default ../shared/data)")
    ap.add_argument("--rate", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--grid", default=None)
    ap.add_argument("--fixed", default=None, help="settings kept for every grid point, e.g. "
                    '"settle_ms=1000 window_ms=10000" (default: FIXED)')
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--fold", choices=("A", "B", "all"), default="A",
                    help="A: the DEV subjects, B: the others, all: every subject")
    ns = ap.parse_args(argv)
    t_start = time.time()
    dev = DEV_SUBJECTS[ns.dataset]
    if ns.fold == "A":
        trials = load(ns.dataset, ns.data, ns.rate, subjects=dev)
    elif ns.fold == "B":
        trials = [t for t in load(ns.dataset, ns.data, ns.rate) if t.subject not in dev]
    else:
        trials = load(ns.dataset, ns.data, ns.rate)
    spec = ns.fixed if ns.fixed is not None else FIXED[ns.dataset]
    fixed = parse_grid(spec)[0] if spec else {}
    grid = parse_grid(ns.grid or GRIDS[ns.dataset])
    goal = GOAL_FA[ns.dataset]
    print("tune %s, fold %s: %d trials (%s) at %d Hz, %d settings, goal FA <= %.0f %%"
          % (ns.dataset, ns.fold, len(trials), ",".join(sorted({t.subject for t in trials})),
             ns.rate, len(grid), 100 * goal))
    ranked = rank(run_grid(trials, grid, fixed, ns.jobs), grid, goal)
    print("%-4s %-66s %7s %7s %6s" % ("rank", "settings", "sens", "FA", "delay"))
    for i, (_over, _ns, fa, med, _k, params, s) in enumerate(ranked[: ns.top]):
        text = " ".join("%s=%d" % kv for kv in params.items())
        print("%-4d %-66s %6.1f%% %6.2f%% %5.1fs" % (i + 1, text, 100 * s.fall_all.share,
                                                   100 * fa, med))
    best = ranked[0]
    print("best:", " ".join("%s=%d" % kv for kv in (fixed | best[5]).items()),
          "(meets the FA goal on the tuning subjects)" if not best[0]
          else "(NO setting meets the FA goal)")
    print("tuning took %.0f s" % (time.time() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
