"""bench/datasets loaders on small synthetic files, the hub's view of a PIR, the cut instants,
the baselines, and (when ../shared/data/inactivity is there) the quick evaluation on the real
data sets."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from bench import inactivity_eval as E
from bench.datasets import casas, default_root, load, load_all, ordonez, vankasteren
from bench.datasets.stream import Home, Pulse, hub_frames, local_seconds
from bench.inactivity_baselines import CuddihyPercentile, FixedThreshold
from shared import inactivity as I

H = 3600.0


def t(s: str) -> float:
    return local_seconds(dt.datetime.fromisoformat(s))


# -- loaders ------------------------------------------------------------------------------


def test_casas_loader(tmp_path):
    d = tmp_path / casas.FOLDER
    d.mkdir()
    (d / "events.txt").write_text(
        "2011-06-15 08:00:00.5 Kitchen Kitchen ON Cook\n"
        "2011-06-15 08:00:02.5 Kitchen Kitchen OFF Cook\n"
        "2011-06-15 08:01:00 Kitchen KitchenLight ON Cook\n"
        "2011-06-15 08:01:05 Kitchen KitchenLight OFF Cook\n"
        "2011-06-15 09:00:00 OutsideDoor FrontDoor OPEN Leave_Home\n"
        "2011-06-15 09:00:03 OutsideDoor Entry ON Leave_Home\n"
        "2011-06-15 09:00:05 OutsideDoor Entry OFF Leave_Home\n"
        "2011-06-15 09:00:09 OutsideDoor FrontDoor CLOSE Leave_Home\n"
        "2011-06-15 11:00:00 OutsideDoor FrontDoor OPEN Enter_Home\n"
        "2011-06-15 11:00:04 OutsideDoor FrontDoor CLOSE Enter_Home\n"
        "2011-06-15 11:01:00 Bedroom Bedroom ON Other_Activity\n"
        "2011-06-15 11:01:01 Bedroom Bedroom OFF Other_Activity\n"
        "garbage\n")
    home = load(d)
    assert home.name == "casas-al-smarthome"
    kinds = {p.sensor: p.kind for p in home.pulses}
    assert kinds == {"Kitchen:Kitchen": "pir", "Kitchen:KitchenLight": "other",
                     "OutsideDoor:FrontDoor": "door", "OutsideDoor:Entry": "pir",
                     "Bedroom:Bedroom": "pir"}
    kitchen = [p for p in home.pulses if p.sensor == "Kitchen:Kitchen"][0]
    assert (kitchen.start, kitchen.end) == (t("2011-06-15 08:00:00.5"), t("2011-06-15 08:00:02.5"))
    assert home.absences == [(t("2011-06-15 09:00:09"), t("2011-06-15 11:00:00"))]
    assert home.away_at(t("2011-06-15 10:00")) and not home.away_at(t("2011-06-15 11:30"))


def test_ordonez_loader(tmp_path):
    d = tmp_path / ordonez.FOLDER
    d.mkdir()
    (d / "OrdonezA_Sensors.txt").write_text(
        "Start time          \tEnd time            \tLocation\tType\t\tPlace\n"
        "--------------------\t--------------------\t--------\t--------\t-----\n"
        "2011-11-28 02:27:59\t\t2011-11-28 10:18:11\t\tBed\t\t\tPressure\tBedroom\n"
        "2011-11-28 10:21:44\t\t2011-11-28 10:23:31\t\tBasin\t\tPIR\t\t\tBathroom\n"
        "2011-11-28 13:09:31\t\t2011-11-28 13:09:35\t\tMaindoor\tMagnetic\tEntrance\n")
    (d / "OrdonezA_ADLs.txt").write_text(
        "Start time          \tEnd time            \tActivity\t\n"
        "--------------------\t--------------------\t--------\n"
        "2011-11-28 02:27:59\t\t2011-11-28 10:18:11\t\tSleeping\t\t\n"
        "2011-11-28 13:09:31\t\t2011-11-28 13:29:09\t\tLeaving\t\n")
    home = load(d)
    assert [(p.sensor, p.kind, p.room) for p in home.pulses] == [
        ("Bed", "other", "Bedroom"), ("Basin", "pir", "Bathroom"), ("Maindoor", "door", "Entrance")]
    assert home.absences == [(t("2011-11-28 13:09:31"), t("2011-11-28 13:29:09"))]
    assert home.labelled == (t("2011-11-28 02:27:59"), t("2011-11-28 13:29:09"))


def test_vankasteren_loader_ignores_unmapped_ids(tmp_path):
    d = tmp_path / vankasteren.FOLDER
    d.mkdir()
    (d / "sensorMapB-ids.txt").write_text("7,frontdoor,Outside\n28,PIR keuken,Kitchen\n"
                                          "6,toilet flush,Toilet\n")
    (d / "actionMapB.txt").write_text("1,leave-house\n4,use-toilet\n")
    (d / "houseB-ss.txt").write_text(
        "21-Jul-2009 13:30:12\t21-Jul-2009 13:30:13\t28\t\n"
        "21-Jul-2009 13:54:19\t21-Jul-2009 13:54:29\t7\t\n"
        "21-Jul-2009 14:00:00\t21-Jul-2009 14:00:05\t6\t\n"
        "21-Jul-2009 15:00:00\t21-Jul-2009 15:00:01\t23\t\n")
    (d / "houseB-as.txt").write_text("21-Jul-2009 13:54:20\t21-Jul-2009 16:00:00\t1\n")
    home = load(d)
    assert [p.kind for p in home.pulses] == ["pir", "door", "other", "unknown"]
    assert home.absences == [(t("2009-07-21 13:54:20"), t("2009-07-21 16:00:00"))]
    assert any("23" in n for n in home.notes)


def test_unknown_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no loader"):
        load(tmp_path / "somewhere")


def test_other_homes_of_the_same_studies_are_read_and_unknown_folders_named(tmp_path):
    # Ordonez home B and van Kasteren house A come in the formats of A and B, named alike: a
    # data folder holding them is evaluated whole; a folder nothing reads is named, not skipped
    # silently.
    test_ordonez_loader(tmp_path)
    (tmp_path / ordonez.FOLDER).rename(tmp_path / "ordonez-home-b")
    for f in (tmp_path / "ordonez-home-b").iterdir():
        f.rename(f.with_name(f.name.replace("OrdonezA", "OrdonezB")))
    test_vankasteren_loader_ignores_unmapped_ids(tmp_path)
    src = tmp_path / vankasteren.FOLDER
    dst = tmp_path / "vankasteren-house-a"
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name.replace("B", "A")).write_bytes(f.read_bytes())
    (tmp_path / "somebody-elses-home").mkdir()
    (tmp_path / "ordonez-home-ab").mkdir()
    (tmp_path / "ordonez-home-c").mkdir()  # named like one, but its files are not there
    with pytest.raises(ValueError, match="no loader"):
        load_all(tmp_path)
    unknown: list[str] = []
    homes = load_all(tmp_path, unknown)
    assert [h.name for h in homes] == ["vankasteren-house-b", "ordonez-home-b",
                                       "vankasteren-house-a"]
    assert [p.sensor for p in homes[1].pulses] == ["Bed", "Basin", "Maindoor"]
    assert unknown[:1] == ["ordonez-home-ab"] and unknown[2:] == ["somebody-elses-home"]
    assert unknown[1].startswith("ordonez-home-c (") and "OrdonezC_Sensors.txt" in unknown[1]


# -- the hub's view -------------------------------------------------------------------------


def test_pir_reports_like_the_firmware():
    # motion at 10:00:00 after a long still: MOTION at once and ACTIVITY at its interval's
    # end; the motion at 10:06 (not after 30 min still): ACTIVITY only; a door: DOOR twice
    base = t("2011-01-01 09:00")
    pulses = [Pulse(base, base + 2, "K", "kitchen", "pir"),
              Pulse(base + H, base + H + 2, "K", "kitchen", "pir"),
              Pulse(base + H + 360, base + H + 362, "K", "kitchen", "pir"),
              Pulse(base + 2 * H, base + 2 * H + 5, "D", "hall", "door")]
    frames = hub_frames(Home("x", pulses, [], (base, base + 3 * H)))
    seen = [(f.what, round(f.t - base)) for f in frames if f.t > base + 1800]
    assert seen[0] == ("motion", 3600)
    acts = [s for w, s in seen if w == "activity"]
    assert len(acts) == 2 and 3600 < acts[0] <= 3900 and acts[1] - acts[0] == 300
    assert [s for w, s in seen if w == "door"] == [7200, 7205]
    assert all(f.source == I.SRC_MOTION for f in frames if f.what != "door")


def test_cut_points_are_at_home_after_burn_in_and_spread_over_the_day():
    start = t("2011-01-01 00:00")
    pulses = [Pulse(start + k * 600, start + k * 600 + 2, "K", "k", "pir")
              for k in range(20 * 144)]
    absences = [(start + d * 86400 + 9 * H, start + d * 86400 + 13 * H) for d in range(20)]
    home = Home("x", pulses, absences, (start, start + 20 * 86400))
    cuts = E.cut_points(home)
    assert len(cuts) >= 100
    assert min(cuts) >= start + E.BURN_IN_DAYS * 86400
    assert not any(home.away_at(c) for c in cuts)
    hours = {int(c % 86400 // 3600) for c in cuts}
    assert hours == set(range(24)) - {9, 10, 11, 12}
    assert set(E.cut_points(home, phase=0.25)).isdisjoint(cuts)


def test_replay_counts_false_alarms_and_times_emergencies():
    # active every 10 min, 06:00-22:00, for 10 days; silent nights (8 h)
    start = t("2011-01-01 00:00")
    pulses = [Pulse(start + d * 86400 + m * 60, start + d * 86400 + m * 60 + 2, "K", "k", "pir")
              for d in range(10) for m in range(6 * 60, 22 * 60, 10)]
    home = Home("x", pulses, [], (start, start + 10 * 86400))
    frames = hub_frames(home)
    noon = start + 8 * 86400 + 12 * H
    fixed = E.replay(home, frames, FixedThreshold, [noon], "fixed")
    assert fixed.alarms == [] and fixed.delays[0] == pytest.approx(12 * H + 600, abs=900)
    ours = E.replay(home, frames, I.Inactivity, [noon], "carebeacon")
    assert ours.alarms == [] and ours.delays[0] < 2 * H  # learned: daytime gaps are short
    cud = E.replay(home, frames, CuddihyPercentile, [noon], "cuddihy")
    assert cud.delays[0] < 3 * H


def test_cuddihy_learns_each_bin_up_to_the_elapsed_stillness():
    c = CuddihyPercentile()
    day = 86_400_000
    c.activity(0, 0, I.SRC_MOTION)  # day 0, 00:00
    c.tick(day + 3_600_000, 3_600_000)  # next day 01:00
    c.activity(day + 7_200_000, 7_200_000, I.SRC_MOTION)  # 26 h still, ends at 02:00
    assert c.hist[1][3] == 26 * 3_600_000  # 01:30-02:00, next day
    assert c.hist[0][47] == 24 * 3_600_000  # 23:30-24:00 of day 0
    assert c.hist[0][0] == 1_800_000


# -- the real data -----------------------------------------------------------------------------

REAL = default_root()


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real data sets not found at {REAL} "
                    "(../shared/data/inactivity next to the repository)")
def test_quick_eval_on_the_real_data(capsys):
    started = time.monotonic()
    assert E.main([str(REAL.parent), "--quick"]) == 0
    out = capsys.readouterr().out
    assert time.monotonic() - started < 60
    for name in ("casas-al-smarthome", "ordonez-home-a", "vankasteren-house-b"):
        assert name in out
    for method in ("carebeacon", "fixed-12h", "cuddihy-p95", "bound-tod", "bound-room"):
        assert out.count(method) == 3


def test_loaders_read_the_real_data_sets():
    if not REAL.is_dir():
        pytest.skip(f"real data sets not found at {REAL}")
    homes = {h.name: h for h in (load(REAL / n) for n in sorted(p.name for p in REAL.iterdir()
                                                                 if p.is_dir()))}
    assert len(homes["casas-al-smarthome"].sensors("pir")) == 8
    assert homes["ordonez-home-a"].sensors("pir") == ["Basin", "Cooktop", "Shower"]
    assert len(homes["vankasteren-house-b"].sensors("pir")) == 3
    assert all(h.absences for h in homes.values())
    assert Path(E.__file__).name == "inactivity_eval.py"


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real data sets not found at {REAL} "
                    "(../shared/data/inactivity next to the repository)")
def test_sensor_coverage_names_the_home_without_pirs_where_the_resident_sits(capsys):
    from bench import sensor_coverage

    assert sensor_coverage.main([str(REAL.parent)]) == 0
    out = capsys.readouterr().out.splitlines()
    said = {out[i].split(":")[0]: out[i + 1] for i in range(0, len(out), 2)}
    assert "never raised" in said["casas-al-smarthome"]  # 8 PIRs
    assert "raised" in said["ordonez-home-a"] and "never" not in said["ordonez-home-a"]
