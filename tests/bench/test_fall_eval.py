"""bench/falls loaders and scoring on small synthetic files, then a quick run of
bench/fall_eval.py on the real data when ../shared/data/falls is there.

The synthetic files are written here in each data set's own format (SisFall: ADXL345 counts,
200 Hz, per-sample labels in labels/; UMAFall: ';'-separated rows of five sensors after a '%'
header), so these tests need no data. The real-data test reads the archives through the
bench's cache (~/.cache/carebeacon/falls; the first run decompresses SisFall, ~30 s).
"""

import subprocess
import sys
import tarfile
from array import array
from pathlib import Path

import pytest

from bench.falls import Trial, find_sources, load, sisfall, umafall
from bench.falls.resample import decimate, gaps_over, index_at, resample
from bench.falls.score import Outcome, Row, Summary, summarize, wilson

REPO = Path(__file__).resolve().parents[2]
REAL_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# --- resampling ---------------------------------------------------------------------------


def test_resample_interpolates_linearly_on_the_time_stamps():
    t = [0, 50, 100, 100, 250]  # jittered, a repeat, a gap
    xs = [0, 1000, 2000, 2100, 500]
    out = resample(t, xs, xs, [-v for v in xs], 50)  # every 20 ms, 0..240
    got = list(out[0::3])
    assert len(got) == 13
    assert got[:6] == [0, 400, 800, 1200, 1600, 2100], "at a repeated stamp the later wins"
    assert got[6] == 2100 - round(20 * 1600 / 150)  # between (100, 2100) and (250, 500)
    assert list(out[2::3]) == [-v for v in got]
    assert gaps_over(t, 100) == 1


def test_resample_clamps_to_16_g_and_decimate_matches_it():
    t = [5 * i for i in range(40)]  # 200 Hz
    xs = [(-1) ** i * 100 * i for i in range(40)]
    ys = [20000 if i == 8 else 0 for i in range(40)]
    zs = [1000] * 40
    inter = [v for r in zip(xs, ys, zs, strict=True) for v in r]
    assert list(resample(t, xs, ys, zs, 50)) == list(decimate(inter, 4))
    assert max(resample(t, xs, ys, zs, 50)) == 16000


def test_index_at_rounds_up_to_the_next_sample():
    assert index_at(100.0, 0.0, 50) == 5
    assert index_at(101.0, 0.0, 50) == 6
    assert index_at(99.0, 0.0, 50) == 5


# --- SisFall ------------------------------------------------------------------------------


def _sisfall_rows(n, counts):
    # nine columns, the format of the data set (ADXL345 x y z, gyro, MMA8451Q), CRLF, ';'
    return "".join("%4d,%4d,%4d,  84, 247,  27,-120,-987,  63;\r\n" % counts(i)
                   for i in range(n))


def _write_sisfall(root: Path) -> None:
    (root / "SA01").mkdir(parents=True)
    (root / "SE02").mkdir()
    (root / "labels" / "SA01").mkdir(parents=True)
    # a fall: upright (y = -1 g = -256 counts), an impact at sample 400, lying (x = 1 g)
    fall = _sisfall_rows(800, lambda i: (0, -256, 0) if i < 400 else
                         ((1024, 512, 0) if i < 404 else (256, 0, 0)))
    (root / "SA01" / "F03_SA01_R02.txt").write_text(fall)
    labels = ["0"] * 800
    for i in range(380, 404):
        labels[i] = "2"
    for i in range(404, 500):
        labels[i] = "1"
    (root / "labels" / "SA01" / "F03_SA01_R02.txt").write_text("\n".join(labels) + "\n")
    (root / "SA01" / "D01_SA01_R01.txt").write_text(_sisfall_rows(400, lambda i: (i, -256, -i)))
    (root / "SE02" / "D07_SE02_R05.txt").write_text(_sisfall_rows(40, lambda i: (0, -256, 0)))
    (root / "Readme.txt").write_text("not a trial")


