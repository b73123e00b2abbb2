"""Provision a deployed simulated board: identity, key, the config the firmware reads, the
hub registration (hub/cli.py's add_device), the label, the records; never the key."""

from __future__ import annotations

import json
import shutil
import stat
import struct
import time
import zlib
from pathlib import Path

import pytest

from firmware import config as fwconfig
from hub.config import load as load_hub
from hub_testing import MINIMAL_HUB_TOML as HUB_TOML
from tools.installer import label, provision as P, records
from tools.installer.deploy import deploy
from tools.installer.device import Device
from tools.installer.errors import InstallerError
from tools.simboard.repl import SimBoard

quiet = {"say": lambda s: None}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A board filesystem with the button app deployed once; each test copies it."""
    root = tmp_path_factory.mktemp("deployed")
    with SimBoard(root / "fs") as board:
        deploy(board.port, "esp32c3-supermini-button", cache=root / "cache", **quiet)
    return root / "fs"


@pytest.fixture
def site(tmp_path, deployed):
    shutil.copytree(deployed, tmp_path / "fs")
    (tmp_path / "hub.toml").write_text(HUB_TOML)
    with SimBoard(tmp_path / "fs") as board:
        yield tmp_path, board


def png_modules(path: Path, scale: int = 10, border: int = 4) -> list[list[bool]]:
    """Decode a 1-bit greyscale PNG (as segno writes it) and sample each QR module."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, idat, width = 8, b"", 0
    while i < len(data):
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        body = data[i + 8:i + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert (depth, ctype) == (1, 0)
        elif kind == b"IDAT":
            idat += body
        i += 12 + n
    raw, stride = zlib.decompress(idat), (width + 7) // 8
    rows, prev = [], bytes(stride)
    for r in range(width):
        f, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - 1] if x else 0
            b, c = prev[x], prev[x - 1] if x else 0
            p = a + b - c
            pred = [0, a, b, (a + b) // 2,
                    a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else
                    b if abs(p - b) <= abs(p - c) else c][f]
            line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        prev = bytes(line)
    n = width // scale - 2 * border
    px = [[not (rows[y][x // 8] >> (7 - x % 8)) & 1 for x in range(width)] for y in range(width)]
    return [[px[(border + my) * scale + scale // 2][(border + mx) * scale + scale // 2]
             for mx in range(n)] for my in range(n)]


def test_provision_writes_identity_registers_and_labels(site):
    import segno

    tmp, board = site
    out: list[str] = []
    rec = P.provision(board.port, "button", tmp / "hub.toml", room="bedroom",
                      location="by the bed", elder="E-17", settings={"cancel_s": 15},
                      records_dir=tmp / "rec", say=out.append)
    dev = rec["device"]
    cfg = load_hub(tmp / "hub.toml")
    d = cfg.devices[int(dev, 16)]
    assert (d.kind, d.room, d.location, d.elder) == ("button", "bedroom", "by the bed", "E-17")
    key = cfg.keys[int(dev, 16)]
    assert len(key) == 16 and stat.S_IMODE((tmp / "secrets.toml").stat().st_mode) == 0o600
    # the board's /config.json is exactly what the firmware reads, with the hub's key
    fw = fwconfig.load(str(board.root / "config.json"))
    assert (fw.device_id, fw.key, fw.kind, fw.board) == (int(dev, 16), key, "button",
                                                         "esp32c3-supermini-button")
    assert fw.cancel_s == 15 and fw.heartbeat_min == d.heartbeat_min
    for _ in range(100):  # reset: the app starts with the new identity
        if "hard reset" in board.events:
            break
        time.sleep(0.02)
    assert "hard reset" in board.events
    # the key appears nowhere but the board's config and the hub's secrets file
    visit = tmp / "rec" / "HH-7"
    for f in [*visit.rglob("*"), tmp / "hub.toml"]:
        if f.is_file():
            assert key.hex().encode() not in f.read_bytes(), f
    assert key.hex() not in "\n".join(out)
    # the label: a QR code with the id and the kind, as a PNG and on the printable sheet
    want = label.payload(int(dev, 16), "button")
    assert want == f"CAREBEACON:1:{dev.upper()}:BUTTON"
    assert label.parse(want) == (int(dev, 16), "button")
    matrix = [[bool(v) for v in row] for row in segno.make(want, error="m").matrix]
    assert png_modules(Path(rec["label_png"])) == matrix
    sheet = (visit / "labels.html").read_text()
    assert dev.upper() in sheet and "<svg" in sheet and "bedroom" in sheet
    assert records.load(visit, dev)["provision"]["room"] == "bedroom"


def test_existing_identity_is_replaced_only_when_confirmed(site):
    tmp, board = site
    first = P.provision(board.port, "button", tmp / "hub.toml", records_dir=tmp / "rec", **quiet)
    before = (board.root / "config.json").read_bytes()
    questions: list[str] = []
    with pytest.raises(InstallerError) as e:
        P.provision(board.port, "button", tmp / "hub.toml", records_dir=tmp / "rec",
                    confirm=lambda q: questions.append(q) or False, **quiet)
    assert e.value.code == "cancelled" and first["device"] in questions[0]
    assert (board.root / "config.json").read_bytes() == before
    assert list(load_hub(tmp / "hub.toml").devices) == [int(first["device"], 16)]


def test_board_failure_undoes_the_hub_registration(site, monkeypatch):
    tmp, board = site

    def broken(self, path, data):
        raise InstallerError("verify-failed", "config.json on the board is not what was sent.")
    monkeypatch.setattr(Device, "write_verified", broken)
    with pytest.raises(InstallerError) as e:
        P.provision(board.port, "button", tmp / "hub.toml", records_dir=tmp / "rec", **quiet)
    assert e.value.code == "verify-failed"
    cfg = load_hub(tmp / "hub.toml")
    assert not cfg.devices and not cfg.keys
    assert not (board.root / "config.json").exists()


def test_refusals_before_anything_is_written(site):
    tmp, board = site
    kw = {**quiet, "records_dir": tmp / "rec"}
    with pytest.raises(InstallerError) as e:
        P.provision(board.port, "pir", tmp / "hub.toml", board="esp32c3-supermini-button",
                    **kw)
    assert e.value.code == "wrong-kind"
    with pytest.raises(InstallerError) as e:
        P.provision(board.port, "button", tmp / "hub.toml", settings={"cancel_s": 5}, **kw)
    assert e.value.code == "bad-setting" and "cancel_s" in e.value.what
    with pytest.raises(InstallerError) as e:
        P.parse_settings(["cancel_sec=20"])
    assert e.value.code == "bad-setting"
    with pytest.raises(InstallerError) as e:  # the PIR's board file is not on this board
        P.provision(board.port, "pir", tmp / "hub.toml", **kw)
    assert e.value.code == "not-deployed" and "deploy" in e.value.todo
    assert not load_hub(tmp / "hub.toml").devices
    assert not (board.root / "config.json").exists() and not (tmp / "rec").exists()
    (tmp / "bad.toml").write_text("[hub]\n")
    with pytest.raises(InstallerError) as e:
        P.provision(board.port, "button", tmp / "bad.toml", **kw)
    assert e.value.code == "hub-config"


def test_device_ids_are_random_and_never_reused():
    taken = {P.new_device_id(set()) for _ in range(50)}
    assert len(taken) == 50 and 0 not in taken
    assert P.new_device_id(taken) not in taken
    text = P.config_text(0x0A1B2C3D, "ab" * 16, "pir", "esp32c3-supermini-pir-am312",
                         {"summary_min": 5})
    assert json.loads(text) == {"device_id": 0x0A1B2C3D, "key": "ab" * 16, "kind": "pir",
                                "board": "esp32c3-supermini-pir-am312", "summary_min": 5}


def test_a_summary_interval_not_shorter_than_the_hubs_inactivity_floor_is_refused(site):
    """A device reports ongoing motion only in its summaries: one as long as the floor could
    make a resident moving about look still (docs/inactivity.md). The floor in force is the
    platform's (kept in the hub's store) over hub.toml's over the default, 30."""
    from hub.store import Store

    tmp, board = site
    kw = {**quiet, "records_dir": tmp / "rec"}
    with pytest.raises(InstallerError) as e:
        P.provision(board.port, "button", tmp / "hub.toml", settings={"summary_min": 30}, **kw)
    assert e.value.code == "bad-setting" and "floor (30 min)" in e.value.what
    assert not load_hub(tmp / "hub.toml").devices  # refused before anything was written
    (tmp / "hub.toml").write_text(HUB_TOML + "\n[inactivity]\nfloor_min = 60\n")
    (tmp / "data").mkdir()
    store = Store(tmp / "data" / "hub.db", hub_id="hub-a")
    store.put_state("inactivity_settings", b'{"floor_min": 40}')  # the platform lowered it
    store.close()
    with pytest.raises(InstallerError) as e:  # under hub.toml's 60, not under the platform's
        P.provision(board.port, "button", tmp / "hub.toml", settings={"summary_min": 45}, **kw)
    assert "floor (40 min)" in e.value.what
    rec = P.provision(board.port, "button", tmp / "hub.toml", settings={"summary_min": 30}, **kw)
    assert rec["provision"]["settings"]["summary_min"] == 30
    # inactivity detection off: no floor to keep under
    assert P.check_request("button", None, {"summary_min": 240}, floor_min=None)
