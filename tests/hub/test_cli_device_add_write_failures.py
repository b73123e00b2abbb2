"""`hub device add` never leaves hub.toml or the secrets file half-written: a write error (a full
disk, here RLIMIT_FSIZE in the CLI's process) or a text that is not UTF-8 leaves both files as
they were, with an error naming the file or the argument instead of a traceback."""

from __future__ import annotations

import os

import pytest
from cli_files_testing import KEY, hub_toml, hubcli, out, secrets_toml, snapshot, write_config

from hub import cli, config as C

TEN = [f"0000a1{i:02d}" for i in range(1, 11)]


def test_a_write_error_leaves_both_files_as_they_were(tmp_path):
    """The review's demo d2: ten devices (hub.toml ~1 KiB), files may not grow past 1 KiB."""
    big = hub_toml(*TEN).replace('room = "bedroom"\n',
                                 'room = "bedroom"\nlocation = "by the bed"\n')
    write_config(tmp_path, big, secrets_toml(*TEN))
    assert 800 < len(big) < 1024
    before = snapshot(tmp_path)
    r = hubcli(tmp_path / "hub.toml", "device", "add", "0000c3d4", "--kind", "pir",
               "--room", "hall", fsize=1024)
    text = out(r)
    assert r.returncode == 2 and "Traceback" not in text, text
    assert f"cannot write {tmp_path / 'hub.toml'}: File too large; nothing was changed" in text
    assert snapshot(tmp_path) == before  # no temporary file left either
    assert hubcli(tmp_path / "hub.toml", "check-config").returncode == 0


@pytest.mark.parametrize("arg", ["--room", "--location", "--elder"])
def test_a_text_that_is_not_utf8_is_refused_naming_the_argument(tmp_path, arg):
    """The review's demo d13: a Latin-1 terminal types "Küche"."""
    write_config(tmp_path, hub_toml("0000a1b2"), secrets_toml("0000a1b2"))
    before = snapshot(tmp_path)
    r = hubcli(tmp_path / "hub.toml", "device", "add", "0000c3d4", "--kind", "pir",
               arg, b"K\xfcche")
    text = out(r)
    assert r.returncode == 2 and "Traceback" not in text, text
    assert f"config error: {arg}: b'K\\xfcche' is not UTF-8 text" in text
    assert snapshot(tmp_path) == before


def test_utf8_text_under_an_ascii_locale_is_read_and_written_as_utf8(tmp_path):
    """TOML is UTF-8 whatever the locale: a shell with LANG unset (and Python's UTF-8 mode and
    locale coercion off) reads hub.toml, takes the typed UTF-8 bytes and prints the result."""
    write_config(tmp_path, hub_toml("0000a1b2").replace("bedroom", "Küche"),
                 secrets_toml("0000a1b2"))
    r = hubcli(tmp_path / "hub.toml", "device", "add", "0000c3d4", "--kind", "pir",
               "--room", "Bäd".encode(),
               env={"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"})
    assert r.returncode == 0, out(r)
    cfg = C.load(tmp_path / "hub.toml")
    assert (cfg.devices[0xA1B2].room, cfg.devices[0xC3D4].room) == ("Küche", "Bäd")


def test_a_key_left_over_from_an_interrupted_remove_is_replaced(tmp_path):
    """remove writes hub.toml first: an interruption can leave the key alone; adding the device
    again replaces it instead of failing on a duplicate key."""
    write_config(tmp_path, hub_toml("0000a1b2"), secrets_toml("0000a1b2", "0000c3d4"))
    r = hubcli(tmp_path / "hub.toml", "device", "add", "0000C3D4", "--kind", "pir",
               "--key", "f" * 32)
    assert r.returncode == 0, out(r)
    assert C.load(tmp_path / "hub.toml").keys == {0xA1B2: bytes.fromhex(KEY),
                                                   0xC3D4: b"\xff" * 16}


def test_any_error_after_writing_puts_both_files_back(tmp_path, monkeypatch):
    write_config(tmp_path, hub_toml("0000a1b2"), secrets_toml("0000a1b2"))
    before = snapshot(tmp_path)
    cfg = C.load(tmp_path / "hub.toml")

    def broken(*a, **kw):
        raise RuntimeError("a bug")

    monkeypatch.setattr(C, "load", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.add_device(cfg, "0000c3d4", "pir")
    assert snapshot(tmp_path) == before


def test_a_new_secrets_file_is_removed_again_when_the_result_does_not_load(tmp_path):
    write_config(tmp_path, hub_toml(), None)
    os.chmod(tmp_path, 0o755)
    cfg = C.load(tmp_path / "hub.toml")
    (tmp_path / "hub.toml").write_text(hub_toml() + '\n[radio]\nscanning = "sideways"\n')
    with pytest.raises(C.ConfigError, match="radio.scanning.*nothing was changed"):
        cli.add_device(cfg, "0000c3d4", "pir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub.toml"]
