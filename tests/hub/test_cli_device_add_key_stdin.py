"""`hub device add --key -`: the key from standard input (asked for without echo on a terminal),
so it never shows in `ps` or the shell's history; `--key <hex>` still works for scripts."""

from __future__ import annotations

import getpass
import io
import sys

from cli_files_testing import hub_toml, hubcli, out, write_config

from hub import cli, config as C

KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def test_key_from_standard_input(tmp_path):
    write_config(tmp_path, hub_toml(), None)
    r = hubcli(tmp_path / "hub.toml", "device", "add", "0000a1b2", "--kind", "button",
               "--key", "-", stdin=KEY + "\n")
    assert r.returncode == 0, out(r)
    assert KEY not in out(r)
    assert C.load(tmp_path / "hub.toml").keys == {0xA1B2: bytes.fromhex(KEY)}


def test_no_key_on_standard_input_is_refused(tmp_path):
    write_config(tmp_path, hub_toml(), None)
    r = hubcli(tmp_path / "hub.toml", "device", "add", "0000a1b2", "--kind", "button",
               "--key", "-", stdin="")
    assert r.returncode == 2 and "--key -: no key on standard input" in out(r), out(r)
    assert not (tmp_path / "secrets.toml").exists()


def test_key_asked_for_without_echo_on_a_terminal(tmp_path, monkeypatch):
    write_config(tmp_path, hub_toml(), None)
    prompts = []

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    monkeypatch.setattr(getpass, "getpass", lambda p: prompts.append(p) or KEY)
    assert cli.main(["-c", str(tmp_path / "hub.toml"), "device", "add", "0000a1b2",
                     "--kind", "button", "--key", "-"]) == 0
    assert prompts and "not shown" in prompts[0]
    assert C.load(tmp_path / "hub.toml").keys == {0xA1B2: bytes.fromhex(KEY)}
