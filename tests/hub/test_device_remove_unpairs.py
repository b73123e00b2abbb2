"""`hub device remove`, then a restart: the hub announces the device unpaired (its retained
availability cleared, hub/unpaired.py), and keeps that duty in the store until the broker's
PUBACK for it, also through later starts. The hub core with the real store and a recording
publisher; the CLI as a process. Against the real broker and hub process:
test_hub_e2e_unpaired.py; the uplink's side: test_uplink_unpaired.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline_testing import KEYS, Home

from hub import config as C
from shared import frame as F

ROOT = Path(__file__).resolve().parents[2]
BUTTON, PIR = 0xA1B2, 0xC3D4


def hubcli(tmp: Path, *args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "hub", "-c", str(tmp / "hub.toml"), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def restart(home: Home, tmp_path: Path) -> dict:
    """A start with hub.toml as it is now: what the core handed the publisher to unpair."""
    home.cfg = C.load(tmp_path / "hub.toml")
    home.pub.unpaired.clear()
    home.restart()
    return dict(home.pub.unpaired)


def pending(home: Home) -> list[str] | None:
    blob = home.store.get_state("unpaired_pending")
    return None if blob is None else json.loads(blob)


def test_announced_at_every_start_until_the_broker_confirms(home, tmp_path):
    hubcli(tmp_path, "device", "remove", "0000c3d4", "--yes")
    assert set(restart(home, tmp_path)) == {PIR}
    assert pending(home) == ["0000c3d4"]
    unpaired = restart(home, tmp_path)  # not connected meanwhile: forget_gone tells no more
    assert set(unpaired) == {PIR}
    unpaired[PIR](PIR)  # the PUBACK (the uplink calls it on the hub's event loop)
    assert pending(home) == []
    assert restart(home, tmp_path) == {}


def test_a_device_added_back_before_the_broker_confirmed_is_not_unpaired(home, tmp_path):
    hubcli(tmp_path, "device", "remove", "0000c3d4", "--yes")
    assert set(restart(home, tmp_path)) == {PIR}
    hubcli(tmp_path, "device", "add", "0000c3d4", "--kind", "pir", "--key", KEYS[PIR].hex())
    assert restart(home, tmp_path) == {}
    assert pending(home) == []
    _, seq = home.send(PIR, F.T_HEARTBEAT)  # and the device is served
    assert home.last_ack(PIR).seq == seq


def test_a_rekeyed_device_is_configured_still_and_not_unpaired(home, tmp_path):
    hubcli(tmp_path, "device", "remove", "0000c3d4", "--yes")
    hubcli(tmp_path, "device", "add", "0000c3d4", "--kind", "pir")  # another board, new key
    assert restart(home, tmp_path) == {}
    assert pending(home) is None


def test_a_device_only_in_the_devices_table_is_not_unpaired_at_every_start(home, tmp_path):
    """Such a row stays after a removal (history), and forget_gone reports its device at
    every start: the hub announces a device once, when its registration goes."""
    home.store.touch_device(0xE5F6, last_seen_ms=1)
    assert restart(home, tmp_path) == {}
    hubcli(tmp_path, "device", "remove", "0000c3d4", "--yes")
    unpaired = restart(home, tmp_path)
    assert set(unpaired) == {PIR}
    unpaired[PIR](PIR)
    assert restart(home, tmp_path) == {}


def test_a_start_that_cannot_read_the_store_keeps_the_files_list(home, tmp_path):
    """Its list in memory, written once the file opens, would replace the file's."""
    hubcli(tmp_path, "device", "remove", "0000c3d4", "--yes")
    restart(home, tmp_path)
    home.store.close()
    db = home.cfg.data_dir / "hub.db"
    aside = db.with_name("aside.db")
    db.rename(aside)
    db.symlink_to(db.name)  # hub.db -> hub.db: ELOOP, the file will not open
    home.pub.unpaired.clear()
    home.open()
    assert home.store.state_unknown and home.pub.unpaired == {}
    db.unlink()
    aside.rename(db)
    assert home.store.flush_overflow() and home.store.file_open
    assert pending(home) == ["0000c3d4"]
    assert set(restart(home, tmp_path)) == {PIR}
