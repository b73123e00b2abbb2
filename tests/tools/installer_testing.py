"""Helpers for the tests of `install` run in-process against the simulated board
(test_installer_reinstall.py, test_installer_install_checks.py): a stand-in for the flash
step that erases the simulated board as esptool's --erase-all would, and the CLI run with
the visit's cache and records in a temporary folder."""

from __future__ import annotations

import shutil
import types
from pathlib import Path

from hub_testing import MINIMAL_HUB_TOML
from tools.installer import cli, flash as F
from tools.installer.errors import InstallerError
from tools.simboard.rom import make_image

MAC = "24:0a:c4:12:34:56"


class FakeFlash:
    """tools.installer.flash.flash for a SimBoard: the chip is detected (on_chip), the erase
    is asked for, then the board's whole filesystem goes (a blank MicroPython). Counts calls."""

    def __init__(self, board, mac: str = MAC):
        self.board, self.mac, self.calls = board, mac, 0

    def __call__(self, port, image=None, *, erase=True, confirm=lambda q: True, say=print,
                 on_chip=None, **_kw):
        self.calls += 1
        info = {"chip": "ESP32-C3", "mac": self.mac, "description": "ESP32-C3 (sim)"}
        if on_chip is not None:
            on_chip(info)
        if not confirm("Write MicroPython, ERASING everything on the board first?"):
            raise InstallerError("cancelled", "Nothing was written.")
        if erase:
            for p in self.board.root.iterdir():
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        return {"port": port, "chip": "ESP32-C3", "mac": self.mac, "image": "fw.bin",
                "erased": erase, "log": ""}


def site(tmp: Path, monkeypatch) -> Path:
    """hub.toml, a firmware image for the C3, the cache and records in tmp; no waiting."""
    (tmp / "hub.toml").write_text(MINIMAL_HUB_TOML)
    (tmp / "ESP32_GENERIC_C3-v1.27.0.bin").write_bytes(make_image("ESP32-C3", 20_000))
    monkeypatch.setenv("CAREBEACON_CACHE", str(tmp / "cache"))
    monkeypatch.setenv("CAREBEACON_RECORDS", str(tmp / "rec"))
    monkeypatch.setattr(cli, "time", types.SimpleNamespace(sleep=lambda s: None,
                                                           monotonic=lambda: 0.0))
    return tmp


def install(tmp: Path, board, *args: str, flash=None, monkeypatch=None, capsys=None):
    """`install --kind button --yes ...` in-process; (exit code, stdout + stderr)."""
    if flash is not None:
        monkeypatch.setattr(F, "flash", flash)
    argv = ["install", "--kind", "button", "--port", board.port, "--hub-config",
            str(tmp / "hub.toml"), "--image", str(tmp / "ESP32_GENERIC_C3-v1.27.0.bin"), *args]
    rc = cli.main(argv)
    out = capsys.readouterr() if capsys is not None else None
    return rc, (out.out + out.err) if out else ""
