"""hub.toml and the secrets file: every bad value is named with its file and key."""

import os
from pathlib import Path

import pytest

from hub.config import ConfigError, load

GOOD = """
[hub]
id = "hub-0001"
county = "yangpu"
household = "HH-42"
data_dir = "data"

[platform]
url = "mqtts://platform.example.org:8883"
ca_file = "ca.pem"
cert_file = "hub.pem"
key_file = "hub.key"

[radio]
scanning = "passive"

[inactivity]
floor_min = 45
ceiling_min = 1440

[[devices]]
id = "0000a1b2"
kind = "button"
room = "bedroom"
location = "by the bed"

[[devices]]
id = "0000c3d4"
kind = "pir"
room = "hall"
entrance = true
heartbeat_min = 30
"""
SECRETS = """
[keys]
"0000a1b2" = "000102030405060708090a0b0c0d0e0f"
"0000c3d4" = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
"""


def write(tmp: Path, hub: str = GOOD, secrets: str = SECRETS, mode: int = 0o600) -> Path:
    for f in ("ca.pem", "hub.pem", "hub.key"):
        (tmp / f).write_text("x")
    os.chmod(tmp / "hub.key", 0o600)  # the hub's TLS key: not for other users (checked)
    (tmp / "hub.toml").write_text(hub)
    s = tmp / "secrets.toml"
    s.write_text(secrets)
    os.chmod(s, mode)
    return tmp / "hub.toml"


def test_good_config_loads(tmp_path):
    c = load(write(tmp_path))
    assert c.hub_id == "hub-0001" and c.county == "yangpu" and c.household == "HH-42"
    assert c.data_dir == tmp_path / "data"
    assert c.platform.tls and c.platform.port == 8883 and c.platform.host == "platform.example.org"
    assert c.radio.scanning == "passive" and c.radio.silence_restart_s == 90
    assert c.inactivity.values == {"floor_min": 45, "ceiling_min": 1440}
    assert sorted(c.devices) == [0xA1B2, 0xC3D4]
    assert c.devices[0xC3D4].entrance and c.devices[0xC3D4].heartbeat_min == 30
    assert c.keys[0xA1B2] == bytes(range(16))


def test_keys_never_in_repr_or_errors(tmp_path):
    c = load(write(tmp_path))
    assert "000102030405060708090a0b0c0d0e0f" not in repr(c)
    bad = SECRETS.replace('"f0e1d2c3b4a5968778695a4b3c2d1e0f"', '"f0e1d2c3b4a59687"')
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path, secrets=bad))
    assert "f0e1d2c3b4a59687" not in str(e.value) and "keys.0000c3d4" in str(e.value)


@pytest.mark.parametrize("old,new,where", [
    ('kind = "button"', 'kind = "buton"', "devices[0].kind: 'buton' is not one of"),
    ('id = "0000a1b2"', 'id = "a1b2"', "devices[0].id"),
    ('heartbeat_min = 30', 'heartbeat_min = 0', "devices[1].heartbeat_min: 0 is outside 1..1440"),
    ('heartbeat_min = 30', 'heartbeat_min = "30"',
     "devices[1].heartbeat_min: '30' is not an integer"),
    ('floor_min = 45', 'floor_min = 5', "inactivity.floor_min: 5 is outside"),
    ('floor_min = 45\nceiling_min = 1440', 'floor_min = 200\nceiling_min = 100',
     "inactivity.floor_min: must not exceed ceiling_min"),
    ('scanning = "passive"', 'scanning = "loud"', "radio.scanning"),
    ('url = "mqtts://platform.example.org:8883"', 'url = "http://x"', "platform.url"),
    ('ca_file = "ca.pem"', 'ca_file = "nope.pem"', "platform.ca_file"),
    ('county = "yangpu"', 'county = "Yangpu"', "hub.county"),
    ('id = "hub-0001"', '', "hub.id: missing"),
    ('[radio]', '[radio]\nscaning = "active"', "radio.scaning: unknown key"),
    ('id = "0000c3d4"', 'id = "0000a1b2"', "devices[1].id: 0000a1b2 is listed twice"),
    ('[hub]', '[hub\n', "not valid TOML"),
])
def test_each_bad_value_names_file_and_key(tmp_path, old, new, where):
    assert old in GOOD
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path, GOOD.replace(old, new, 1)))
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / "hub.toml")) and where in msg


def test_secrets_readable_by_others_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="chmod 600"):
        load(write(tmp_path, mode=0o644))


def test_device_without_key_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="keys.0000c3d4: missing key"):
        load(write(tmp_path, secrets=SECRETS.split('"0000c3d4"')[0]))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "absent.toml")
