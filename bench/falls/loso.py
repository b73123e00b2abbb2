"""Leave-one-subject-out cross-validation of the tuning rule (docs/fall-detection.md).

    .venv/bin/python bench/falls/loso.py [umafall|sisfall] [DATA] [--rate 50] [--jobs N]

What ships at the wrist is tune.py's rule applied to every UMAFall subject (`--fold all`).
This estimates how that procedure does on a person it has not seen: for each subject, the
rule is applied to the other subjects alone, and the left-out subject is scored with the
settings it chose; the pooled result is the LOSO figure. Every grid entry is run once over
every trial and the rule is then re-applied to subsets of those outcomes, which is exactly
what tune.py on the subset would pick (same outcomes, same ranking) at a twelfth of the cost.

Also prints the rule's choice on all subjects and on folds A and B, and says whether they
are the settings the project ships / uses (bench/falls/score.py), so a grid or detector
change that moves them shows here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.fall_eval import GOALS, print_tables, settings_text, short, verdict  # noqa: E402
from bench.falls import Trial, load  # noqa: E402
from bench.falls.score import (  # noqa: E402
    DEV_SUBJECTS,
    WAIST,
    WAIST_B,
    WRIST,
    WRIST_A,
    WRIST_B,
    Outcome,
    Summary,
    stats,
    summarize,
)
from bench.falls.sisfall import ACTIVITIES  # noqa: E402
from bench.falls.tune import FIXED, GOAL_FA, GRIDS, parse_grid, rank, run_grid  # noqa: E402
from shared.fall import FallDetector  # noqa: E402


def detector_defaults() -> dict[str, int]:
    import inspect

    return {k: p.default for k, p in inspect.signature(FallDetector.__init__).parameters.items()
            if k not in ("self", "rate_hz")}


def same(chosen: dict[str, int], used: dict[str, int]) -> str:
    """'yes' when the settings behave alike: equal after filling in the detector defaults."""
    base = detector_defaults()
    return "yes" if base | chosen == base | used else "NO (uses %s)" % settings_text(used)


def loso(trials: list[Trial], dataset: str, jobs: int = 0, table: list[list[Outcome]] | None
         = None, verbose: bool = True) -> Summary:
    """The pooled leave-one-subject-out outcome of tune.py's rule on `trials`."""
    fixed = parse_grid(FIXED[dataset])[0] if FIXED[dataset] else {}
    grid = parse_grid(GRIDS[dataset])
    goal = GOAL_FA[dataset]
    if table is None:
        table = run_grid(trials, grid, fixed, jobs)
    pooled: list[Outcome] = []
    choices: dict[str, int] = {}
    if verbose:
        print("\n  %-8s %-70s %s" % ("left out", "settings chosen on the others", "its trials"))
    for subj in sorted({t.subject for t in trials}):
        best = rank(table, grid, goal, lambda t, s=subj: t.subject != s)[0]
        mine = [o for o in table[best[4]] if o.trial.subject == subj]
        pooled += mine
        key = settings_text(fixed | best[5])
        choices[key] = choices.get(key, 0) + 1
        if verbose:
            s = summarize(mine)
            print("  %-8s %-70s falls %d/%d, alarms %d/%d%s" % (
                subj, key, s.fall_all.hits, s.fall_all.n, s.adl_all.hits, s.adl_all.n,
                "" if not best[0] else " (no setting met the goal on the others)"))
    if verbose:
        print("  %d distinct settings chosen over %d folds" % (len(choices), sum(choices.values())))
    return summarize(pooled)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", nargs="?", default="umafall", choices=sorted(GOAL_FA))
    ap.add_argument("data", nargs="?", default=None, help="data folder (default ../shared/data)")
    ap.add_argument("--rate", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=0)
    ns = ap.parse_args(argv)
    t0 = time.time()
    trials = load(ns.dataset, ns.data, ns.rate)
    fixed = parse_grid(FIXED[ns.dataset])[0] if FIXED[ns.dataset] else {}
    grid = parse_grid(GRIDS[ns.dataset])
    goal = GOAL_FA[ns.dataset]
    subjects = sorted({t.subject for t in trials})
    print("loso %s: %d trials, %d subjects, %d settings at %d Hz, goal FA <= %.0f %%"
          % (ns.dataset, len(trials), len(subjects), len(grid), ns.rate, 100 * goal))
    table = run_grid(trials, grid, fixed, ns.jobs)
    print("grid run in %.0f s" % (time.time() - t0))

    dev = DEV_SUBJECTS[ns.dataset]
    used_a, used_b = (WRIST_A, WRIST_B) if ns.dataset == "umafall" else (WAIST, WAIST_B)
    for label, keep, used in (
            ("all subjects", lambda t: True, WRIST if ns.dataset == "umafall" else None),
            ("fold A (DEV)", lambda t: t.subject in dev, used_a),
            ("fold B (others)", lambda t: t.subject not in dev, used_b)):
        best = rank(table, grid, goal, keep)[0]
        chosen = fixed | best[5]
        line = "  rule on %-16s %s: %s%s" % (label, settings_text(chosen), short(best[6]),
                                            "" if not best[0] else " (NO setting meets the goal)")
        if used is not None:
            line += "; in score.py: " + same(chosen, used)
        print(line)

    cv = loso(trials, ns.dataset, table=table)
    print()
    print_tables(cv, None, ACTIVITIES if ns.dataset == "sisfall" else {}, ("LOSO CV", ""))
    print("  LOSO CV: " + verdict(cv, GOALS[ns.dataset]))
    print("  LOSO CV: " + short(cv))
    decisions = stats(cv.fall_all.decisions)
    if decisions:
        print("  LOSO CV: decision time after the impact (mean / median / p90): "
              "%.1f / %.1f / %.1f s" % decisions)
    print("loso took %.0f s" % (time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
