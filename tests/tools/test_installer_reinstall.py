"""Setting a board up again (a wrong --room, a failed self-test) must not leave its old id on
the hub, which would report it missing to the county for ever (supervision_missing).

`install` erases the board, so it reads the board's identity first (or finds the board in
the visit's records by its chip's MAC): an id the hub never heard is taken over (same id,
same label, registration replaced), an id the hub has heard is removed and the board gets a
new one (an erased board numbers its frames from 1 again: the hub would take them for
replays). `provision --id` takes over an id added by hand (`hub device add`) that the hub has
never heard, and refuses one it has heard. All against the simulated board, with the real
deploy, provision and hub config code; only the flash is a stand-in (it erases the board)."""

from __future__ import annotations

import json
import shutil

import pytest

from firmware import config as fwconfig
from hub import cli as hubcli
from hub.config import load as load_hub
from shared import frame as F
from tools.installer import provision as P, records
from tools.installer.errors import InstallerError
from tools.simboard.hub import SimHub
from tools.simboard.repl import SimBoard

from .installer_testing import FakeFlash, install, site

quiet = {"say": lambda s: None}


def devices(tmp):
    return {f"{d:08x}": dev.room for d, dev in load_hub(tmp / "hub.toml").devices.items()}


def board_id(board) -> str:
    return "%08x" % json.loads((board.root / "config.json").read_text())["device_id"]


def hear(tmp, board) -> None:
    """The hub (restarted: it knows the device) hears one start-up HEARTBEAT sealed with the
    board's key: the real hub core stores it, and its replay window, in the hub's store."""
    fw = fwconfig.load(str(board.root / "config.json"))
    frame = F.Codec(fw.device_id, fw.key).encode(bytearray(24), 1, F.T_HEARTBEAT, 90 << 16)
    hub = SimHub(tmp / "hub.toml")
    hub.core.on_frame("C8:2E:00:00:00:01", bytes(frame), -60)
    hub.run_for(2000)
    hub.close()


def test_reinstall_takes_over_the_id_the_hub_never_heard(tmp_path, monkeypatch, capsys):
    tmp = site(tmp_path, monkeypatch)
    with SimBoard(tmp / "fs") as board:
        kw = {"flash": FakeFlash(board), "monkeypatch": monkeypatch, "capsys": capsys}
        rc, out = install(tmp, board, "--room", "bedrom", "--location", "by the bed", "--yes",
                          **kw)
        assert rc == 0, out
        (first,) = devices(tmp)
        rc, out = install(tmp, board, "--room", "bedroom", "--yes", **kw)  # the typo fixed
        assert rc == 0, out
        assert devices(tmp) == {first: "bedroom"}  # no second id, nothing left behind
        assert board_id(board) == first and f"Set it up again as {first}" not in out
        assert "registration is replaced" in out
        cfg = load_hub(tmp / "hub.toml")
        dev = cfg.devices[int(first, 16)]
        assert dev.location == "by the bed"  # kept: not given the second time
        fw = fwconfig.load(str(board.root / "config.json"))
        assert fw.key == cfg.keys[int(first, 16)]  # the board has the key the hub has


def test_reinstall_of_a_heard_board_removes_its_old_id(tmp_path, monkeypatch, capsys):
    tmp = site(tmp_path, monkeypatch)
    with SimBoard(tmp / "fs") as board:
        kw = {"flash": FakeFlash(board), "monkeypatch": monkeypatch, "capsys": capsys}
        rc, out = install(tmp, board, "--room", "bedrom", "--yes", **kw)
        assert rc == 0, out
        (first,) = devices(tmp)
        hear(tmp, board)
        from tools.installer import identity as ident

        assert ident.last_heard(load_hub(tmp / "hub.toml"), int(first, 16))
        rc, out = install(tmp, board, "--room", "bedroom", "--yes", **kw)
        assert rc == 0, out
        (second,) = devices(tmp)
        assert second != first and devices(tmp)[second] == "bedroom"
        assert board_id(board) == second
        assert f"old id {first} from the hub" in out and "new label" in out
        assert int(first, 16) not in load_hub(tmp / "hub.toml").keys
    visit = tmp / "rec" / "HH-7"  # the old id is off the visit's table and label sheet
    assert [r["device"] for r in records.devices(visit)] == [second]
    assert records.load(visit, first)["removed"]["now"] == second
    sheet = (visit / "labels.html").read_text()
    assert second.upper() in sheet and first.upper() not in sheet


