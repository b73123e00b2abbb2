"""An activity interval not shorter than the inactivity floor would let a moving resident look
still to the detector (a PIR reports ongoing motion only in its summaries): the settings
request refuses it with WRONG_DATA and changes nothing (docs/inactivity.md); a hub.toml floor
edited under an interval the platform set is named, file and key, by `hub check-config` and
in the log at start. The hub core with the real store; requests parsed from their JSON."""

from __future__ import annotations

import inspect
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_testing import HUB_TOML, Home

from hub import contract
from hub.config import load
from hub.contract import ContractError, Result
from shared import frame as F
from shared.inactivity import Inactivity

MIN = 60_000
BUTTON, PIR = 0xA1B2, 0xC3D4
TOPIC = "carebeacon/v1/test-county/hub-a/request/settings"
ROOT = Path(__file__).resolve().parents[2]


def parse(body: dict):
    return contract.parse_request(TOPIC, json.dumps(body), county="test-county", hub_id="hub-a")


def ask(home: Home, schemas, settings: dict, device: int | None = None) -> tuple:
    body = {"transaction": "t", "settings": settings,
            **({"device": f"{device:08x}"} if device is not None else {})}
    schemas.check("request-settings", body)
    home.core.on_request(parse(body))
    return home.pub.responses[-1][2:4]  # result, text


def pending(home: Home) -> dict:
    return {d: dict(rt.settings) for d, rt in home.core.devices.items()}


def test_an_interval_as_long_as_the_floor_is_refused_and_nothing_changes(home, schemas):
    """hub.toml sets no floor: the default, 30 min."""
    before, state = pending(home), home.store.get_state("device_settings")
    result, text = ask(home, schemas, {"activity_interval": 30, "quiet_start": 1380}, PIR)
    assert result == Result.WRONG_DATA
    assert text == "activity_interval 30 of device 0000c3d4 must be shorter than" \
                   " inactivity_floor_min 30"
    assert pending(home) == before and home.store.get_state("device_settings") == state
    assert ask(home, schemas, {"activity_interval": 29}, PIR)[0] == Result.HOLD
    assert home.core.devices[PIR].settings[F.S_SUMMARY_MIN] == 29


def test_a_floor_lowered_or_cleared_under_an_interval_is_refused(home, schemas):
    assert ask(home, schemas, {"inactivity_floor_min": 90})[0] == Result.OK
    assert ask(home, schemas, {"activity_interval": 60})[0] == Result.HOLD  # the whole home
    for floor in (60, None):  # None: back to the default 30
        result, text = ask(home, schemas, {"inactivity_floor_min": floor})
        assert result == Result.WRONG_DATA and "0000a1b2" in text, text
        assert home.core.home.detector._floor == 90 * MIN
    assert ask(home, schemas, {"inactivity_floor_min": 61})[0] == Result.OK
    # the interval cleared (back to the devices' 15) and the floor cleared in one request
    result, _ = ask(home, schemas, {"activity_interval": None, "inactivity_floor_min": None})
    assert result == Result.HOLD and home.core.home.detector._floor == 30 * MIN
    assert home.core.devices[PIR].settings[F.S_SUMMARY_MIN] == 15


def test_one_device_against_a_raised_floor_in_the_same_request(home, schemas):
    """Inactivity settings are whole-home only, so a request carrying both is checked as it
    would leave every device."""
    result, _ = ask(home, schemas, {"activity_interval": 45, "inactivity_floor_min": 60})
    assert result == Result.HOLD and home.core.home.detector._floor == 60 * MIN
    assert ask(home, schemas, {"activity_interval": 59}, BUTTON)[0] == Result.HOLD
    assert ask(home, schemas, {"activity_interval": 60}, BUTTON)[0] == Result.WRONG_DATA


@pytest.mark.parametrize("settings", [
    {"activity_interval": 45, "inactivity_floor_min": 45},
    {"activity_interval": 240, "inactivity_floor_min": 200},
])
def test_the_contract_refuses_both_in_one_request(settings):
    with pytest.raises(ContractError) as e:
        parse({"transaction": "x", "settings": settings})
    assert e.value.result == Result.WRONG_DATA and "activity_interval" in e.value.text


def test_without_inactivity_detection_the_interval_is_free(tmp_path, schemas):
    h = Home(tmp_path, schemas, toml=HUB_TOML.replace("prealarm_min = 10", "enabled = false"))
    try:
        assert ask(h, schemas, {"activity_interval": 120}, PIR)[0] == Result.HOLD
    finally:
        h.store.close()


def test_the_default_floor_checked_is_the_detectors():
    floor = inspect.signature(Inactivity).parameters["floor_ms"].default
    assert floor == contract.FLOOR_DEFAULT_MIN * MIN


def hubcli(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub", "-c", str(tmp / "hub.toml"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_hub_toml_floor_edited_under_the_platforms_interval_is_named(
        tmp_path, schemas, caplog):
    """hub.toml's floor 90, the platform's interval 60 for the PIR; then the installer edits
    floor_min to 45: check-config refuses it (file and key named), and the hub, which must
    run, starts with it and logs the same."""
    toml = HUB_TOML.replace("prealarm_min = 10", "prealarm_min = 10\nfloor_min = 90")
    h = Home(tmp_path, schemas, toml=toml)
    try:
        assert ask(h, schemas, {"activity_interval": 60}, PIR)[0] == Result.HOLD
        r = hubcli(tmp_path, "check-config")
        assert r.returncode == 0, r.stderr  # while the hub runs: the store is read only
        (tmp_path / "hub.toml").write_text(toml.replace("floor_min = 90", "floor_min = 45"))
        r = hubcli(tmp_path, "check-config")
        assert r.returncode == 2
        assert (f"config error: {tmp_path / 'hub.toml'}: inactivity.floor_min: activity_interval"
                " 60 of device 0000c3d4 must be shorter than inactivity_floor_min 45") in r.stderr
        h.cfg = load(tmp_path / "hub.toml")
        with caplog.at_level(logging.ERROR, logger="carebeacon.home"):
            h.restart()
        assert f"{tmp_path / 'hub.toml'}: inactivity.floor_min: activity_interval 60 of device" \
               " 0000c3d4" in caplog.text
        assert h.core.home.detector._floor == 45 * MIN  # as configured: it runs
        # the platform's floor over it: that is named instead, and one above 60 is fine
        assert ask(h, schemas, {"inactivity_floor_min": 61})[0] == Result.OK
        assert hubcli(tmp_path, "check-config").returncode == 0
    finally:
        h.store.close()
