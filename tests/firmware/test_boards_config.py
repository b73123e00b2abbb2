"""Board files and the provisioning config: valid ones load, wrong ones say file and key."""

import copy
import json

import pytest
from simkit import KEY, REPO

from firmware import board as boards, config as configs

BOARD_FILES = sorted((REPO / "boards").glob("*.json"))


def raw(name):
    return json.loads((REPO / "boards" / (name + ".json")).read_text())


@pytest.mark.parametrize("path", BOARD_FILES, ids=[p.stem for p in BOARD_FILES])
def test_every_board_file_is_valid(path):
    b = boards.load(str(path))
    assert b.name == path.stem
    for k in ("deep_sleep_ua", "light_sleep_ua", "awake_ma", "radio_ma", "sources"):
        assert k in b.energy
    assert b.energy["sources"], "currents must cite where they come from"


def test_one_board_per_device_kind_at_least():
    kinds = set()
    for p in BOARD_FILES:
        kinds.update(boards.load(str(p)).kinds)
    assert kinds >= {"button", "pir", "bracelet"}


def test_both_wake_methods_are_covered():
    wakes = {boards.load(str(p)).wake for p in BOARD_FILES}
    assert wakes == {"ext0", "gpio"}


def err(d, path="boards/x.json"):
    with pytest.raises(boards.BoardError) as e:
        boards.parse(d, path)
    return str(e.value)


def test_c3_wake_pin_must_be_gpio0_to_5():
    d = raw("esp32c3-supermini-button")
    d["inputs"]["button"]["pin"] = 9
    m = err(d)
    assert m.startswith("boards/x.json: inputs.button.pin: GPIO9 cannot wake an ESP32-C3")


def test_c3_has_no_ext0():
    d = raw("esp32c3-supermini-button")
    d["wake"] = "ext0"
    m = err(d)
    assert "boards/x.json: wake:" in m and "no ext0" in m


def test_esp32_ext0_pin_must_be_rtc_gpio():
    d = raw("esp32-devkit-pir-hcsr501")
    d["inputs"]["pir"]["pin"] = 23
    assert "inputs.pir.pin: GPIO23 cannot wake an ESP32" in err(d)


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda d: d["led"].update(pin=12), "led.pin"),  # SPI flash on C3 modules
        (lambda d: d["led"].update(pin=3), "led.pin"),  # taken by the button
        (lambda d: d["buzzer"].update(pin=19), "buzzer.pin"),  # USB D+: the REPL
        (lambda d: d["battery"].update(pin=5), "battery.pin"),  # not ADC1
        (lambda d: d.pop("energy"), "energy"),
        (lambda d: d["energy"].pop("sources"), "energy.sources"),
        (lambda d: d.update(kinds=["toaster"]), "kinds"),
        (lambda d: d.update(chip="esp8266"), "chip"),
        (lambda d: d["safe_boot"].update(input="pir"), "safe_boot.input"),
        (lambda d: d["inputs"]["button"].update(active=2), "inputs.button.active"),
        (lambda d: d.pop("battery"), "battery"),
    ],
)
def test_wrong_board_files_name_the_key(mutate, key):
    d = copy.deepcopy(raw("esp32c3-supermini-button"))
    mutate(d)
    m = err(d)
    assert m.startswith("boards/x.json: %s:" % key), m


def test_input_only_pins_have_no_pulls_and_no_outputs():
    d = raw("m5stickc-plus2-bracelet")
    d["inputs"]["button"]["pull"] = "up"
    assert "inputs.button.pull: GPIO37 has no internal pull" in err(d)
    d = raw("m5stickc-plus2-bracelet")
    d["led"]["pin"] = 36
    assert "led.pin: GPIO36 is input-only" in err(d)


def test_missing_and_misnamed_files(tmp_path):
    with pytest.raises(boards.BoardError, match="cannot read the board file"):
        boards.load(str(tmp_path / "nope.json"))
    p = tmp_path / "renamed.json"
    p.write_text((REPO / "boards" / "esp32c3-supermini-button.json").read_text())
    with pytest.raises(boards.BoardError, match="renamed.json: name:"):
        boards.load(str(p))
    p.write_text("{not json")
    with pytest.raises(boards.BoardError, match="not valid JSON"):
        boards.load(str(p))


# -- the provisioning config -----------------------------------------------------------


def cfg_err(d):
    with pytest.raises(configs.ConfigError) as e:
        configs.parse(d, "/config.json")
    return str(e.value)


GOOD = {"device_id": 7, "key": KEY, "kind": "button", "board": "esp32c3-supermini-button"}


def test_good_config_and_defaults():
    c = configs.parse(dict(GOOD))
    assert c.device_id == 7 and c.key == bytes.fromhex(KEY)
    assert c.heartbeat_min == 60 and c.cancel_s == 20


@pytest.mark.parametrize(
    "change, key",
    [
        ({"device_id": 0}, "device_id"),
        ({"key": "00"}, "key"),
        ({"kind": "watch"}, "kind"),
        ({"board": "../etc/passwd"}, "board"),
        ({"cancel_s": 5}, "cancel_s"),
        ({"heartbeat_min": 100000}, "heartbeat_min"),
        ({"heartbeat_mins": 60}, "heartbeat_mins"),
    ],
)
def test_config_errors_name_file_and_key(change, key):
    d = dict(GOOD)
    d.update(change)
    assert cfg_err(d).startswith("/config.json: %s:" % key)


def test_config_errors_never_show_the_key():
    secret = "zz" + KEY[2:]
    m = cfg_err(dict(GOOD, key=secret))
    assert secret not in m and KEY[2:10] not in m


def test_config_file_errors(tmp_path):
    with pytest.raises(configs.ConfigError, match="provision the device first"):
        configs.load(str(tmp_path / "config.json"))
    p = tmp_path / "config.json"
    p.write_text('{"key": "%s", ' % KEY)
    with pytest.raises(configs.ConfigError) as e:
        configs.load(str(p))
    assert KEY not in str(e.value)