def test_sisfall_names_units_rates_and_onsets(tmp_path):
    root = tmp_path / "falls" / "sisfall-dev"
    _write_sisfall(root)
    trials = load("sisfall", tmp_path, 50)
    assert [t.name for t in trials] == ["D01_SA01_R01.txt", "D07_SE02_R05.txt",
                                        "F03_SA01_R02.txt"]
    walk, sit, fall = trials
    assert (fall.kind, fall.activity, fall.subject, fall.trial) == ("fall", "F03", "SA01", 2)
    assert (sit.kind, sit.subject, sit.onset) == ("adl", "SE02", None)
    assert fall.rate_hz == 50 and fall.n == 200 and walk.n == 100
    assert list(fall.xyz[:3]) == [0, -1000, 0], "256 counts = 1 g = 1000 mg"
    assert list(fall.xyz[300:303]) == [4000, 2000, 0], "sample 400 at 200 Hz = 100 at 50 Hz"
    assert list(walk.xyz[3:6]) == [round(4 * 1000 / 256), -1000, -round(4 * 1000 / 256)]
    assert fall.onset == 95, "first label 2 at sample 380 of 200 Hz = 1.9 s"
    assert walk.onset is None
    assert [t.name for t in load("sisfall", tmp_path, 25, subjects={"SE02"})] == [sit.name]
    assert load("sisfall", tmp_path, 25)[2].n == 100


def test_sisfall_from_an_archive_equals_the_folder(tmp_path):
    _write_sisfall(tmp_path / "src" / "sisfall")
    archive = tmp_path / "data" / "falls" / "sisfall-dev.tar.xz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(tmp_path / "src" / "sisfall", arcname="sisfall")
    assert find_sources(tmp_path / "data", "sisfall") == [archive]
    from_tar = load("sisfall", tmp_path / "data", 50)
    (tmp_path / "src" / "sisfall").rename(tmp_path / "src" / "sisfall-dev")
    from_dir = load("sisfall", tmp_path / "src", 50, use_cache=False)
    assert [(t.name, list(t.xyz), t.onset) for t in from_tar] == \
        [(t.name, list(t.xyz), t.onset) for t in from_dir]
    cached = load("sisfall", tmp_path / "data", 50)  # from the cache now
    assert [(t.name, list(t.xyz), t.onset) for t in cached] == \
        [(t.name, list(t.xyz), t.onset) for t in from_tar]


def test_sisfall_rejects_a_bad_row():
    with pytest.raises(ValueError):
        sisfall.parse_counts("1,2\r\n")


# --- UMAFall ------------------------------------------------------------------------------

UMA_HEADER = """% Universidad de Malaga - ETSI de Telecomunicacion (Spain)
% ID: Subject_07_FALL_lateralFall_3
% MAC Address; Sensor_ID; Position; Device Model
%f8:95:c7:f3:ba:82; 0; RIGHTPOCKET; lge-LG-H815-5.1
%C4:BE:84:70:0E:80; 3; WRIST; SensorTag
%C4:BE:84:70:64:8A; 1; CHEST; SensorTag
% Sensor_Type:
% Accelerometer = 0
% TimeStamp; Sample No; X-Axis; Y-Axis; Z-Axis; Sensor Type; Sensor ID;
"""


def _uma_text():
    rows = []
    for k, t in enumerate([0, 40, 100, 150, 150, 200, 700, 750]):  # jitter, a repeat, a gap
        rows.append("%d;%d;%.4f;0.0;1.0;0;3" % (t, k, k / 10))  # wrist accelerometer
        rows.append("%d;%d;9.0;9.0;9.0;1;3" % (t, k))  # wrist gyroscope: ignored
        rows.append("%d;%d;5.0;5.0;5.0;0;1" % (t, k))  # chest accelerometer: ignored
        rows.append("%d;%d;7.0;7.0;7.0;0;0" % (t, k))  # phone: ignored
    return UMA_HEADER + "\n".join(rows) + "\n"


