"""The platform clears a setting it set (`null` in the settings request, docs/mqtt.md): hub.toml's
heartbeat, the devices' default or hub.toml's [inactivity] value applies again; the device is
sent it at its next contact; the supervisor follows the heartbeat (a shorter one once the
device has it); all of it kept across restarts. The hub core with the real store, requests
parsed from their JSON and checked against the contract's schemas."""

from __future__ import annotations

import json

import pytest
from pipeline_testing import Home, deliver_settings

from hub import contract
from hub.contract import ContractError, Result
from hub.device_settings import DEVICE_DEFAULTS
from shared import frame as F

MIN = 60_000
BUTTON, PIR = 0xA1B2, 0xC3D4  # hub.toml: heartbeat 60 (the default) and 30
TOPIC = "carebeacon/v1/test-county/hub-a/request/settings"


def ask(home: Home, schemas, settings: dict, device: int | None = None, tx="t") -> tuple:
    body = {"transaction": tx, "settings": settings}
    if device is not None:
        body["device"] = f"{device:08x}"
    schemas.check("request-settings", body)
    home.core.on_request(contract.parse_request(TOPIC, json.dumps(body), county="test-county",
                                                hub_id="hub-a"))
    kind, transaction, result, text, data = home.pub.responses[-1]
    schemas.check("response-settings", contract.response(
        hub="hub-a", county="test-county", kind=kind, transaction=transaction, result=result,
        text=text, data=data))
    return result, text, data


def window_min(home: Home, dev: int) -> int:
    return home.core.home.supervisor.window_ms(dev) // MIN


def stored(home: Home) -> dict:
    blob = home.store.get_state("device_settings")
    return json.loads(blob) if blob else {}


def test_null_parses_as_a_clear_and_a_wrong_type_is_still_refused():
    r = contract.parse_request(TOPIC, '{"transaction": 1, "settings": {"quiet_end": null,'
                               ' "heartbeat_interval": 20, "inactivity_rank": null}}')
    assert r.settings == ((F.S_HEARTBEAT_MIN, 20), (F.S_QUIET_END_MIN, None))
    assert r.inactivity == (("rank", None),)
    for bad in ('"7"', "true", "[]"):
        with pytest.raises(ContractError) as e:
            contract.parse_request(TOPIC, '{"transaction": 1, "settings": {"quiet_end": %s}}'
                                   % bad)
        assert e.value.result == Result.INVALID_FORMAT


def test_a_cleared_heartbeat_is_hub_tomls_again_supervised_once_the_device_has_it(
        home, schemas, caplog):
    """720 min set by the platform, then cleared: the button is sent hub.toml's 60; until
    it has it, it still reports every 720 min, so it is supervised at 720 (no false
    supervision_missing); after a restart nothing of the platform's value is left."""
    assert ask(home, schemas, {"heartbeat_interval": 720}, BUTTON)[0] == Result.HOLD
    assert deliver_settings(home, BUTTON) == {F.S_HEARTBEAT_MIN: 720}
    assert window_min(home, BUTTON) == 2 * 720 + 10
    result, _, data = ask(home, schemas, {"heartbeat_interval": None}, BUTTON)
    assert result == Result.HOLD and data == {"devices": ["0000a1b2"]}
    assert home.core.devices[BUTTON].settings == {F.S_HEARTBEAT_MIN: 60}
    assert window_min(home, BUTTON) == 2 * 720 + 10  # the device has 720 until it hears 60
    home.restart()  # before it heard it: the longer window is kept, 60 is sent again
    assert home.core.devices[BUTTON].settings == {F.S_HEARTBEAT_MIN: 60}
    assert window_min(home, BUTTON) == 2 * 720 + 10
    assert deliver_settings(home, BUTTON) == {F.S_HEARTBEAT_MIN: 60}
    assert window_min(home, BUTTON) == 2 * 60 + 10
    caplog.clear()
    home.restart()
    assert window_min(home, BUTTON) == 2 * 60 + 10
    assert "wins over hub.toml" not in caplog.text
    assert stored(home) == {}
    assert home.core.device_settings.in_force(BUTTON) == {F.S_HEARTBEAT_MIN: 60}


def test_a_cleared_shorter_heartbeat_gives_the_longer_window_at_once(home, schemas):
    """The PIR's 30 min (hub.toml) shortened to 10 by the platform, then cleared: 30 is
    supervised at once (a longer interval never makes a device look offline)."""
    ask(home, schemas, {"heartbeat_interval": 10}, PIR)
    deliver_settings(home, PIR)
    assert window_min(home, PIR) == 2 * 10 + 10
    ask(home, schemas, {"heartbeat_interval": None})  # the whole home
    assert window_min(home, PIR) == 2 * 30 + 10
    assert home.core.devices[PIR].settings == {F.S_HEARTBEAT_MIN: 30}
    assert home.core.devices[BUTTON].settings == {F.S_HEARTBEAT_MIN: 60}


