"""`hub device remove` takes out only the device's [[devices]] table: the tables after it
([platform], [radio], [inactivity]), comments that belong to them and text inside multi-line
strings stay; if the result cannot be written or does not load, both files stay as they were."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from cli_files_testing import KEY, hubcli, out, secrets_toml, snapshot, write_config

from hub import cli, config as C

HEAD = """[hub]
id = "hub-a"
county = "test-county"
household = "HH-7"
data_dir = "data"
"""
PLATFORM = """
[platform]
url = "mqtt://localhost:1883"
"""
A1B2 = """
# the button by the bed
[[devices]]
id = "0000a1b2"
kind = "button"
room = "bedroom"
"""
C3D4 = """
[[devices]]
id = "0000c3d4"
kind = "pir"
room = "living room"
"""
RADIO = """
# Radio: the USB dongle, the built-in one shares its chip with Wi-Fi
[radio]
adapter = "hci1"              # a comment on the value

[inactivity]
enabled = false
"""


def remove(d: Path, hexid: str):
    return hubcli(d / "hub.toml", "device", "remove", hexid, "--yes")


@pytest.mark.parametrize("layout", ["devices before [radio]",
                                    "devices before [platform], [radio], [inactivity]"])
def test_removing_the_last_device_keeps_the_tables_after_it(tmp_path, layout):
    """The review's demo d6: A and B."""
    if layout == "devices before [radio]":
        before, after = HEAD + PLATFORM + A1B2 + C3D4 + RADIO, HEAD + PLATFORM + A1B2 + RADIO
    else:
        before, after = HEAD + A1B2 + C3D4 + PLATFORM + RADIO, HEAD + A1B2 + PLATFORM + RADIO
    write_config(tmp_path, before, secrets_toml("0000a1b2", "0000c3d4"))
    r = remove(tmp_path, "0000c3d4")
    assert r.returncode == 0, out(r)
    assert (tmp_path / "hub.toml").read_text() == after  # comments and layout kept
    cfg = C.load(tmp_path / "hub.toml")
    assert (cfg.radio.adapter, cfg.inactivity.enabled) == ("hci1", False)
    assert list(cfg.devices) == [0xA1B2] and list(cfg.keys) == [0xA1B2]


def test_removing_a_device_takes_its_own_comment_and_leaves_the_next_ones(tmp_path):
    write_config(tmp_path, HEAD + PLATFORM + A1B2 + C3D4 + RADIO,
                 secrets_toml("0000a1b2", "0000c3d4"))
    r = remove(tmp_path, "0000A1B2")
    assert r.returncode == 0, out(r)
    assert (tmp_path / "hub.toml").read_text() == HEAD + PLATFORM + C3D4 + RADIO


def test_lines_inside_multi_line_strings_are_not_tables(tmp_path):
    """A location written as a multi-line string may hold lines that look like headers."""
    tricky = ('\n[[devices]]\nid = "0000e5f6"\nkind = "button"\n'
              'location = """by the door\n[radio]\n[[devices]]\nid = "0000c3d4" \\" end"""\n'
              "elder = '''\n[inactivity]'''\n")
    write_config(tmp_path, HEAD + PLATFORM + A1B2 + tricky + C3D4 + RADIO,
                 secrets_toml("0000a1b2", "0000c3d4", "0000e5f6"))
    old = tomllib.loads((tmp_path / "hub.toml").read_text())
    r = remove(tmp_path, "0000c3d4")
    assert r.returncode == 0, out(r)
    assert (tmp_path / "hub.toml").read_text() == HEAD + PLATFORM + A1B2 + tricky + RADIO
    r = remove(tmp_path, "0000e5f6")
    assert r.returncode == 0, out(r)
    assert (tmp_path / "hub.toml").read_text() == HEAD + PLATFORM + A1B2 + RADIO
    new = tomllib.loads((tmp_path / "hub.toml").read_text())
    assert {k: v for k, v in new.items() if k != "devices"} == \
        {k: v for k, v in old.items() if k != "devices"}


def test_a_failed_key_write_puts_hub_toml_back(tmp_path):
    """hub.toml is written first (small), the secrets file (big) fails on the file-size
    limit: hub.toml must not stay without the device while its key stays."""
    write_config(tmp_path, HEAD + PLATFORM + A1B2 + C3D4 + RADIO,
                 "# " + "x" * 3000 + "\n" + secrets_toml("0000a1b2", "0000c3d4"))
    before = snapshot(tmp_path)
    r = hubcli(tmp_path / "hub.toml", "device", "remove", "0000c3d4", "--yes", fsize=2048)
    text = out(r)
    assert r.returncode == 2 and "Traceback" not in text, text
    assert f"cannot write {tmp_path / 'secrets.toml'}" in text and "nothing was changed" in text
    assert snapshot(tmp_path) == before


def test_a_result_that_does_not_load_puts_both_files_back(tmp_path, monkeypatch, capsys):
    write_config(tmp_path, HEAD + PLATFORM + A1B2 + C3D4 + RADIO,
                 secrets_toml("0000a1b2", "0000c3d4"))
    before = snapshot(tmp_path)
    real_load, calls = C.load, []

    def load(*a, **kw):  # the CLI's own load passes; the check of the result fails
        calls.append(a)
        if len(calls) > 1:
            raise C.ConfigError("the check of the result fails")
        return real_load(*a, **kw)

    monkeypatch.setattr(C, "load", load)
    assert cli.main(["-c", str(tmp_path / "hub.toml"), "device", "remove", "0000c3d4",
                     "--yes"]) == 2
    assert len(calls) == 2 and snapshot(tmp_path) == before
    assert "the check of the result fails; nothing was changed" in capsys.readouterr().err


def test_any_error_after_writing_puts_both_files_back(tmp_path, monkeypatch):
    write_config(tmp_path, HEAD + PLATFORM + A1B2 + C3D4 + RADIO,
                 secrets_toml("0000a1b2", "0000c3d4"))
    before = snapshot(tmp_path)
    cfg = C.load(tmp_path / "hub.toml")

    def broken(*a, **kw):
        raise RuntimeError("a bug")

    monkeypatch.setattr(C, "load", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.remove_device(cfg, "0000c3d4")
    assert snapshot(tmp_path) == before


def test_keys_written_other_ways_are_removed_too(tmp_path):
    write_config(tmp_path, HEAD + PLATFORM + A1B2 + C3D4,
                 f"[keys]\n0000A1B2 = '{KEY}'  # bare key, literal string\n"
                 f"'0000c3d4' = \"{KEY}\"\n")
    assert remove(tmp_path, "0000a1b2").returncode == 0
    assert remove(tmp_path, "0000c3d4").returncode == 0
    assert tomllib.loads((tmp_path / "secrets.toml").read_text()) == {"keys": {}}
    assert C.load(tmp_path / "hub.toml").devices == {}
