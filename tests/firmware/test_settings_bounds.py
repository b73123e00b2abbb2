"""The settings a device keeps (docs/protocol.md, "Settings") have one set of bounds: the
firmware clamps to them (firmware/apps/settings.py), the provisioning config is checked
against them (firmware/config.py), and the hub's contract refuses a platform value outside them
(hub/contract_requests.py; result 3, wrong data), so a value the hub accepts is the value in
force on the device. The hub sends the pre-alarm and identify itself: their values must be
ones the device shows for as long as meant."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from firmware import config as configs
from firmware.apps.settings import Settings
from hub import config as hubconfig, contract, requests
from shared import frame as F

CONFIG_KEYS = {F.S_HEARTBEAT_MIN: "heartbeat_min", F.S_SUMMARY_MIN: "summary_min",
               F.S_CANCEL_S: "cancel_s", F.S_QUIET_START_MIN: "quiet_start_min",
               F.S_QUIET_END_MIN: "quiet_end_min"}


def fresh_settings() -> Settings:
    nvs: dict = {}
    hal = SimpleNamespace(nvs_get=lambda k, d: nvs.get(k, d),
                          nvs_set=lambda k, v: nvs.__setitem__(k, v))
    return Settings(hal, configs.Config())


def kept(sid: int, value: int) -> int:
    st = fresh_settings()
    st.apply(sid, value)
    return (st.hb_min, st.summary_min, st.cancel_s, st.quiet_start, st.quiet_end)[sid - 1]


def test_every_device_setting_has_a_contract_name():
    assert sorted(sid for sid, _, _ in contract.SETTINGS.values()) == sorted(CONFIG_KEYS)


@pytest.mark.parametrize("name", sorted(contract.SETTINGS))
def test_every_value_the_contract_accepts_is_kept_by_the_device_as_sent(name):
    sid, lo, hi = contract.SETTINGS[name]
    for v in (lo, lo + 1, (lo + hi) // 2, hi - 1, hi):
        assert kept(sid, v) == v, f"{name}={v} accepted by the hub, not in force on the device"
    assert (lo, hi) == (F.SETTING_LO[sid], F.SETTING_HI[sid])  # one table for both
    # one step outside: the device would clamp it, so the contract must refuse it
    for v in (lo - 1, hi + 1):
        assert kept(sid, v) != v
        with pytest.raises(contract.ContractError) as e:
            contract.parse_request("carebeacon/v1/c/h/request/settings",
                                   '{"transaction": 1, "settings": {"%s": %d}}' % (name, v))
        assert e.value.result == contract.Result.WRONG_DATA


def test_provisioning_config_and_hub_toml_have_the_same_bounds():
    fields = {f[0]: (f[2], f[3]) for f in configs.FIELDS}
    for sid, key in CONFIG_KEYS.items():
        assert fields[key] == (F.SETTING_LO[sid], F.SETTING_HI[sid]), key
    lo, hi = F.SETTING_LO[F.S_HEARTBEAT_MIN], F.SETTING_HI[F.S_HEARTBEAT_MIN]
    for v, ok in ((lo - 1, False), (lo, True), (hi, True), (hi + 1, False)):
        table = {"id": "0000a1b2", "kind": "button", "heartbeat_min": v}
        reader = hubconfig._Reader(Path("hub.toml"), table, "devices[0]")
        if ok:
            assert hubconfig._device(reader).heartbeat_min == v
        else:
            with pytest.raises(hubconfig.ConfigError):
                hubconfig._device(reader)
    # the hub's default heartbeat (hub.toml) is the device's default (config.json)
    assert dict((f[0], f[1]) for f in configs.FIELDS)["heartbeat_min"] == 60


def test_prealarm_and_identify_values_the_hub_sends_are_shown_as_meant():
    # pre-alarm: minutes left, at most the longest pre-alarm the platform may set; the device
    # sounds it for that long on tick maths (a gap below 2**29 ms)
    longest = contract.INACTIVITY_BOUNDS["prealarm_min"][1]
    assert 1 <= longest and longest * 60_000 < 2**29
    # identify: seconds, in the protocol's 1..255
    assert 1 <= requests.IDENTIFY_S <= 255
