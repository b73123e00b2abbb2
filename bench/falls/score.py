"""Run shared/fall.py over recorded trials and score it the way the issue asks.

- Every trial is streamed from its first sample through a fresh `FallDetector` at the
  trial's rate, exactly as the bracelet feeds it (integer milli-g, one call per sample).
- A **fall trial is detected** when EV_FALL is emitted at or after the labelled fall onset
  (SisFall); an alarm emitted before the onset cannot be about this fall and is counted as
  `early` instead. Without labels (UMAFall) any EV_FALL in a fall trial detects it.
- An **activity trial alarms** when EV_FALL is emitted anywhere in it: the false-alarm
  rate is the share of activity trials that alarm.
- **Delay** = emission of the first qualifying EV_FALL - labelled onset (SisFall only);
  **decision time** = emission - the impact the detector dated the fall at (all sets).

Subject splits for honest tuning (docs/fall-detection.md): every figure scores a subject
with settings chosen without it (2-fold: DEV / the others; LOSO: bench/falls/loso.py).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.falls import Trial
from shared.fall import EV_FALL, FallDetector

DEV_SUBJECTS = {
    # SisFall young adults SA01-SA07 (falls and activities); SA08-SA15 and every elderly
    # subject (activities only) are held out.
    "sisfall": frozenset("SA%02d" % k for k in range(1, 8)),
    # UMAFall subjects 1-6; 7-12 are held out.
    "umafall": frozenset("U%02d" % k for k in range(1, 7)),
}

# The waist parameters for SisFall (the device sits on the belt, not the wrist), chosen on
# DEV_SUBJECTS["sisfall"] by bench/falls/tune.py; up_axis=-2 is the belt device's mounting
# (-y points up: it reads y = -1 g standing), fixed, not tuned; score_min=0: the waist keeps
# the conjunction (no score). The wrist parameters are the FallDetector defaults (the score
# rule), chosen on every UMAFall subject (tune.py umafall --fold all; judged by
# bench/falls/loso.py, the leave-one-subject-out CV of that choice).
WAIST = {"score_min": 0, "impact_mg": 2000, "posture_deg": 35, "still_mg": 80,
         "still_ms": 1500, "window_ms": 10000, "up_axis": -2, "up_deg": 75, "lie_deg": 45}
WRIST: dict[str, int] = {}  # the defaults: the bracelet constructs FallDetector(rate_hz=50)
TUNED_ON = {  # the subjects the shipped settings were chosen on; any other is unseen
    "sisfall": DEV_SUBJECTS["sisfall"],
    "umafall": frozenset("U%02d" % k for k in range(1, 13)),
}

# For the 2-fold subject cross-validation only (not shipped): fold A, the rule on the DEV
# subjects (the wrist's shipped settings until the seventh round), scores the held-out ones;
# fold B, the same grid and rule on the held-out subjects (tune.py --fold B), scores the DEV
# subjects; so every subject is scored once by settings chosen without it.
WRIST_A = {"score_min": 5, "impact_mg": 2750, "still_mg": 120, "still_ms": 2500,
           "window_ms": 7500}
WAIST_B = {"score_min": 0, "impact_mg": 2000, "posture_deg": 35, "still_mg": 120,
           "still_ms": 1500, "window_ms": 10000, "up_axis": -2, "up_deg": 75, "lie_deg": 10}
WRIST_B = {"score_min": 4, "impact_mg": 3000, "still_mg": 50, "still_ms": 1500,
           "window_ms": 10000}


def is_dev(dataset: str, subject: str) -> bool:
    return subject in DEV_SUBJECTS[dataset]


@dataclass
class Outcome:
    trial: Trial
    alarms: list[tuple[int, int]]  # (sample index of EV_FALL, sample index of its impact)

    @property
    def qualifying(self) -> list[tuple[int, int]]:
        on = self.trial.onset
        return [a for a in self.alarms if on is None or a[0] >= on]

    @property
    def hit(self) -> bool:
        return bool(self.qualifying) if self.trial.is_fall else bool(self.alarms)

    @property
    def early(self) -> int:
        return len(self.alarms) - len(self.qualifying) if self.trial.is_fall else 0

    @property
    def delay_s(self) -> float | None:
        q = self.qualifying
        if not self.trial.is_fall or not q or self.trial.onset is None:
            return None
        return (q[0][0] - self.trial.onset) / self.trial.rate_hz

    @property
    def decision_s(self) -> float | None:
        q = self.qualifying if self.trial.is_fall else self.alarms
        return (q[0][0] - q[0][1]) / self.trial.rate_hz if q else None


DETECTOR = FallDetector  # bench/fall_eval.py --detector swaps in another version to compare


def run_trial(trial: Trial, params: dict[str, int]) -> Outcome:
    rate = trial.rate_hz
    det = DETECTOR(rate_hz=rate, **params)
    update = det.update
    a = trial.xyz
    alarms = []
    for i in range(trial.n):
        k = 3 * i
        if update(i * 1000 // rate, a[k], a[k + 1], a[k + 2]) & EV_FALL:
            alarms.append((i, det.fall_at * rate // 1000))
    return Outcome(trial, alarms)


_WORK: list[Trial] = []  # the trials a forked worker sees


def _run_index(job: tuple[int, dict[str, int]]) -> list[tuple[int, int]]:
    return run_trial(_WORK[job[0]], job[1]).alarms


def run_all(trials: Sequence[Trial], params: dict[str, int], jobs: int = 0) -> list[Outcome]:
    """Outcomes of every trial; `jobs` > 1 forks that many workers (0: one per CPU)."""
    jobs = jobs or (os.cpu_count() or 1)
    if jobs <= 1 or len(trials) < 50 or not hasattr(os, "fork"):
        return [run_trial(t, params) for t in trials]
    import multiprocessing

    _WORK[:] = trials
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            alarms = pool.map(_run_index, [(i, params) for i in range(len(trials))], 8)
    finally:
        _WORK[:] = []
    return [Outcome(t, a) for t, a in zip(trials, alarms)]


@dataclass
class Row:
    key: str
    n: int = 0
    hits: int = 0
    early: int = 0
    delays: list[float] = field(default_factory=list)
    decisions: list[float] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.hits / self.n if self.n else 0.0


@dataclass
class Summary:
    falls: dict[str, Row]
    adls: dict[str, Row]
    fall_all: Row
    adl_all: Row


def summarize(outcomes: Sequence[Outcome], key: Callable[[Trial], str] = lambda t: t.activity
              ) -> Summary:
    falls: dict[str, Row] = {}
    adls: dict[str, Row] = {}
    fall_all = Row("all falls")
    adl_all = Row("all activities")
    for o in outcomes:
        t = o.trial
        table, total = (falls, fall_all) if t.is_fall else (adls, adl_all)
        k = key(t)
        row = table.setdefault(k, Row(k))
        for r in (row, total):
            r.n += 1
            r.hits += o.hit
            r.early += o.early
            if o.delay_s is not None:
                r.delays.append(o.delay_s)
            if o.hit and o.decision_s is not None:
                r.decisions.append(o.decision_s)
    return Summary(dict(sorted(falls.items())), dict(sorted(adls.items())), fall_all, adl_all)


def stats(values: Sequence[float]) -> tuple[float, float, float] | None:
    """(mean, median, p90) or None."""
    if not values:
        return None
    v = sorted(values)
    p90 = v[max(0, math.ceil(0.9 * len(v)) - 1)]  # nearest rank
    return statistics.fmean(v), statistics.median(v), p90


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval (low, high) of a share hits/n; (0, 1) for n = 0.

    Wilson rather than the normal approximation: it stays inside [0, 1] and is honest at
    0 or a few hits, which is where the false-alarm counts are."""
    if n <= 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