def test_umafall_reads_the_wrist_accelerometer_only(tmp_path):
    folder = tmp_path / "falls" / "umafall-dev"
    folder.mkdir(parents=True)
    name = "UMAFall_Subject_07_Fall_lateralFall_3_2016-06-13_13-18-13.csv"
    (folder / name).write_text(_uma_text())
    adl = "UMAFall_Subject_11_ADL_LyingDown_OnABed_1_2016-06-10_17-34-45.csv"
    (folder / adl).write_text(_uma_text().replace("; WRIST;", "; WAIST;").replace(
        "; CHEST;", "; WRIST;"))
    fall, lying = sorted(load("umafall", tmp_path, 25), key=lambda t: t.subject)
    assert (fall.subject, fall.kind, fall.activity, fall.trial) == ("U07", "fall",
                                                                    "lateralFall", 3)
    assert (lying.subject, lying.kind, lying.activity) == ("U11", "adl", "LyingDown_OnABed")
    assert fall.n == 750 // 40 + 1 and fall.onset is None and fall.gaps == 1
    xs = list(fall.xyz[0::3])
    assert xs[0] == 0 and xs[1] == 100 and xs[-1] == 640
    assert set(fall.xyz[2::3]) == {1000}
    assert set(lying.xyz[0::3]) == {5000}, "the header decides which sensor is the wrist"


def test_every_part_of_a_data_set_is_read_and_an_archive_wins_over_its_folder(tmp_path):
    # A data folder holding the dev subset and a test subset beside it (the archives here
    # are a "dev" subset): both are read; an unpacked copy of an archive is not read twice.
    falls = tmp_path / "falls"
    dev, test = falls / "umafall-dev", falls / "umafall-test"
    dev.mkdir(parents=True)
    test.mkdir()
    (dev / "UMAFall_Subject_07_Fall_lateralFall_3_2016-06-13_13-18-13.csv").write_text(
        _uma_text())
    (test / "UMAFall_Subject_15_ADL_Walking_1_2016-06-10_17-34-45.csv").write_text(_uma_text())
    (falls / "umafall_notes.txt").write_text("not a part")
    (falls / "umafalls-old").mkdir()  # another name that merely starts alike
    assert find_sources(tmp_path, "umafall") == [dev, test]
    assert [t.subject for t in load("umafall", tmp_path, 25)] == ["U07", "U15"]
    with tarfile.open(falls / "umafall-dev.tar.xz", "w:xz") as tar:
        tar.add(dev, arcname="umafall-dev")
    assert find_sources(tmp_path, "umafall") == [falls / "umafall-dev.tar.xz", test]
    assert find_sources(test, "umafall") == [test], "one part named directly"
    assert find_sources(tmp_path / "nowhere", "umafall") == []
    with pytest.raises(FileNotFoundError, match="umafall"):
        load("umafall", tmp_path / "nowhere")


def test_the_bracelets_settings_score_subjects_they_were_not_chosen_on_as_unseen(capsys):
    from bench.fall_eval import shipped
    from bench.falls.score import TUNED_ON

    assert "U15" not in TUNED_ON["umafall"]
    trials = [Trial("UMAFall", s, "adl", "Walking", 1, 50, array("h", [0, 0, 1000] * 100))
              for s in ("U03", "U15")]
    shipped(trials, {}, quick=True, jobs=1)
    out = capsys.readouterr().out
    assert "in-sample, on the subjects they were chosen on: falls 0/0" in out
    assert "UNSEEN subjects U15: sensitivity" in out, out
    shipped(trials[:1], {}, quick=True, jobs=1)
    assert "nothing unseen to score" in capsys.readouterr().out


def test_umafall_without_a_wrist_sensor_is_an_error():
    with pytest.raises(ValueError, match="WRIST"):
        umafall.parse(UMA_HEADER.replace("WRIST", "ANKLE") + "0;0;1;1;1;0;3\n")


def test_names_that_are_not_trials_are_skipped():
    assert umafall.parse_name("UMAFall_Dataset/readme.txt") is None
    assert sisfall.parse_name("sisfall/Readme.txt") is None
    assert sisfall.parse_name("sisfall/SA15/D17_SE15_R01.txt") == ("D17", "SE15", 1)


# --- scoring ------------------------------------------------------------------------------


def _trial(kind, onset=None, activity="X"):
    return Trial("T", "S1", kind, activity, 1, 50, array("h"), onset)


