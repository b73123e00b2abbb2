"""The installer CLI as an installer runs it: help, one-command install against the simulated
board, flash against the simulated bootloader, confirmations, records, labels, the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import load as load_hub
from hub_testing import MINIMAL_HUB_TOML as HUB_TOML
from tools.simboard.repl import SimBoard
from tools.simboard.rom import RomBoard, make_image

ROOT = Path(__file__).resolve().parents[2]


def cli(tmp: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CAREBEACON_CACHE": str(tmp / "cache"),
           "CAREBEACON_RECORDS": str(tmp / "records")}
    return subprocess.run([sys.executable, "-m", "tools.installer", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, input=stdin)


def test_help_reads_well(tmp_path):
    r = cli(tmp_path, "--help")
    assert r.returncode == 0
    for words in ("install", "flash", "deploy", "provision", "selftest", "report",
                  "sudo systemctl restart carebeacon-hub", "Exit codes"):
        assert words in r.stdout, words
    r = cli(tmp_path, "flash", "--help")
    assert r.returncode == 0 and "--update" in r.stdout and "erase all" in r.stdout
    r = cli(tmp_path, "provision", "--kind", "toaster")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_install_report_and_label_in_one_visit(tmp_path):
    (tmp_path / "hub.toml").write_text(HUB_TOML)
    with SimBoard(tmp_path / "fs") as board:
        r = cli(tmp_path, "install", "--skip-flash", "--kind", "button", "--port", board.port,
                "--room", "bedroom", "--location", "by the bed", "--hub-config",
                str(tmp_path / "hub.toml"), "--yes")
        assert r.returncode == 0, r.stdout + r.stderr
    assert "Registered button" in r.stdout and "sudo systemctl restart" in r.stdout
    (dev_id,) = load_hub(tmp_path / "hub.toml").devices
    dev = f"{dev_id:08x}"
    rec = json.loads((tmp_path / "records" / "HH-7" / f"{dev}.json").read_text())
    assert rec["deploy"]["board"] == "esp32c3-supermini-button"  # claimed from pending
    assert rec["provision"]["room"] == "bedroom"
    r = cli(tmp_path, "report", "--hub-config", str(tmp_path / "hub.toml"))
    assert r.returncode == 0 and dev in r.stdout and "not run" in r.stdout
    assert "whole-home inactivity watches: nothing yet" in r.stdout  # a button only
    summary = json.loads((tmp_path / "records" / "HH-7" / "summary.json").read_text())
    assert summary["inactivity_coverage"][0].endswith("nothing yet")
    # away from the hub (no hub.toml), with the household named: the report still works
    r = cli(tmp_path, "report", "--hub-config", str(tmp_path / "none.toml"), "--household", "HH-7")
    assert r.returncode == 0 and dev in r.stdout and "not checked" in r.stdout
    r = cli(tmp_path, "label", "--hub-config", str(tmp_path / "hub.toml"))
    assert r.returncode == 0 and "labels.html" in r.stdout
    # the self-test needs the running hub: plain words when it is not
    r = cli(tmp_path, "selftest", dev, "--hub-config", str(tmp_path / "hub.toml"), "--no-ask")
    assert r.returncode == 1 and "FAIL hub running" in r.stdout and "systemctl" in r.stdout
    r = cli(tmp_path, "selftest", "0badf00d", "--hub-config", str(tmp_path / "hub.toml"))
    assert r.returncode == 1 and "has no device 0badf00d" in r.stderr


def test_flash_asks_unless_yes(tmp_path):
    fw = tmp_path / "ESP32_GENERIC_C3-v1.24.1.bin"
    fw.write_bytes(make_image("ESP32-C3", 30_000))
    with RomBoard("ESP32-C3", flash_file=tmp_path / "flash.bin") as rom:
        r = cli(tmp_path, "flash", "--port", rom.port, "--image", str(fw))
        assert r.returncode == 1 and "--yes" in r.stderr  # no terminal to ask on: refused
        assert not any(op.startswith(("FLASH", "ERASE")) for op in rom.log)
        r = cli(tmp_path, "flash", "--port", rom.port, "--image", str(fw), "--yes")
        assert r.returncode == 0, r.stdout + r.stderr
    assert "Written and verified" in r.stdout
    assert (tmp_path / "flash.bin").read_bytes()[:30_000 - 64] == fw.read_bytes()[:30_000 - 64]
    pending = list((tmp_path / "records" / "no-household").glob("pending-*.json"))
    assert pending and json.loads(pending[0].read_text())["flash"]["chip"] == "ESP32-C3"


@pytest.mark.parametrize("what", ["firmware", "library"])
def test_cache_add_and_list(tmp_path, what):
    if what == "firmware":
        src = tmp_path / "ESP32_GENERIC-20241129-v1.24.1.bin"
        src.write_bytes(make_image("ESP32", 10_000))
    else:
        src = tmp_path / "aioble"
        src.mkdir()
        (src / "__init__.py").write_text("")
    r = cli(tmp_path, "cache", "add", str(src))
    assert r.returncode == 0, r.stderr
    r = cli(tmp_path, "cache")
    assert ("ESP32" if what == "firmware" else "aioble") in r.stdout
