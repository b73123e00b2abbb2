"""The installer under sudo, and `report` without it.

sudo resets the environment (HOME=/root, no CAREBEACON_* variables): the firmware cached
before the visit as the installer's own login must still be found, the records go to that
login's home, and what the run creates there is given back to that login. `report` run
without sudo after `sudo ... install` (hub.toml in a root-only folder, root-owned records)
fails with what to do (sudo), never a traceback, and writes no summary.json it cannot."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tools.installer import cli, flash as F, records
from tools.simboard.rom import make_image

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def as_sudo(monkeypatch, home: Path, uid: int = NOBODY) -> None:
    """This process as `sudo` leaves it: root, HOME=/root, SUDO_USER set, no CAREBEACON_*."""
    from tools.installer import paths

    entry = pwd.struct_passwd(("installer", "x", uid, uid, "", str(home), "/bin/sh"))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(paths.pwd, "getpwnam",
                        lambda name: entry if name == "installer" else pwd.getpwnam(name))
    monkeypatch.setenv("SUDO_USER", "installer")
    monkeypatch.setenv("HOME", "/root")
    monkeypatch.delenv("CAREBEACON_CACHE", raising=False)
    monkeypatch.delenv("CAREBEACON_RECORDS", raising=False)


def test_firmware_cached_before_the_visit_is_found_under_sudo(tmp_path, monkeypatch):
    home = tmp_path / "home-installer"
    home.mkdir()
    fw = tmp_path / "ESP32_GENERIC_C3-20250415-v1.25.0.bin"
    fw.write_bytes(make_image("ESP32-C3", 30_000))
    monkeypatch.setenv("HOME", str(home))  # before the visit, as the installer
    monkeypatch.delenv("CAREBEACON_CACHE", raising=False)
    monkeypatch.delenv("CAREBEACON_RECORDS", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["cache", "add", str(fw)]) == 0
    as_sudo(monkeypatch, home)  # at the visit: sudo ... install
    assert F.pick_image("ESP32-C3", None) == home / ".cache" / "carebeacon" / "firmware" / \
        fw.name
    assert records.visit_dir(None, "HH-7") == home / "carebeacon-records" / "HH-7"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_what_a_sudo_run_makes_in_the_home_is_given_back(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    fw = tmp_path / "ESP32_GENERIC_C3-v1.25.0.bin"
    fw.write_bytes(make_image("ESP32-C3", 10_000))
    as_sudo(monkeypatch, home)
    assert cli.main(["cache", "add", str(fw)]) == 0
    assert cli.main(["report", "--household", "HH-7", "--hub-config",
                     str(tmp_path / "none.toml")]) == 0
    assert cli.main(["report", "--household", "HH-7", "--records", str(outside),
                     "--hub-config", str(tmp_path / "none.toml")]) == 0
    made = [p for p in home.rglob("*")]
    assert home / ".cache" in made and home / "carebeacon-records/HH-7/summary.json" in made
    assert {p.stat().st_uid for p in made} == {NOBODY}
    assert (outside / "HH-7" / "summary.json").stat().st_uid == 0  # not in the home: as is


def other_user() -> list[str] | None:
    """How to run a command as a user who is neither root nor in the hub's group."""
    if os.geteuid() != 0:
        return []
    cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    if shutil.which("setpriv") is None or subprocess.run(
            [*cmd, sys.executable, "-c", "import tools.installer"], cwd=ROOT,
            capture_output=True).returncode:
        return None
    return cmd


@pytest.fixture
def after_sudo_install():
    """hub.toml in a folder only root (and the hub's group) may read, and records written by
    `sudo ... install`: root's, readable by all, writable by root only."""
    cmd = other_user()
    if cmd is None:
        pytest.skip("cannot run as another user here")
    base = Path(tempfile.mkdtemp(prefix="carebeacon-report-"))
    base.chmod(0o755)
    etc = base / "etc"
    etc.mkdir()
    (etc / "hub.toml").write_text('[hub]\nid = "hub-a"\ncounty = "c"\nhousehold = "HH-7"\n'
                                  'data_dir = "data"\n\n[platform]\nurl = "mqtt://localhost"\n')
    visit = records.visit_dir(base / "rec", "HH-7")
    records.update(visit, "0a1b2c3d", provision={"kind": "button", "room": "bedroom"})
    (visit / "summary.json").unlink()
    etc.chmod(0o700 if cmd else 0o000)
    for d in (base / "rec", visit):
        d.chmod(0o755 if cmd else 0o555)
    yield cmd, base, visit
    etc.chmod(0o700)
    for d in (base / "rec", visit):
        d.chmod(0o755)
    shutil.rmtree(base)


def report(cmd, base, *args):
    return subprocess.run([*cmd, sys.executable, "-m", "tools.installer", "report",
                           "--hub-config", str(base / "etc" / "hub.toml"), "--records",
                           str(base / "rec"), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_report_without_sudo_says_to_use_sudo(after_sudo_install):
    cmd, base, visit = after_sudo_install
    r = report(cmd, base)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "permission denied" in r.stderr and "sudo" in r.stderr, r.stderr
    assert not (visit / "summary.json").exists()


def test_report_of_root_owned_records_shows_them_but_fails_plainly(after_sudo_install):
    cmd, base, visit = after_sudo_install
    r = report(cmd, base, "--household", "HH-7")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "0a1b2c3d" in r.stdout and "bedroom" in r.stdout  # the table, all the same
    assert "PROBLEM" in r.stderr and "sudo" in r.stderr and "summary.json" in r.stderr
    assert not (visit / "summary.json").exists() and not list(visit.glob("*.tmp"))
    r = report(cmd, base, "--household", "HH-8")  # a visit folder it cannot even make
    assert r.returncode == 1 and "Traceback" not in r.stderr and "sudo" in r.stderr, r.stderr