def test_scoring_counts_alarms_after_the_onset_only():
    early = Outcome(_trial("fall", onset=100), [(60, 40)])
    late = Outcome(_trial("fall", onset=100), [(60, 40), (240, 105)])
    unlabelled = Outcome(_trial("fall"), [(60, 40)])
    adl = Outcome(_trial("adl"), [(10, 5)])
    quiet = Outcome(_trial("adl"), [])
    assert not early.hit and early.early == 1
    assert late.hit and late.delay_s == 140 / 50 and late.decision_s == 135 / 50
    assert unlabelled.hit and unlabelled.delay_s is None
    s = summarize([early, late, unlabelled, adl, quiet])
    assert (s.fall_all.n, s.fall_all.hits, s.fall_all.early) == (3, 2, 2)
    assert (s.adl_all.n, s.adl_all.hits) == (2, 1) and s.adl_all.share == 0.5


def test_wilson_interval_has_its_closed_forms_at_none_and_all():
    z2 = 1.96 ** 2
    for n in (1, 20, 296):
        assert wilson(0, n)[0] == 0.0 and abs(wilson(0, n)[1] - z2 / (n + z2)) < 1e-12
        assert wilson(n, n)[1] == 1.0 and abs(wilson(n, n)[0] - n / (n + z2)) < 1e-12
    assert wilson(0, 0) == (0.0, 1.0)  # nothing measured: nothing known


def test_wilson_interval_holds_the_share_is_symmetric_and_narrows_with_more_trials():
    for hits, n in ((1, 10), (9, 296), (90, 96), (5, 5)):
        low, high = wilson(hits, n)
        assert low <= hits / n <= high
        mirror = wilson(n - hits, n)
        assert abs(low - (1 - mirror[1])) < 1e-12 and abs(high - (1 - mirror[0])) < 1e-12
    small, large = wilson(3, 100), wilson(30, 1000)
    assert large[0] > small[0] and large[1] < small[1]


def _summary(falls, adls):
    return Summary({}, {}, Row("all falls", falls[1], falls[0]), Row("all activities", adls[1],
                                                                     adls[0]))


def test_verdict_does_not_round_a_share_just_over_the_goal_onto_it():
    from bench.fall_eval import GOALS, verdict
    over = verdict(_summary((90, 96), (9, 296)), GOALS["umafall"])
    assert ("false alarms 3.04% of activity trials (9/296; 95 % interval 1.6-5.7 %) "
            "(goal <= 3 %: NOT MET)") in over
    assert "sensitivity 93.75% (90/96; 95 % interval 87.0-97.1 %) (goal >= 85 %: met)" in over
    under = verdict(_summary((81, 96), (8, 296)), GOALS["umafall"])
    assert "false alarms 2.70% of activity trials (8/296" in under and "(goal <= 3 %: met)" in under
    assert "sensitivity 84.38% (81/96" in under and "(goal >= 85 %: NOT MET)" in under


# --- the real data ------------------------------------------------------------------------


@pytest.mark.heavy  # ~2 s with the cache, ~15 s the first time (SisFall is decompressed)
@pytest.mark.timeout(240)
def test_quick_eval_on_the_real_data(monkeypatch):
    falls = REAL_DATA / "falls"
    if not (falls / "sisfall-dev.tar.xz").exists() or not (falls / "umafall-dev.tar.xz").exists():
        pytest.skip(f"no fall data at {falls} (sisfall-dev.tar.xz, umafall-dev.tar.xz): "
                    "the loaders are covered by the synthetic tests above")
    monkeypatch.delenv("XDG_CACHE_HOME")  # share the bench's cache: decompress SisFall once
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "fall_eval.py"), str(REAL_DATA),
                           "--quick", "--jobs", "2"], capture_output=True, text=True,
                          timeout=230, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    verdicts = [line for line in out.splitlines() if "HELD-OUT:" in line]
    assert len(verdicts) == 2, out
    for line in verdicts:  # not the goals (the doc reports those): the pipeline is sane
        sens = float(line.split("sensitivity ")[1].split("%")[0])
        fa = float(line.split("false alarms ")[1].split("%")[0])
        assert sens >= 75 and fa <= 10, line
    assert "delay from the labelled onset" in out
    cost = [line.split() for line in out.splitlines() if line.strip().startswith(("activ", "fall"))
            and "fuel" in line]
    assert cost and all(float(f[-1]) == 0.0 for f in cost), "bytes per sample must be 0\n" + out


