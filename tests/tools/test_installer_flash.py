"""Flash with the real esptool (its detect_chip and its write-flash command line) against the
simulated serial bootloader, and every failure in plain words. What only a real chip proves
is listed in docs/installer.md."""

from __future__ import annotations

import errno
import hashlib
import os
from types import SimpleNamespace

import pytest
import serial

from tools.installer import flash as F, ports
from tools.installer.errors import InstallerError, from_esptool
from tools.simboard.rom import FLASH_SIZE, RomBoard, make_image

quiet = {"say": lambda s: None}


def image(tmp_path, chip, name=None, size=40_000, seed=1):
    p = tmp_path / (name or f"{chip}.bin")
    p.write_bytes(make_image(chip, size, seed))
    return p


def test_offsets_and_esptool_command_line():
    from esptool.targets import CHIP_DEFS

    for chip, offset in F.OFFSETS.items():  # MicroPython's offsets are esptool's bootloader's
        assert CHIP_DEFS[F.ESPTOOL_CHIP[chip]].BOOTLOADER_FLASH_OFFSET == offset
    assert F.OFFSETS == {"ESP32": 0x1000, "ESP32-C3": 0, "ESP32-S3": 0, "ESP32-C6": 0}
    argv = F.esptool_argv("/dev/ttyUSB0", "ESP32", "fw.bin", erase=True)
    assert argv == ["--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800",
                    "--before", "default-reset", "--after", "hard-reset", "write-flash",
                    "--erase-all", "0x1000", "fw.bin"]
    argv = F.esptool_argv("/dev/ttyACM0", "ESP32-C3", "fw.bin", erase=False, baud=115200)
    assert argv[-3:] == ["write-flash", "0x0", "fw.bin"] and "--erase-all" not in argv
    with pytest.raises(InstallerError) as e:
        F.esptool_argv("/dev/ttyUSB0", "ESP32-S2", "fw.bin", erase=True)
    assert e.value.code == "unsupported-chip"  # no Bluetooth LE on the S2


@pytest.mark.parametrize("chip", ["ESP32-C3", "ESP32"])
def test_first_install_erases_and_writes_at_the_chips_offset(tmp_path, chip):
    fw = image(tmp_path, chip)
    flash_file = tmp_path / "flash.bin"
    flash_file.write_bytes(b"\x55" * FLASH_SIZE)  # an old filesystem, config and key
    questions, bar = [], []
    with RomBoard(chip, flash_file=flash_file) as rom:
        rec = F.flash(rom.port, fw, confirm=lambda q: questions.append(q) or True,
                      progress=lambda cur, tot, label: bar.append((cur, tot)), **quiet)
        log = list(rom.log)
    data = flash_file.read_bytes()
    off = F.OFFSETS[chip]
    assert data[off:off + fw.stat().st_size] == fw.read_bytes()
    assert data[off + fw.stat().st_size:] == b"\xff" * (FLASH_SIZE - off - fw.stat().st_size)
    assert data[:off] == b"\xff" * off  # erased: nothing of the old contents survives
    assert rec["chip"] == chip and rec["offset"] == off and rec["erased"]
    assert rec["image_sha256"] == hashlib.sha256(fw.read_bytes()).hexdigest()
    assert "ERASING everything" in questions[0] and chip in questions[0]
    assert bar and bar[-1][0] == bar[-1][1]
    # the real esptool path: sync, detect, stub upload, erase, compressed write, MD5 verify
    for op in ("SYNC", "MEM_END", "ERASE_FLASH", "FLASH_END", "SPI_FLASH_MD5"):
        assert op in log, op
    assert "FLASH_DATA" in log or "FLASH_DEFL_DATA" in log
    assert rec["esptool"][rec["esptool"].index("--before") + 1] == "no-reset"  # a pty


def test_update_keeps_the_rest_of_the_flash(tmp_path):
    fw = image(tmp_path, "ESP32-C3", size=20_000, seed=7)
    flash_file = tmp_path / "flash.bin"
    flash_file.write_bytes(b"\x55" * FLASH_SIZE)
    with RomBoard("ESP32-C3", flash_file=flash_file) as rom:
        F.flash(rom.port, fw, erase=False, **quiet)
        assert "ERASE_FLASH" not in rom.log
    data, fw_bytes = flash_file.read_bytes(), fw.read_bytes()
    # esptool writes whole blocks (the last one padded with 0xFF): past them nothing changes
    assert data[:len(fw_bytes)] == fw_bytes and data[0x10000:] == b"\x55" * (FLASH_SIZE - 0x10000)


