"""The hub CLI as an installer uses it: check the config, add and remove devices, read status."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from hub import contract
from hub.cli import render
from hub.config import load
from hub_testing import MINIMAL_HUB_TOML as TOML

ROOT = Path(__file__).resolve().parents[2]


def hubcli(tmp: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub", "-c", str(tmp / "hub.toml"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, input=stdin)


def test_add_check_and_remove_a_device(tmp_path):
    (tmp_path / "hub.toml").write_text(TOML)
    r = hubcli(tmp_path, "device", "add", "0000A1B2", "--kind", "button", "--room", "bedroom",
               "--location", 'by the "big" bed')
    assert r.returncode == 0, r.stderr
    sec = tmp_path / "secrets.toml"
    assert stat.S_IMODE(sec.stat().st_mode) == 0o600
    cfg = load(tmp_path / "hub.toml")
    assert cfg.devices[0xA1B2].location == 'by the "big" bed'
    key = cfg.keys[0xA1B2]
    assert len(key) == 16 and key.hex() not in r.stdout + r.stderr  # never printed
    r = hubcli(tmp_path, "device", "add", "0000c3d4", "--kind", "pir", "--entrance",
               "--key", "00112233445566778899aabbccddeeff")
    assert r.returncode == 0, r.stderr
    assert load(tmp_path / "hub.toml").devices[0xC3D4].entrance
    r = hubcli(tmp_path, "check-config")
    assert r.returncode == 0 and "2 device(s)" in r.stdout and "NO TLS" in r.stdout
    r = hubcli(tmp_path, "device", "add", "0000a1b2", "--kind", "button")
    assert r.returncode == 2 and "already configured" in r.stderr
    r = hubcli(tmp_path, "device", "remove", "0000a1b2", "--yes")
    assert r.returncode == 0, r.stderr
    cfg = load(tmp_path / "hub.toml")
    assert list(cfg.devices) == [0xC3D4] and list(cfg.keys) == [0xC3D4]


def test_bad_config_names_file_and_key_with_exit_2(tmp_path):
    (tmp_path / "hub.toml").write_text(TOML.replace('county = "test-county"', "county = 5"))
    r = hubcli(tmp_path, "check-config")
    assert r.returncode == 2
    assert f"{tmp_path / 'hub.toml'}: hub.county: 5 is not a string" in r.stderr


def test_status_without_a_running_hub_says_so(tmp_path):
    (tmp_path / "hub.toml").write_text(TOML)
    r = hubcli(tmp_path, "status")
    assert r.returncode == 1 and "is the hub running?" in r.stderr


def test_status_left_empty_by_a_power_cut_is_reported_not_a_traceback(tmp_path):
    (tmp_path / "hub.toml").write_text(TOML)
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "status.json").write_text("")
    r = hubcli(tmp_path, "status")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "cannot read the hub's status" in r.stderr


def sample_status(age_s: float = 0) -> dict:
    now = time.time() - age_s
    return {
        "hub": "hub-a", "county": "test-county", "household": "HH-7", "running": True,
        "pid": 1, "time": contract.iso_time(now), "uptime_s": 5,
        "uplink": {"connected": True, "protocol": "5", "in_flight": 0},
        "radio": {"status": "ok", "state": "scanning", "detail": None, "adverts": 4},
        "devices": [{"id": "0000a1b2", "kind": "button", "room": "bedroom", "location": "",
                     "availability": "online", "last_seen": contract.iso_time(now - 30),
                     "battery": 88, "rssi": -61, "refused_frames": 0, "settings_pending": 0}],
        "pending": {"events": 1, "alarms": ["hub-a:0000a1b2:3"]},
        "store": {"fault": None, "dropped": 0}, "faults": {},
        "unknown_devices": [{"id": "0badcafe", "count": 3, "rssi": -80, "address": "11:22"}],
        "unknown_dropped": 7,
        "inactivity": {"state": "idle", "still_min": 12, "threshold_min": 720,
                       "learned_days": 0},
        "counters": {},
    }


def test_status_table_and_json(tmp_path):
    (tmp_path / "hub.toml").write_text(TOML)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "status.json").write_text(json.dumps(sample_status()))
    r = hubcli(tmp_path, "status")
    assert r.returncode == 0, r.stderr
    assert "platform: connected" in r.stdout and "1 alarm(s) not yet confirmed" in r.stdout
    row = [ln for ln in r.stdout.splitlines() if ln.startswith("0000a1b2")][0]
    assert "bedroom" in row and "online" in row and "88 %" in row and "-61" in row
    assert "unpaired device 0badcafe" in r.stdout
    assert "7 more unpaired device ids" in r.stdout
    r = hubcli(tmp_path, "status", "--json")
    assert json.loads(r.stdout)["devices"][0]["battery"] == 88
    # a stale status file means the hub stopped: the CLI says so and exits 1
    (tmp_path / "data" / "status.json").write_text(json.dumps(sample_status(age_s=120)))
    r = hubcli(tmp_path, "status")
    assert r.returncode == 1 and "STOPPED" in r.stdout


def test_render_shows_faults_loudly():
    st = sample_status()
    st["faults"] = {"radio_adapter": "radio no_adapter: hci0 gone"}
    st["uplink"]["connected"] = False
    text = render(st)
    assert "FAULT radio_adapter: radio no_adapter: hci0 gone" in text
    assert "NOT CONNECTED" in text


def test_secrets_written_before_config_is_private_even_with_a_loose_umask(tmp_path):
    (tmp_path / "hub.toml").write_text(TOML)
    old = os.umask(0)
    try:
        assert hubcli(tmp_path, "device", "add", "00000001", "--kind", "bracelet").returncode == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "secrets.toml").stat().st_mode) == 0o600