def test_leave_one_subject_out_scores_each_subject_by_the_rule_on_the_others(monkeypatch):
    # Two settings: "loose" finds every fall but alarms on S3's activity; "strict" misses
    # S2's fall and never alarms. The rule (FA <= goal, then sensitivity) picks loose only
    # where S3's alarm is left out, i.e. when S3 itself is scored.
    from bench.falls import loso as loso_mod, tune

    def trial(subject, kind):
        return Trial("UMAFall", subject, kind, "X", 1, 50, array("h"))

    trials = [trial("S1", "fall"), trial("S2", "fall"), trial("S3", "adl"), trial("S1", "adl")]
    loose = [Outcome(trials[0], [(1, 0)]), Outcome(trials[1], [(1, 0)]),
             Outcome(trials[2], [(1, 0)]), Outcome(trials[3], [])]
    strict = [Outcome(trials[0], [(1, 0)]), Outcome(trials[1], []),
              Outcome(trials[2], []), Outcome(trials[3], [])]
    grid = [{"score_min": 4}, {"score_min": 5}]
    monkeypatch.setitem(tune.GRIDS, "umafall", "score_min=4,5")
    assert tune.rank([loose, strict], grid, 0.03)[0][5] == {"score_min": 5}
    cv = loso_mod.loso(trials, "umafall", table=[loose, strict], verbose=False)
    # S1 and S2 scored by strict (chosen with S3's alarm in), S3 by loose
    assert (cv.fall_all.hits, cv.fall_all.n) == (1, 2)
    assert (cv.adl_all.hits, cv.adl_all.n) == (1, 2)


def test_a_file_that_cannot_be_used_is_left_out_and_named_not_fatal(tmp_path):
    # One recording without a wrist sensor, one with no wrist rows, one good: the good one is
    # scored, the others named with the reason, from the parse and from the cache alike.
    from bench.falls import Skipped

    folder = tmp_path / "falls" / "umafall-test"
    folder.mkdir(parents=True)
    good = "UMAFall_Subject_13_Fall_lateralFall_1_2016-06-13_13-18-13.csv"
    no_wrist = "UMAFall_Subject_13_ADL_Walking_1_2016-06-13_13-18-13.csv"
    no_rows = "UMAFall_Subject_14_ADL_Walking_2_2016-06-13_13-18-13.csv"
    (folder / good).write_text(_uma_text())
    (folder / no_wrist).write_text(_uma_text().replace("; WRIST;", "; ANKLE;"))
    (folder / no_rows).write_text(UMA_HEADER)
    for _ in range(2):  # parsed, then cached
        bad: list[Skipped] = []
        trials = load("umafall", tmp_path, 50, skipped=bad)
        assert [t.name for t in trials] == [good]
        assert sorted((k.name, k.reason) for k in bad) == [
            (no_wrist, "no WRIST sensor in the header"),
            (no_rows, "0 WRIST accelerometer rows: nothing to resample")]

    sis = tmp_path / "falls" / "sisfall-test"
    _write_sisfall(sis)
    (sis / "SA01" / "D02_SA01_R01.txt").write_text("1,2,oops,4;\r\n")
    (sis / "labels" / "SA01" / "F03_SA01_R02.txt").write_text("0 0 x\n")
    bad = []
    trials = load("sisfall", tmp_path, 50, skipped=bad)
    assert "D02_SA01_R01.txt" not in [t.name for t in trials]
    fall = next(t for t in trials if t.name == "F03_SA01_R02.txt")
    assert fall.onset is None, "its labels could not be read"
    assert sorted(k.name for k in bad) == ["D02_SA01_R01.txt", "labels/F03_SA01_R02.txt"]
    assert "scored without an onset" in next(k.reason for k in bad if k.name.startswith("lab"))