def test_a_board_that_does_not_answer_is_found_by_its_mac(tmp_path, monkeypatch, capsys):
    """A sleeping button does not answer on its console: its id comes from the records."""
    tmp = site(tmp_path, monkeypatch)
    with SimBoard(tmp / "fs") as board:
        kw = {"flash": FakeFlash(board), "monkeypatch": monkeypatch, "capsys": capsys}
        rc, out = install(tmp, board, "--room", "bedrom", "--yes", **kw)
        assert rc == 0, out
        (first,) = devices(tmp)
        from tools.installer import identity as ident

        monkeypatch.setattr(ident, "read_before_erase", lambda *a, **k: None)
        rc, out = install(tmp, board, "--room", "bedroom", "--yes", **kw)
        assert rc == 0, out
        assert devices(tmp) == {first: "bedroom"}
        assert "records know this board" in out


def test_a_board_erased_before_install_skip_flash_is_found_by_its_unique_id(
        tmp_path, monkeypatch, capsys):
    """The reviewer's sequence: install --skip-flash, the board erased (a separate `flash`,
    or by hand), install --skip-flash again: the board has no identity left to read."""
    tmp = site(tmp_path, monkeypatch)
    with SimBoard(tmp / "fs") as board:
        rc, out = install(tmp, board, "--skip-flash", "--room", "bedrom", "--yes",
                          capsys=capsys)
        assert rc == 0, out
        (first,) = devices(tmp)
    shutil.rmtree(tmp / "fs")  # the erase
    with SimBoard(tmp / "fs") as board:
        rc, out = install(tmp, board, "--skip-flash", "--room", "bedroom", "--yes",
                          capsys=capsys)
        assert rc == 0, out
        assert devices(tmp) == {first: "bedroom"} and board_id(board) == first
        assert "unique id a0b1c2d3e4f5" in out


def test_declined_removal_says_the_old_id_stays(tmp_path, monkeypatch):
    tmp = site(tmp_path, monkeypatch)
    with SimBoard(tmp / "fs") as board:
        rc, _ = install(tmp, board, "--yes", flash=FakeFlash(board), monkeypatch=monkeypatch)
        assert rc == 0
        (first,) = devices(tmp)
        hear(tmp, board)
        said, asked = [], []

        def confirm(q):
            asked.append(q)
            return "leave" in q  # no to "remove it", yes to "leave it"
        rec = P.provision(board.port, "button", tmp / "hub.toml", confirm=confirm,
                          say=said.append)
    assert set(devices(tmp)) == {first, rec["device"]}
    assert any(f"Device {first} (this board's old id) stays on the hub" in s and
               f"device remove {first}" in s for s in said)
    assert len(asked) == 2 and "remove" in asked[0]


def test_provision_id_takes_over_a_device_added_by_hand(tmp_path, monkeypatch):
    tmp = site(tmp_path, monkeypatch)
    cfg = load_hub(tmp / "hub.toml")
    hubcli.add_device(cfg, "0a1b2c3d", "button", room="kitchen", heartbeat_min=30)
    with SimBoard(tmp / "fs") as board:
        rc, _ = install(tmp, board, "--skip-flash", "--id", "0a1b2c3d", "--yes")
        assert rc == 0
        cfg = load_hub(tmp / "hub.toml")
        assert devices(tmp) == {"0a1b2c3d": "kitchen"}
        fw = fwconfig.load(str(board.root / "config.json"))
        assert fw.device_id == 0x0A1B2C3D and fw.key == cfg.keys[0x0A1B2C3D]
        assert fw.heartbeat_min == 30  # what the hub supervises it by


@pytest.mark.parametrize("removed", [False, True])
def test_provision_id_refuses_an_id_the_hub_has_heard(tmp_path, monkeypatch, removed):
    # removed: review finding, an id removed from hub.toml read as free, though the hub keeps
    # its replay window after a removal (hub/registrations.py): the new board's frames,
    # numbered from 1 again, were then dropped as replays (its first SOS included)
    tmp = site(tmp_path, monkeypatch)
    with SimBoard(tmp / "fs") as board:
        rc, _ = install(tmp, board, "--skip-flash", "--yes")
        assert rc == 0
        (first,) = devices(tmp)
        hear(tmp, board)
        if removed:
            assert hubcli.remove_device(load_hub(tmp / "hub.toml"), first)
        with pytest.raises(InstallerError) as e:
            P.provision(board.port, "button", tmp / "hub.toml", device_id=int(first, 16),
                        **quiet)
    assert e.value.code == "id-taken" and "heard" in e.value.what
    assert ("was on this hub" if removed else "is on this hub") in e.value.what
    assert "leave --id out" in e.value.todo
    assert (first in devices(tmp)) is not removed
