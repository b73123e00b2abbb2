"""Replay real homes through the hub's inactivity detector and two baselines.

    .venv/bin/python bench/inactivity_eval.py [DATA] [--quick] [--cuts test|dev]
                                              [--set name=value ...] [--proxies] [-v]

DATA is the data folder (default: ../shared/data next to the repository; its
`inactivity/` subfolder, or the folder itself, holds the data sets). Per home and method
it prints false alarms per day and pre-alarms per day on the real stream, and the
detection time of simulated emergencies (mean, median, p90, misses). Method
(docs/inactivity.md has the reasoning):

- Input: bench/datasets turns each data set into the frames the hub receives (PIR
  ACTIVITY summaries every 5 min and MOTION after 30 min still, through shared.pir; door
  contacts as DOOR), fed exactly as hub/home.py feeds the detector: SRC_MOTION, SRC_DOOR
  for the door and entrance PIRs; ticks = ms & 0x3FFFFFFF (wrapping within the first
  hour), tod = local time of day; a tick every minute. Labels never reach a detector.
- Learning from the start, no peeking: one pass in time order; every alarm on the real
  stream is a false alarm (no data set holds a real emergency).
- Emergencies: at each cut instant the detector (as learned so far) is copied and only
  ticks follow (the person stops moving; no further events) until its alarm or 72 h
  (then a miss, counted as 72 h in the statistics). Cut instants: after a 7-day burn-in,
  evenly strided over the labelled span (a stride that is not a divisor of a day, so
  they fall at all times of day and night), at least 100, skipping labelled absences
  (nobody collapses at home while out). `--cuts dev` uses a different, interleaved set
  (phase 1/4 instead of 1/2 of a stride): the only set settings were ever tuned on.
- Hindsight bounds (bench/inactivity_bound.py), printed under the methods: the fastest
  mean detection any time-of-day line (`bound-tod`), or any line per room of the last
  sign of life (`bound-room`), or any line over the time of day the stillness began
  (`bound-start30` / `bound-start60`: pooled over +-30 / +-60 min of start time), or the
  earlier of the time-of-day and start lines (`bound-either30` / `bound-either60`), could reach
  on the same cuts without a false alarm at home, chosen knowing the whole span; and the
  fastest ANY detector learning only from the past could reach (`bound-any`: the wait to
  the stream's next frame after each cut; `bound-any-fa`: the same with the false alarms
  the goal allows on the span). Not detectors: they say whether the goal is reachable.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.datasets import load_all  # noqa: E402
from bench.datasets.stream import DAY_S, Frame, Home, fmt, hub_frames  # noqa: E402
from bench.inactivity_baselines import CuddihyPercentile, FixedThreshold  # noqa: E402
from bench.inactivity_bound import (  # noqa: E402
    causal_detection_times,
    detection_times,
    either,
    start_detection_times,
)
from shared import inactivity as I  # noqa: E402

_TICKS = 0x3FFFFFFF
BURN_IN_DAYS = 7
HORIZON_S = 72 * 3600
GOAL_FA, GOAL_MEAN_H = 0.05, 3.0


@dataclass
class Result:
    method: str
    days: float
    alarms: list[tuple[float, float]] = field(default_factory=list)  # (time, still s)
    prealarms: int = 0
    delays: list[float] = field(default_factory=list)  # seconds; HORIZON_S = missed
    cut_times: list[float] = field(default_factory=list)

    @property
    def fa_day(self) -> float:
        return len(self.alarms) / self.days

    @property
    def pre_day(self) -> float:
        return self.prealarms / self.days

    def stat(self, which: str) -> float:
        d = sorted(self.delays)
        if not d:
            return math.nan
        if which == "mean":
            return statistics.fmean(d) / 3600
        if which == "median":
            return statistics.median(d) / 3600
        return d[max(0, math.ceil(0.9 * len(d)) - 1)] / 3600  # p90, nearest rank

    @property
    def missed(self) -> int:
        return sum(1 for x in self.delays if x >= HORIZON_S)


def methods(overrides: dict[str, int], door_away: bool = True) -> dict:
    """Method name -> factory. All three get the same away rule and pre-alarm."""
    return {
        "carebeacon": lambda: I.Inactivity(door_away=door_away, **overrides),
        "fixed-12h": lambda: FixedThreshold(door_away=door_away),
        "cuddihy-p95": lambda: CuddihyPercentile(door_away=door_away),
    }


def cut_points(home: Home, phase: float = 0.5, want: int = 120) -> list[float]:
    """At least `want` instants at home after the burn-in, evenly strided (module doc)."""
    lo = max(home.start + BURN_IN_DAYS * DAY_S, home.labelled[0])
    hi = min(home.end, home.labelled[1])
    if hi <= lo:
        return []
    n = want
    while True:
        stride = (hi - lo) / n
        if abs(stride / 3600 - round(stride / 3600)) < 0.05:  # avoid whole hours
            n += 1
            continue
        cuts = [lo + (k + phase) * stride for k in range(n)]
        cuts = [c for c in cuts if not home.away_at(c)]
        if len(cuts) >= want or n > 50 * want:
            return cuts
        n += max(1, (want - len(cuts)) * n // max(len(cuts), 1))


def replay(home: Home, frames: list[Frame], make, cuts: list[float], name: str,
           tick_s: int = 60) -> Result:
    det = make()
    wrapped = getattr(det, "wrapped", True)
    t0 = home.start - 60.0
    base = _TICKS - 3_600_000 if wrapped else 0  # the tick counter wraps in the first hour

    def ms(t: float) -> int:
        v = int((t - t0) * 1000) + base
        return v & _TICKS if wrapped else v

    def tod(t: float) -> int:
        return int((t % DAY_S) * 1000)

    res = Result(name, (home.end - home.start) / DAY_S, cut_times=list(cuts))

    def note(ev: int, t: float) -> None:
        if ev & I.EV_PREALARM:
            res.prealarms += 1
        if ev & I.EV_ALARM:
            res.alarms.append((t, getattr(det, "still_ms", 0) / 1000))

    items: list[tuple[float, int, int]] = [(c, 0, -1) for c in cuts]
    items += [(f.t, 1, f.source) for f in frames if f.t >= t0]
    items.sort()
    next_tick = t0
    for t, kind, src in items:
        while next_tick <= t:
            note(det.tick(ms(next_tick), tod(next_tick)), next_tick)
            next_tick += tick_s
        if kind == 0:
            res.delays.append(_emergency(det, t, ms, tod, tick_s))
        else:
            note(det.activity(ms(t), tod(t), src), t)
    while next_tick <= home.end:
        note(det.tick(ms(next_tick), tod(next_tick)), next_tick)
        next_tick += tick_s
    return res


def _emergency(det, c: float, ms, tod, tick_s: int) -> float:
    """Seconds from the cut at `c` to the alarm of a copy fed only ticks (HORIZON_S: none)."""
    d = copy.deepcopy(det)
    if d.state == I.ST_ALARM:
        return 0.0  # already calling for help
    t = c
    while t - c < HORIZON_S:
        if d.tick(ms(t), tod(t)) & I.EV_ALARM:
            return t - c
        t += tick_s
    return float(HORIZON_S)


def one_pir(home: Home) -> Home:
    """The home with only its busiest PIR (and its door): a one-PIR installation."""
    pirs = home.sensors("pir")
    busiest = max(pirs, key=lambda s: sum(1 for p in home.pulses if p.sensor == s))
    keep = [busiest, *home.sensors("door"), *home.sensors("entrance")]
    return home.only(keep, f"{home.name} 1-PIR")


def _h(x: float) -> str:
    return "-" if math.isnan(x) else f"{int(x)}h{round((x - int(x)) * 60):02d}"


def bounds(home: Home, frames: list[Frame], cuts: list[float]) -> list[Result]:
    """The hindsight bounds (bench/inactivity_bound.py) on the same cuts, as rows."""
    days = (home.end - home.start) / DAY_S
    tod = detection_times(home, frames, cuts, False)
    rows = {"bound-tod": tod, "bound-room": detection_times(home, frames, cuts, True)}
    for pool_min in (30, 60):  # start-indexed, pooled over +-30 / +-60 min of start time
        start = start_detection_times(home, frames, cuts, pool_min * 60)
        rows[f"bound-start{pool_min}"] = start
        rows[f"bound-either{pool_min}"] = either(tod, start)  # the earlier of tod and start
    rows["bound-any"] = causal_detection_times(frames, cuts, home.end)
    out = [Result(name, days, delays=d, cut_times=list(cuts)) for name, d in rows.items()]
    allowed = math.floor(GOAL_FA * days + 1e-9)  # false alarms the goal allows on this span
    if allowed:
        out.append(Result("bound-any-fa", days, alarms=[(math.nan, math.nan)] * allowed,
                          delays=causal_detection_times(frames, cuts, home.end, allowed),
                          cut_times=list(cuts)))
    return out


def report(home: Home, results: list[Result], verbose: bool,
           hindsight: list[Result] = ()) -> None:
    r0 = results[0]
    night = sum(1 for c in r0.cut_times if c % DAY_S < 7 * 3600 or c % DAY_S >= 22 * 3600)
    print(f"\n{home.name}: {fmt(home.start)} .. {fmt(home.end)} ({r0.days:.1f} days), "
          f"PIRs {len(home.sensors('pir'))}, {len(r0.delays)} emergencies "
          f"({night} at night 22-07)")
    print(f"  {'method':<14}{'FA/day':>8}{'pre/day':>9}{'mean':>8}{'median':>8}{'p90':>8}"
          f"{'missed':>8}  goal")
    for r in results:
        goal = r.fa_day <= GOAL_FA and r.stat("mean") <= GOAL_MEAN_H
        print(f"  {r.method:<14}{r.fa_day:>8.3f}{r.pre_day:>9.3f}{_h(r.stat('mean')):>8}"
              f"{_h(r.stat('median')):>8}{_h(r.stat('p90')):>8}{r.missed:>8}  "
              f"{'met' if goal else 'NOT met'}")
    for r in hindsight:
        print(f"  {r.method:<14}{r.fa_day:>8.3f}{'':>9}{_h(r.stat('mean')):>8}"
              f"{_h(r.stat('median')):>8}{_h(r.stat('p90')):>8}{r.missed:>8}  "
              f"hindsight: {'3 h reachable' if r.stat('mean') <= GOAL_MEAN_H else 'no 3 h'}")
    if verbose:
        for r in results:
            for t, still in r.alarms:
                print(f"    {r.method} false alarm {fmt(t)} after {still / 3600:.1f} h still")
            worst = sorted(zip(r.delays, r.cut_times, strict=True), reverse=True)[:5]
            print(f"    {r.method} slowest: " + ", ".join(
                f"{fmt(c)} {d / 3600:.1f}h" for d, c in worst))
    for n in home.notes:
        print(f"  note: {n}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", default=str(Path(__file__).resolve().parents[2]
                                                   / "shared" / "data"))
    ap.add_argument("--quick", action="store_true", help="100 cuts, 2-min ticks")
    ap.add_argument("--cuts", choices=("test", "dev"), default="test")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=INT",
                    help="override a shared.inactivity setting (tuning on --cuts dev)")
    ap.add_argument("--proxies", action="store_true",
                    help="what-if: every sensor in a room counts as that room's PIR")
    ap.add_argument("--home", action="append", help="only these data sets")
    ap.add_argument("--variants", action="store_true",
                    help="also: each home with one PIR only, and with --proxies")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    root = Path(a.data)
    if (root / "inactivity").is_dir():
        root = root / "inactivity"
    overrides = {}
    for s in a.set:
        k, _, v = s.partition("=")
        overrides[k.strip()] = int(v)
    started = time.monotonic()
    unknown: list[str] = []
    homes = [h for h in load_all(root, unknown) if not a.home or h.name in a.home]
    if unknown:
        print(f"not evaluated, no loader for: {', '.join(unknown)}", file=sys.stderr)
    if not homes:
        print(f"no data sets under {root}", file=sys.stderr)
        return 2
    tick_s = 120 if a.quick else 60
    want = 100 if a.quick else 150
    print(f"inactivity eval: {len(homes)} homes, cuts={a.cuts}, tick {tick_s}s, "
          f"settings {overrides or 'defaults'}{', proxies' if a.proxies else ''}")
    runs = [(h, a.proxies) for h in homes]
    if a.variants:
        runs += [(h, True) for h in homes if not a.proxies]
        runs += [(one_pir(h), False) for h in homes]
    for home, proxies in runs:
        frames = hub_frames(home, proxies=proxies)
        cuts = cut_points(home, 0.25 if a.cuts == "dev" else 0.5, want)
        results = [replay(home, frames, make, cuts, name, tick_s)
                   for name, make in methods(overrides).items()]
        if proxies:
            home = Home(home.name + " +proxies", home.pulses, home.absences, home.labelled,
                        [*home.notes, "what-if: every other sensor counts as its room's PIR"])
        report(home, results, a.verbose, bounds(home, frames, cuts))
    print(f"\nran in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
