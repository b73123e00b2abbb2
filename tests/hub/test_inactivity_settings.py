"""The platform tunes the home's inactivity detector through the settings request: within the
documented bounds (contract.INACTIVITY_BOUNDS, docs/inactivity.md), applied to the running
detector without losing its learned history, kept across restarts, refused outside the
bounds with WRONG_DATA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_testing import HUB_TOML, Home  # the core-with-recorder harness (conftest's path)

from hub import contract
from hub.contract import ContractError, Result
from shared import inactivity as I

MIN = 60_000
TOPIC = "carebeacon/v1/test-county/hub-a/request/settings"


def parse(body: dict):
    return contract.parse_request(TOPIC, json.dumps(body), county="test-county", hub_id="hub-a")


def ask(home: Home, body: dict, schemas) -> tuple:
    schemas.check("request-settings", body)
    home.core.on_request(parse(body))
    kind, transaction, result, text, data = home.pub.responses[-1]
    answer = contract.response(hub="hub-a", county="test-county", kind=kind,
                               transaction=transaction, result=result, text=text, data=data)
    schemas.check("response-settings", answer)
    return result, text, data


@pytest.fixture
def home(tmp_path, schemas):
    h = Home(tmp_path, schemas)
    yield h
    h.store.close()


def learn_a_day(home: Home) -> None:
    """Some history: the PIR reports motion every 20 min for a day."""
    for _ in range(72):
        home.clock.advance(20 * MIN)
        home.send(0xC3D4, 7, arg=(3 << 8) | 5)  # ACTIVITY: 3 motions in 5 min
        home.core.home.tick(home.clock.mono_ms())


def test_tuning_applies_at_once_keeps_history_and_survives_a_restart(home, schemas):
    learn_a_day(home)
    det = home.core.home.detector
    history = bytes(det._prof.hist)
    assert any(b != 0xFF for b in history)
    result, _, data = ask(home, {"transaction": "t1", "settings": {
        "inactivity_floor_min": 45, "inactivity_margin_pct": 150,
        "inactivity_away_max_min": 720, "inactivity_prealarm_min": 5}}, schemas)
    assert result == Result.OK
    assert data["inactivity"] == {"floor_min": 45, "margin_pct": 150, "away_max_min": 720,
                                  "prealarm_min": 5}
    det = home.core.home.detector
    assert (det._floor, det._margin, det._away_max, det._pre) == (45 * MIN, 150, 720 * MIN,
                                                                 5 * MIN)
    assert bytes(det._prof.hist) == history  # nothing learned was lost
    assert home.core.home.prealarm_ms == 5 * MIN
    home.restart()
    det = home.core.home.detector
    assert (det._floor, det._margin, det._pre) == (45 * MIN, 150, 5 * MIN)  # over hub.toml's 10
    assert bytes(det._prof.hist) == history


def test_a_repeated_request_gives_the_same_answer(home, schemas):
    body = {"transaction": 9, "settings": {"inactivity_rank": 2}}
    first = ask(home, body, schemas)
    assert ask(home, body, schemas) == first and first[0] == Result.OK
    assert home.core.home.detector._rank == 2


@pytest.mark.parametrize("settings", [
    {"inactivity_floor_min": 29},
    {"inactivity_floor_min": 601},
    {"inactivity_ceiling_min": 3001},
    {"inactivity_prealarm_min": 0},
    {"inactivity_margin_pct": 99},
    {"inactivity_rank": 4},
    {"inactivity_away_max_min": 59},
    {"inactivity_buffer_min": 361},
    {"inactivity_floor_min": 200, "inactivity_ceiling_min": 100},
    {"inactivity_days": 28},  # not tunable: it is the stored layout
])
def test_outside_the_bounds_is_wrong_data(settings):
    with pytest.raises(ContractError) as e:
        parse({"transaction": "x", "settings": settings})
    assert e.value.result == Result.WRONG_DATA


def test_inactivity_settings_are_for_the_whole_home(home):
    with pytest.raises(ContractError) as e:
        parse({"transaction": "x", "device": "0000c3d4",
               "settings": {"inactivity_floor_min": 60}})
    assert e.value.result == Result.WRONG_DATA


def test_floor_above_the_ceiling_in_force_is_refused_and_nothing_changes(home, schemas):
    assert ask(home, {"transaction": 1, "settings": {"inactivity_ceiling_min": 120}},
               schemas)[0] == Result.OK
    result, text, _ = ask(home, {"transaction": 2, "settings": {"inactivity_floor_min": 180}},
                          schemas)
    assert result == Result.WRONG_DATA and "ceiling" in text
    assert home.core.home.detector._floor == 30 * MIN
    assert home.core.home.settings()["ceiling_min"] == 120


def test_device_and_inactivity_settings_in_one_request(home, schemas):
    result, _, data = ask(home, {"transaction": "m", "settings": {
        "activity_interval": 10, "inactivity_buffer_min": 45}}, schemas)
    assert result == Result.HOLD and data["inactivity"]["buffer_min"] == 45
    assert home.core.home.detector._buffer == 45 * MIN
    assert home.core.devices[0xC3D4].settings  # queued for the devices as before


def test_a_running_prealarm_goes_on_under_new_settings(home, schemas):
    home.core.home.detector = I.Inactivity(default_ms=60 * MIN, floor_ms=MIN)
    home.send(0xC3D4, 7, arg=(1 << 8) | 5)
    for _ in range(61):
        home.clock.advance(MIN)
        home.core.home.tick(home.clock.mono_ms())
    assert home.core.home.detector.state == I.ST_PREALARM
    assert ask(home, {"transaction": "p", "settings": {"inactivity_prealarm_min": 20}},
               schemas)[0] == Result.OK
    det = home.core.home.detector
    assert det.state == I.ST_PREALARM and det.still_ms >= 60 * MIN


def test_disabled_detector_is_not_treated(tmp_path, schemas):
    h = Home(tmp_path, schemas, toml=HUB_TOML.replace("prealarm_min = 10", "enabled = false"))
    try:
        result, text, _ = ask(h, {"transaction": "d", "settings": {"inactivity_rank": 2}},
                              schemas)
        assert result == Result.NOT_TREATED and "disabled" in text
    finally:
        h.store.close()


def test_unusable_stored_settings_fall_back_to_hub_toml(home):
    home.store.put_state("inactivity_settings", b'{"floor_min": 5}')
    home.restart()
    assert home.core.home.tuned == {} and home.core.home.detector._floor == 30 * MIN


def test_schema_and_docs_state_the_same_bounds_as_the_hub(schemas):
    props = schemas.raw["request-settings"]["properties"]["settings"]["properties"]
    doc = (Path(__file__).resolve().parents[2] / "docs" / "inactivity.md").read_text()
    for key, (lo, hi) in contract.INACTIVITY_BOUNDS.items():
        p = props[f"inactivity_{key}"]
        assert (p["minimum"], p["maximum"]) == (lo, hi), key
        assert f"| `inactivity_{key}` | {lo}–{hi} |" in doc, f"docs/inactivity.md: {key}"
