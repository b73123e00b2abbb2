"""End to end, the real hub process between the BlueZ double and a real mosquitto: the platform
sets and clears a device's heartbeat (the device's next acknowledgement carries hub.toml's
value again, also after a restart; `hub status` shows what the platform set); `device remove`
run beside a running hub changes nothing there until the restart, which forgets the device's
state in the store (hub/registrations.py)."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/hub: the e2e helpers
from e2e_air import HUB  # noqa: E402
from e2e_home import Home  # noqa: E402

from shared import frame as F  # noqa: E402

BUTTON, PIR = 0xA1B2, 0xC3D4  # hub.toml heartbeat 60 (hil/sim/hubconf.py's default)


@pytest.fixture
def home(broker, tmp_path):
    h = Home(broker, tmp_path)
    yield h
    h.close()


def heard(dev, sid: int, tries: int = 5) -> int:
    """New frames until one's acknowledgement carries setting `sid`: its value. (A setting
    rides on a frame's first ack; a failed write leaves it for the next frame.)"""
    for _ in range(tries):
        seq = dev.send(F.T_HEARTBEAT, target=F.ACK_STORED)
        dev.wait_status(seq, F.ACK_STORED)
        got = [v for q, s, v in list(dev.settings) if q == seq and s == sid]
        if got:
            return got[0]
    raise AssertionError(f"setting {sid} not heard in {tries} frames: {dev.settings}")


def settings(home: Home, schemas, tx: str, device: int, values: dict) -> None:
    body = {"transaction": tx, "device": f"{device:08x}", "settings": values}
    schemas.check("request-settings", body)
    resp = home.platform.request_and_wait("settings", body, hub=HUB)
    assert (resp.pop("_kind"), resp["transaction"], resp["result"]) == ("settings", tx, 4)
    schemas.check("response-settings", resp)


def platform_settings(st: dict, device: int) -> dict:
    return next(d for d in st["devices"] if d["id"] == f"{device:08x}")["platform_settings"]


@pytest.mark.timeout(120)
def test_the_platform_sets_and_clears_a_heartbeat(home, schemas):
    button = home.dev[BUTTON]
    assert heard(button, F.S_HEARTBEAT_MIN) == 60  # hub.toml's, at the first contact
    settings(home, schemas, "hb-1", BUTTON, {"heartbeat_interval": 15})
    assert heard(button, F.S_HEARTBEAT_MIN) == 15
    home.hub.wait_status(lambda st: platform_settings(st, BUTTON) == {"heartbeat_interval": 15})
    out = home.hub.cli("status")
    assert "set by the platform for device 0000a1b2: heartbeat_interval 15" in out.stdout, \
        out.stdout + out.stderr
    settings(home, schemas, "hb-2", BUTTON, {"heartbeat_interval": None})
    assert heard(button, F.S_HEARTBEAT_MIN) == 60
    home.hub.wait_status(lambda st: platform_settings(st, BUTTON) == {})
    assert "set by the platform" not in home.hub.cli("status").stdout
    home.hub.stop()
    home.start_hub()
    assert platform_settings(home.hub.wait_ready(), BUTTON) == {}
    assert heard(button, F.S_HEARTBEAT_MIN) == 60  # sent again at the first contact: hub.toml's


def stored(home: Home, name: str) -> bytes | None:
    db = sqlite3.connect(f"{(home.hub.data / 'hub.db').absolute().as_uri()}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
    finally:
        db.close()
    return None if row is None else bytes(row[0])


@pytest.mark.timeout(120)
def test_device_remove_beside_a_running_hub_takes_effect_at_its_restart(home, schemas):
    pir = home.dev[PIR]
    heard(pir, F.S_HEARTBEAT_MIN)  # heard and answered: its address is stored
    settings(home, schemas, "act-1", PIR, {"activity_interval": 10})
    assert stored(home, "address:0000c3d4") and "0000c3d4" in json.loads(
        stored(home, "device_settings"))
    r = home.hub.cli("device", "remove", "0000c3d4", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert heard(pir, F.S_SUMMARY_MIN) == 10  # the running hub still serves it, as before
    home.hub.stop()
    home.start_hub()
    st = home.hub.wait_ready()
    assert [d["id"] for d in st["devices"]] == ["0000a1b2", "0000e5f6"]
    assert stored(home, "address:0000c3d4") == b""
    assert "0000c3d4" not in json.loads(stored(home, "device_settings"))
    assert stored(home, "replay:0000c3d4")  # its numbers stay used (docs/installer.md)