def test_wrong_chip_image_is_refused_before_anything_is_written(tmp_path):
    fw = image(tmp_path, "ESP32")
    with RomBoard("ESP32-C3") as rom:
        with pytest.raises(InstallerError) as e:
            F.flash(rom.port, fw, **quiet)
        assert not any(op.startswith(("FLASH", "ERASE", "MEM")) for op in rom.log)
    assert e.value.code == "wrong-chip"
    assert "for the ESP32, but this board has an ESP32-C3" in e.value.what
    # esptool's own refusal (with --force left out) is translated the same way
    err = from_esptool("/dev/x", RuntimeError("'fw.bin' is not an ESP32-C3 image. Use --force"))
    assert err.code == "wrong-chip"


def test_declined_confirmation_writes_nothing(tmp_path):
    fw = image(tmp_path, "ESP32-C3")
    with RomBoard("ESP32-C3") as rom:
        with pytest.raises(InstallerError) as e:
            F.flash(rom.port, fw, confirm=lambda q: False, **quiet)
        assert not any(op.startswith(("FLASH", "ERASE")) for op in rom.log)
    assert e.value.code == "cancelled"


def test_board_not_in_bootloader(tmp_path):
    fw = image(tmp_path, "ESP32")
    with RomBoard("ESP32", mode="app") as rom:  # running its app: boot log, no SLIP answers
        with pytest.raises(InstallerError) as e:
            F.flash(rom.port, fw, attempts=1, **quiet)
    assert e.value.code == "no-bootloader"
    assert "hold its BOOT button" in e.value.todo and "Failed to connect" in e.value.detail


def test_image_from_the_cache_newest_for_the_chip(tmp_path):
    fw_dir = tmp_path / "firmware"
    fw_dir.mkdir()
    image(fw_dir.parent, "ESP32-C3", "firmware/ESP32_GENERIC_C3-20240602-v1.23.0.bin", seed=1)
    new = image(fw_dir.parent, "ESP32-C3", "firmware/ESP32_GENERIC_C3-20241129-v1.24.1.bin",
                seed=2)
    image(fw_dir.parent, "ESP32", "firmware/ESP32_GENERIC-20241129-v1.24.1.bin")
    (fw_dir / "notes.bin").write_bytes(b"not an image")
    assert F.pick_image("ESP32-C3", None, tmp_path) == new
    with pytest.raises(InstallerError) as e:
        F.pick_image("ESP32-S3", None, tmp_path)
    assert e.value.code == "no-image" and "cache add" in e.value.todo
    with RomBoard("ESP32-C3", flash_file=tmp_path / "flash.bin") as rom:
        rec = F.flash(rom.port, None, cache=tmp_path, **quiet)
    assert rec["image"] == new.name
    with pytest.raises(InstallerError) as e:
        F.image_chip(b"not an image", "x.bin")
    assert e.value.code == "not-firmware"


def test_permission_denied_through_esptools_own_open(tmp_path, monkeypatch):
    def denied(self):  # what pyserial raises for a port the user may not open
        raise serial.SerialException(errno.EACCES, f"could not open port {self.port}: [Errno 13] "
                                                   f"Permission denied: '{self.port}'")
    monkeypatch.setattr(serial.Serial, "open", denied)
    with RomBoard("ESP32-C3") as rom:
        with pytest.raises(InstallerError) as e:
            F.detect(rom.port, before="no-reset", attempts=1)
    assert e.value.code == "port-denied" and "dialout" in e.value.todo
    assert "Could not open" in e.value.detail  # esptool's own FatalError, translated


def test_port_checks_before_any_tool_runs(monkeypatch):
    with pytest.raises(InstallerError) as e:
        ports.find_port(comports=[])
    assert e.value.code == "no-port" and "data USB cable" in e.value.todo
    other = SimpleNamespace(device="/dev/ttyS0", vid=None)
    with pytest.raises(InstallerError) as e:
        ports.find_port(comports=[other])
    assert "/dev/ttyS0" in e.value.what
    with RomBoard("ESP32") as a, RomBoard("ESP32") as b:
        two = [SimpleNamespace(device=a.port, vid=0x10C4), SimpleNamespace(device=b.port,
                                                                           vid=0x1A86)]
        with pytest.raises(InstallerError) as e:
            ports.find_port(comports=two)
        assert e.value.code == "many-ports" and "CP210x" in e.value.what
        assert ports.find_port(comports=two[:1]) == a.port and ports.is_pty(a.port)
        monkeypatch.setattr(os, "access", lambda path, mode: False)
        with pytest.raises(InstallerError) as e:
            ports.find_port(a.port)
        assert e.value.code == "port-denied"
