"""`hub device remove`: at its next start the hub forgets what it kept about the device (its
address, the platform's settings for it), so a device added again under the id starts clean;
its replay window stays (docs/installer.md). As before, the CLI only edits hub.toml and the
secrets file: a running hub goes on with the device until restarted (hub/registrations.py).
The hub core with the real store; the CLI as a process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_testing import KEYS, Home

from hub import config as C, contract
from shared import frame as F

ROOT = Path(__file__).resolve().parents[2]
BUTTON, PIR = 0xA1B2, 0xC3D4  # hub.toml: heartbeat 60 (the default) and 30


def hubcli(tmp: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "hub", "-c", str(tmp / "hub.toml"), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=60, input=stdin)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def known_to_the_hub(home: Home, tmp_path: Path) -> None:
    """The PIR heard and answered (its address stored), platform settings for it and the
    button."""
    home.send(PIR, F.T_HEARTBEAT)
    home.core.ack_written(PIR, home.last_ack(PIR).setting, True, home.core.devices[PIR].address)
    assert home.store.get_state("address:0000c3d4")
    for dev, hb in ((PIR, 720), (BUTTON, 15)):
        home.core.on_request(contract.Request(
            "settings", "s", device_id=dev,
            settings=((F.S_HEARTBEAT_MIN, hb), (F.S_QUIET_START_MIN, 1380))))


def restart(home: Home, tmp_path: Path) -> None:
    home.cfg = C.load(tmp_path / "hub.toml")
    home.restart()


def assert_clean(home: Home) -> None:
    rt = home.core.devices[PIR]
    assert (rt.address, rt.answered) == (None, False)
    assert rt.settings == {F.S_HEARTBEAT_MIN: 60}  # `device add`'s heartbeat, nothing else
    assert home.core.device_settings.in_force(PIR) == {F.S_HEARTBEAT_MIN: 60}
    assert home.core.home.supervisor.window_ms(PIR) == (2 * 60 + 10) * 60_000
    assert home.store.get_state("replay:0000c3d4")  # kept: its numbers stay used
    stored = json.loads(home.store.get_state("device_settings"))
    assert set(stored) == {"0000a1b2"}  # the other device keeps the platform's values
    assert home.core.devices[BUTTON].settings == {F.S_HEARTBEAT_MIN: 15,
                                                  F.S_QUIET_START_MIN: 1380}


@pytest.mark.parametrize("key", ["new", "same"])
def test_removed_and_added_again_before_a_restart_starts_clean_with_a_new_key(
        home, tmp_path, key):
    """The installer's takeover (a new board under a never-heard id) and a hand-made
    remove + add. Added back with its own key, the removal is undone: same registration."""
    known_to_the_hub(home, tmp_path)
    r = hubcli(tmp_path, "device", "remove", "0000c3d4", "--yes")
    assert "forgets" in r.stdout
    args = ["--key", KEYS[PIR].hex()] if key == "same" else []
    hubcli(tmp_path, "device", "add", "0000c3d4", "--kind", "pir", *args)
    restart(home, tmp_path)
    if key == "new":
        assert_clean(home)
    else:
        rt = home.core.devices[PIR]
        assert rt.address and home.core.device_settings.in_force(PIR)[F.S_HEARTBEAT_MIN] == 720


def test_removed_then_restarted_then_added_again_starts_clean_even_with_its_key(
        home, tmp_path):
    known_to_the_hub(home, tmp_path)
    hubcli(tmp_path, "device", "remove", "0000c3d4", "--yes")
    restart(home, tmp_path)
    assert PIR not in home.core.devices
    assert home.store.get_state("address:0000c3d4") == b""
    assert set(json.loads(home.store.get_state("device_settings"))) == {"0000a1b2"}
    hubcli(tmp_path, "device", "add", "0000c3d4", "--kind", "pir", "--key", KEYS[PIR].hex())
    restart(home, tmp_path)
    assert_clean(home)
    _, seq = home.send(PIR, F.T_HEARTBEAT)  # it works as before: same key, its numbers go on
    ack = home.last_ack(PIR)
    assert ack.seq == seq and ack.status >= F.ACK_STORED


def test_a_hub_that_kept_state_before_registrations_forgets_unconfigured_devices(
        home, tmp_path):
    """A store from a hub before this record: settings and an address of a device no longer
    in hub.toml go at the first start; the configured devices keep theirs."""
    known_to_the_hub(home, tmp_path)
    home.store.put_state("address:0000e5f6", b"AA:BB:CC:00:F6:01 1")
    blob = json.loads(home.store.get_state("device_settings"))
    blob["0000e5f6"] = {"settings": {"2": 10}, "heartbeat_was": 60}
    home.store.put_state("device_settings", json.dumps(blob).encode())
    home.store.put_state("registrations", b"")
    home.store.touch_device(0xE5F6, last_seen_ms=1)
    restart(home, tmp_path)
    assert home.store.get_state("address:0000e5f6") == b""
    assert set(json.loads(home.store.get_state("device_settings"))) == {"0000a1b2", "0000c3d4"}
    assert home.core.devices[PIR].address  # kept
    assert home.core.device_settings.in_force(PIR)[F.S_HEARTBEAT_MIN] == 720


def test_a_start_that_cannot_read_the_store_records_no_registrations(home, tmp_path):
    """A start whose store file would not open knows nothing of the registrations before it.
    Recording this start's (in memory, written once the file opens) hid a device re-keyed
    meanwhile: its old address and settings stayed for good."""
    known_to_the_hub(home, tmp_path)
    hubcli(tmp_path, "device", "remove", "0000c3d4", "--yes")
    hubcli(tmp_path, "device", "add", "0000c3d4", "--kind", "pir")  # another board, new key
    home.store.close()
    db = home.cfg.data_dir / "hub.db"
    aside = db.with_name("aside.db")
    db.rename(aside)
    db.symlink_to(db.name)  # hub.db -> hub.db: ELOOP, the file will not open
    home.cfg = C.load(tmp_path / "hub.toml")
    home.open()
    assert not home.store.file_open and home.store.state_unknown
    db.unlink()
    aside.rename(db)
    assert home.store.flush_overflow() and home.store.file_open  # what memory held is written
    restart(home, tmp_path)
    assert_clean(home)
