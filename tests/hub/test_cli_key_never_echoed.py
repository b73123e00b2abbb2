"""A device key given on the command line is never printed back: argparse took any prefix of
an option for it (`--ke <hex>` was `--key`), and the "run instead: sudo ..." hint hid only the
spellings `--key` and `--key=`, so it printed such a key. Options are now spelled in full or
refused (every parser and subparser: hub CLI and installer), a usage error hides what looks
like a key, and the hint hides the value argparse took as the key. Real CLI processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
from cli_files_testing import (
    ROOT,
    hub_toml,
    hubcli,
    needs_root,
    out,
    secrets_toml,
    shared_directory,
    snapshot,
    write_config,
)

from hub import cli
from tools.installer import cli as installer_cli

KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def test_an_abbreviated_key_option_is_refused_without_echoing_the_key(tmp_path):
    cfg = write_config(tmp_path, hub_toml("0000a1b2"), secrets_toml("0000a1b2"))
    before = snapshot(tmp_path)
    for spelling in (["--ke", KEY], ["--k", KEY], [f"--ke={KEY}"]):
        r = hubcli(cfg, "device", "add", "0000e5f6", "--kind", "button", *spelling)
        assert r.returncode == 2 and "unrecognized arguments" in out(r), out(r)
        assert KEY not in out(r) and KEY.upper() not in out(r)
    r = hubcli(cfg, "device", "add", "0000e5f6", "--kind", "button", "--heartbeat-min",
               KEY.upper())  # another usage error that would repeat it
    assert r.returncode == 2 and "invalid int value" in out(r) and KEY.upper() not in out(r)
    assert snapshot(tmp_path) == before


@needs_root
@pytest.mark.parametrize("spelling", [["--key", KEY], [f"--key={KEY}"], ["--ke", KEY]])
def test_the_run_instead_hint_reads_the_key_from_stdin(spelling):
    """As the hub user, who may not write the files: the hint names the command to run with
    sudo, the key to be given on standard input (`--ke <key>` was echoed there)."""
    with shared_directory() as d:
        cfg = write_config(d, hub_toml(), None)
        os.chmod(d, 0o755)  # readable, not writable, by nobody
        r = hubcli(cfg, "device", "add", "0000e5f6", "--kind", "button", *spelling,
                   as_hub_user=True)
        assert r.returncode == 2 and KEY not in out(r), out(r)
        if spelling[0] == "--ke":
            assert "unrecognized arguments" in out(r) and "run instead" not in out(r)
            return
        assert "run instead: sudo " in out(r), out(r)
        hint = out(r).split("run instead: ")[1]
        assert ("--key -" in hint) if spelling[0] == "--key" else ("--key=-" in hint)


def test_as_root_hides_the_key_argparse_took_however_spelled():
    argv = ["-c", "/etc/carebeacon/hub.toml", "device", "add", "0000e5f6", "--kind", "button",
            "--key", KEY]
    hint = cli._as_root(cli.parser().parse_args(argv), argv)
    assert KEY not in hint and hint.endswith("--kind button --key -")


def parsers(p: argparse.ArgumentParser):
    yield p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


@pytest.mark.parametrize("make", [cli.parser, installer_cli.parser])
def test_no_parser_takes_abbreviations(make):
    found = list(parsers(make()))
    assert len(found) > 3 and all(not p.allow_abbrev for p in found), [
        p.prog for p in found if p.allow_abbrev]


def test_the_installer_refuses_an_abbreviated_option(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tools.installer", "report", "--hub-conf",
                        str(tmp_path / "hub.toml"), "--household", "HH-7"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "CAREBEACON_RECORDS": str(tmp_path / "records"),
                            "CAREBEACON_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 2 and "unrecognized arguments: --hub-conf" in r.stderr, r.stderr
