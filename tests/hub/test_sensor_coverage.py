"""Sensor coverage (hub/coverage.py): the hub measures how long its sensors leave the resident
unseen, the wait no stillness alarm can beat, and raises hub fault 210 when it is over 3 h
(a PIR missing where the resident sits or sleeps), once a day, cleared below 150 min."""

from __future__ import annotations

import json
import random

import pytest
from pipeline_testing import MIN

from hub.cli import render
from hub.config import load
from hub.coverage import RAISE_MIN, SENSOR_COVERAGE, Coverage
from shared import frame as F

PIR, BUTTON = 0xC3D4, 0xA1B2
DAY = 24 * 60 * MIN
STEP = 5 * MIN


def test_the_figure_is_the_mean_wait_of_an_emergency_at_a_random_minute():
    rnd = random.Random(7)
    cov = Coverage()
    t, inputs = 0, [0]
    wall0 = 1_760_000_000_000 - 1_760_000_000_000 % DAY  # midnight UTC
    cov.input(0, wall0)
    while t < 6 * DAY:
        t += rnd.choice([5, 10, 20, 40, 90, 300, 600]) * MIN
        inputs.append(t)
        cov.input(t, wall0 + t)
    fig = cov.figure()
    # brute force: an emergency at each minute of the whole days waits for the next input
    spells = [(a, b) for a, b in zip(inputs, inputs[1:], strict=False) if b // DAY < t // DAY]
    waits = [b - m for a, b in spells for m in range(a, b, MIN)]
    assert fig["days"] == t // DAY
    assert fig["unseen_mean_min"] == pytest.approx(sum(waits) / len(waits) / MIN, abs=1)
    assert fig["longest_unseen_min"] == max(b - a for a, b in spells) // MIN


def test_spells_marked_unreliable_and_a_restart_are_not_counted():
    cov = Coverage()
    wall0 = 100 * DAY
    for day in range(5):
        base = day * DAY
        cov.input(base, wall0 + base)
        cov.input(base + 20 * MIN, wall0 + base + 20 * MIN)
        cov.unreliable()  # e.g. away: the 20 h that follow say nothing about the sensors
        cov.input(base + 20 * 60 * MIN, wall0 + base + 20 * 60 * MIN)
    assert cov.figure()["longest_unseen_min"] == 4 * 60  # 20:00-24:00; not the 19 h 40 min
    again = Coverage.from_json(cov.to_json())
    assert again.figure() == cov.figure()
    again.input(10 * DAY, wall0 + 6 * DAY)  # the first input after a restart ends no spell
    assert again.figure() == cov.figure()


@pytest.mark.parametrize("blob", [b"{", b"[]", b'{"v":2,"raised":false,"days":{}}',
                                  b'{"v":1,"raised":false,"days":{"3":[1,2]}}',
                                  b'{"v":1,"raised":false,"days":{"3":[1,-2,3]}}'])
def test_a_stored_figure_it_cannot_read_is_refused(blob):
    with pytest.raises(ValueError):
        Coverage.from_json(blob)


def _live(home, days: int, moving, down=lambda minute: False) -> None:
    """`days` of life in 5-min steps: heartbeats every 30 min; motion when moving(minute of
    the local day); the radio down when down(minute)."""
    core = home.core
    for _ in range(days * DAY // STEP):
        home.clock.advance(STEP)
        minute = core.clock.local()[0] // 60
        core.set_radio_health("stopped" if down(minute) else "scanning")
        if minute % 30 == 0:
            home.send(PIR, F.T_HEARTBEAT)
            home.send(BUTTON, F.T_HEARTBEAT)
        if moving(minute):
            home.send(PIR, F.T_ACTIVITY, arg=(3 << 8) | 5)
        core.tick()


def _mornings_only(minute: int) -> bool:  # seen 09:00-12:00 only: the PIR is in the kitchen
    return 9 * 60 <= minute < 12 * 60 and minute % 15 == 0


def _all_day(minute: int) -> bool:  # seen every 20 min from 07:00 to 22:00
    return 7 * 60 <= minute < 22 * 60 and minute % 20 == 0


def _faults(home, type_="fault") -> list[dict]:
    """Fault 210's events of that type (each once: an alarm-class event is repeated)."""
    seen = {ref: m for ref, m in home.pub.events
            if m["type"] == type_ and m["fault"]["code"] == SENSOR_COVERAGE}
    for m in seen.values():
        home.schemas.check("event", m)
    return [m["fault"] for m in seen.values()]


def test_a_home_seen_only_in_the_mornings_raises_fault_210_once(home):
    _live(home, 6, _mornings_only)
    (fault,) = _faults(home)
    assert fault["name"] == "sensor_coverage"
    said = int(fault["text"].split("unseen ")[1].split(" min")[0])
    assert said > RAISE_MIN and home.core.home.coverage.figure()["unseen_mean_min"] > RAISE_MIN
    assert "sits and sleeps" in fault["text"]


def test_a_home_seen_all_day_raises_nothing(home):
    _live(home, 6, _all_day)
    assert not _faults(home)
    fig = home.core.home.coverage.figure()
    assert fig["days"] >= 4 and fig["unseen_mean_min"] < 150
    assert fig["longest_unseen_min"] >= 9 * 60  # the night


def test_silences_while_the_radio_is_down_do_not_count(home):
    _live(home, 6, _mornings_only, down=lambda minute: not 8 * 60 <= minute < 13 * 60)
    assert not _faults(home)
    assert home.core.home.coverage.figure()["unseen_mean_min"] < 15  # the mornings' spells


def test_better_coverage_clears_it_and_a_restart_neither_repeats_nor_forgets_it(home):
    _live(home, 5, _mornings_only)
    assert len(_faults(home)) == 1
    home.restart()
    assert home.core.faults.get(SENSOR_COVERAGE)  # still in force, not sent again
    _live(home, 2, _mornings_only)
    assert len(_faults(home)) == 1 and not _faults(home, "restoral")
    _live(home, 9, _all_day)  # a PIR fitted in the living room: a week of good days
    assert len(_faults(home, "restoral")) == 1
    assert SENSOR_COVERAGE not in home.core.faults
    stored = json.loads(home.store.get_state("coverage"))
    assert stored["raised"] is False


def test_status_shows_the_figure(home):
    _live(home, 4, _mornings_only)
    fig = home.core.home.coverage.figure()
    st = {"hub": "hub-a", "county": "c", "household": "h", "running": True,
          "time": "2026-11-23T10:00:00Z", "uplink": {"connected": True}, "radio": {"status": "ok"},
          "pending": {"events": 0, "alarms": []}, "devices": [], "faults": {},
          "inactivity": {"state": "idle", "still_min": 3, "threshold_min": 700,
                         "learned_days": 4, "coverage": fig}}
    text = render(st)
    assert (f"sensor coverage: an emergency would go unseen {fig['unseen_mean_min']} min on "
            f"average, longest silence {fig['longest_unseen_min']} min") in text


def test_a_wall_clock_back_from_the_future_drops_the_days_it_invented():
    cov = Coverage()
    wall0 = 20_000 * DAY
    for day in range(5):
        for m in range(0, 24 * 60, 60):
            t = day * DAY + m * MIN
            cov.input(t, wall0 + t)
    assert cov.figure()["days"] == 4
    cov.input(5 * DAY, wall0 + 4000 * DAY)  # a bad date: ten years on
    assert cov.figure() is None  # (nothing measured in the week before that date)
    cov.input(5 * DAY + 60 * MIN, wall0 + 5 * DAY + 60 * MIN)  # NTP sets it right
    assert cov.figure()["days"] == 5  # the real days are still there, the invented one gone
    assert cov.input(6 * DAY + 10 * MIN, wall0 + 6 * DAY + 10 * MIN)  # and days go on
    assert cov.figure()["days"] == 6


def test_days_with_nothing_measured_leave_no_stale_figure():
    cov = Coverage()
    for day in range(5):
        for m in range(0, 24 * 60, 60):
            cov.input(day * DAY + m * MIN, day * DAY + m * MIN)
    assert cov.figure(5)["days"] == 5
    assert cov.figure(5 + 7) is None  # a week later with nothing measured: no figure


def test_a_stored_figure_with_infinity_is_refused_and_the_hub_still_starts(home):
    home.store.put_state("coverage", b'{"v":1,"raised":true,"days":{"1":[Infinity,1,1]}}')
    home.restart()
    assert home.core.home.coverage.figure() is None
    assert home.core.home.coverage.raised is None, "whether it was raised is unknown"


def test_an_unreadable_state_still_gets_a_raised_fault_its_restoral(home):
    # Fault 210 went out, then its stored state became unreadable: the restarted hub cannot
    # know it is in force, so the next verdict is sent whichever way it goes: here a restoral
    # (the county's console would otherwise show the fault for ever), once.
    _live(home, 5, _mornings_only)
    assert len(_faults(home)) == 1
    home.store.put_state("coverage", b"\x00 not json")
    home.restart()
    assert "unknown" in home.core.faults[SENSOR_COVERAGE]
    _live(home, 9, _all_day)
    assert len(_faults(home, "restoral")) == 1 and len(_faults(home)) == 1
    assert json.loads(home.store.get_state("coverage"))["raised"] is False


def test_an_unreadable_state_in_a_poorly_seen_home_raises_the_fault(home):
    home.store.put_state("coverage", b'{"v":2}')
    home.restart()
    _live(home, 6, _mornings_only)
    assert len(_faults(home)) == 1 and not _faults(home, "restoral")
    home.restart()  # unknown is over: the stored state says raised
    assert home.core.home.coverage.raised is True


def test_a_button_offline_or_a_scan_restart_do_not_stop_the_measure_a_pir_offline_does(home):
    core = home.core
    for _ in range(5 * DAY // STEP):
        home.clock.advance(STEP)
        minute = core.clock.local()[0] // 60
        core.set_radio_health("restarting" if minute % 60 < 10 else "scanning")
        if minute % 30 == 0:
            home.send(PIR, F.T_HEARTBEAT)  # the button is never heard: offline
        if _mornings_only(minute):
            home.send(PIR, F.T_ACTIVITY, arg=(3 << 8) | 5)
        core.tick()
    assert BUTTON in core.home.offline and len(_faults(home)) == 1


def test_a_pir_offline_leaves_its_silences_out(home):
    core = home.core
    for _ in range(5 * DAY // STEP):
        home.clock.advance(STEP)
        minute = core.clock.local()[0] // 60
        if minute % 30 == 0:
            home.send(BUTTON, F.T_HEARTBEAT)
            if 8 * 60 <= minute < 13 * 60:  # the PIR is heard only in the mornings
                home.send(PIR, F.T_HEARTBEAT)
        if _mornings_only(minute):
            home.send(PIR, F.T_ACTIVITY, arg=(3 << 8) | 5)
        core.tick()
    assert not _faults(home)  # its silences were an offline PIR's


def test_turning_inactivity_off_clears_a_raised_fault(home, tmp_path):
    _live(home, 5, _mornings_only)
    assert len(_faults(home)) == 1
    toml = (tmp_path / "hub.toml").read_text()
    (tmp_path / "hub.toml").write_text(toml.replace("[inactivity]\n",
                                                    "[inactivity]\nenabled = false\n"))
    home.cfg = load(tmp_path / "hub.toml")
    home.restart()
    home.clock.advance(MIN)
    home.core.tick()
    assert len(_faults(home, "restoral")) == 1 and SENSOR_COVERAGE not in home.core.faults
    home.restart()
    home.core.tick()
    assert len(_faults(home, "restoral")) == 1  # once


def test_silences_while_no_time_service_set_the_clock_do_not_count(home):
    home.clock.synced = lambda: False  # a Pi without RTC and no internet: any date
    _live(home, 6, _mornings_only)
    assert not _faults(home) and home.core.home.coverage.figure() is None


def test_a_crash_right_after_the_fault_is_stored_does_not_raise_it_again(home, monkeypatch):
    # The hub dies after fault 210's event is committed and before anything else is written:
    # the decision was committed with the event, so the restarted hub knows the fault is in
    # force and neither repeats it the next day nor forgets to send its restoral.
    real = home.store.put_state

    def dies_saving_a_raised_fault(key, blob):
        if key == "coverage" and json.loads(blob)["raised"]:
            raise SystemExit("power cut")
        real(key, blob)

    monkeypatch.setattr(home.store, "put_state", dies_saving_a_raised_fault)
    with pytest.raises(SystemExit):
        _live(home, 6, _mornings_only)
    assert len(_faults(home)) == 1
    monkeypatch.undo()
    home.restart()
    assert home.core.faults.get(SENSOR_COVERAGE), "restored as in force"
    _live(home, 2, _mornings_only)
    assert len(_faults(home)) == 1, "not raised a second time"
    _live(home, 9, _all_day)
    assert len(_faults(home, "restoral")) == 1