def test_a_cleared_device_setting_sends_the_default_until_the_device_has_it(home, schemas):
    """A device keeps a value it was sent (NVS): clearing quiet_start must send it the
    default, also when the hub restarts before the device's next contact, and only until
    the device has it."""
    deliver_settings(home, PIR)
    ask(home, schemas, {"quiet_start": 1380, "activity_interval": 10}, PIR)
    assert deliver_settings(home, PIR) == {F.S_QUIET_START_MIN: 1380, F.S_SUMMARY_MIN: 10}
    ask(home, schemas, {"quiet_start": None}, PIR)
    assert home.core.devices[PIR].settings == {F.S_QUIET_START_MIN: 1320}
    home.restart()
    assert home.core.devices[PIR].settings == {
        F.S_HEARTBEAT_MIN: 30, F.S_SUMMARY_MIN: 10, F.S_QUIET_START_MIN: 1320}
    assert deliver_settings(home, PIR)[F.S_QUIET_START_MIN] == DEVICE_DEFAULTS[F.S_QUIET_START_MIN]
    assert stored(home) == {"0000c3d4": {"settings": {"2": 10}}}  # the default is delivered
    home.restart()
    assert home.core.devices[PIR].settings == {F.S_HEARTBEAT_MIN: 30, F.S_SUMMARY_MIN: 10}


def test_a_clear_repeated_before_the_devices_next_contact_still_sends_the_default(
        home, schemas):
    """The platform retries a request whose response it lost (or the broker delivers it
    twice): the second clear found nothing of the platform's and dropped the default still to
    send, so the device kept the platform's old value for ever."""
    ask(home, schemas, {"quiet_start": 600}, BUTTON)
    assert deliver_settings(home, BUTTON)[F.S_QUIET_START_MIN] == 600
    for _ in range(2):
        assert ask(home, schemas, {"quiet_start": None}, BUTTON, tx="c")[0] == Result.HOLD
    assert home.core.devices[BUTTON].settings == {F.S_QUIET_START_MIN: 1320}
    home.restart()
    assert deliver_settings(home, BUTTON)[F.S_QUIET_START_MIN] == 1320


def test_a_value_set_again_before_the_default_was_heard_wins(home, schemas):
    ask(home, schemas, {"fall_cancel_window": 25}, BUTTON)
    ask(home, schemas, {"fall_cancel_window": None}, BUTTON)
    ask(home, schemas, {"fall_cancel_window": 12}, BUTTON)
    home.restart()
    assert deliver_settings(home, BUTTON) == {F.S_HEARTBEAT_MIN: 60, F.S_CANCEL_S: 12}
    assert stored(home) == {"0000a1b2": {"settings": {"3": 12}}}


def test_null_for_a_value_the_platform_never_set_changes_nothing(home, schemas):
    """Not even the device's own value (a provisioned one the hub does not know)."""
    deliver_settings(home, PIR)
    before = home.store.get_state("device_settings")
    result, _, _ = ask(home, schemas, {"activity_interval": None, "quiet_end": None}, PIR)
    assert result == Result.HOLD  # a repeated request gets the same answer
    assert ask(home, schemas, {"activity_interval": None, "quiet_end": None}, PIR)[0] \
        == Result.HOLD
    assert home.core.devices[PIR].settings == {}
    assert home.store.get_state("device_settings") == before


def test_the_devices_defaults_are_the_firmwares():
    from firmware import config as fw

    by_name = {name: default for name, default, *_ in fw.FIELDS}
    names = {F.S_SUMMARY_MIN: "summary_min", F.S_CANCEL_S: "cancel_s",
             F.S_QUIET_START_MIN: "quiet_start_min", F.S_QUIET_END_MIN: "quiet_end_min"}
    assert DEVICE_DEFAULTS == {sid: by_name[n] for sid, n in names.items()}


def test_a_cleared_inactivity_setting_is_hub_tomls_again_at_once_and_after_a_restart(
        home, schemas):
    """hub.toml sets prealarm_min = 10; the platform set 5, then cleared it; margin_pct,
    not in hub.toml, goes back to the detector's default."""
    ask(home, schemas, {"inactivity_prealarm_min": 5, "inactivity_margin_pct": 200})
    assert home.core.home.prealarm_ms == 5 * MIN
    result, _, data = ask(home, schemas, {"inactivity_prealarm_min": None,
                                          "inactivity_margin_pct": None})
    assert result == Result.OK and data["inactivity"] == {"prealarm_min": 10}
    det = home.core.home.detector
    assert (home.core.home.prealarm_ms, det._pre, det._margin) == (10 * MIN, 10 * MIN, 120)
    home.restart()
    assert home.core.home.tuned == {} and home.core.home.detector._pre == 10 * MIN


def test_a_clear_that_would_leave_the_floor_above_the_ceiling_is_refused(tmp_path, schemas):
    """hub.toml: ceiling 100. The platform's ceiling 300 and floor 200 are in force;
    clearing the ceiling alone would leave floor 200 above hub.toml's 100: refused, nothing
    changes."""
    from pipeline_testing import HUB_TOML

    h = Home(tmp_path, schemas, toml=HUB_TOML.replace("prealarm_min = 10",
                                                      "ceiling_min = 100"))
    try:
        assert ask(h, schemas, {"inactivity_ceiling_min": 300,
                                "inactivity_floor_min": 200})[0] == Result.OK
        result, text, _ = ask(h, schemas, {"inactivity_ceiling_min": None})
        assert result == Result.WRONG_DATA and "ceiling" in text
        assert h.core.home.detector._ceil == 300 * MIN
        assert h.core.home.tuned == {"ceiling_min": 300, "floor_min": 200}
    finally:
        h.store.close()
