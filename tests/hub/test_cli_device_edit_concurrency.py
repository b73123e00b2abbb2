"""Two edits of hub.toml at once (two `device add`s, a `device remove`, the installer's provision
through hub.cli.add_device) run one after the other: each holds a flock on hub.toml from its
first read to its last write (hub/config_edit.py `locked`). Before, the later commit was built
from a read made before the earlier one's, and dropped that device and its key while both
commands said they were done. An editor that takes no lock is caught at commit: the files are
no longer what the edit was made from.

Real CLI processes; this test holds the lock itself (as an edit in progress) to make them wait,
deterministically: each says it waits before it reads anything.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_files_testing import KEY, ROOT, hub_toml, secrets_toml, write_config

from hub import config as C, config_edit as E

pytestmark = pytest.mark.timeout(60)
WAITING = "waiting for another command editing it"


@contextmanager
def edit_in_progress(cfg: Path) -> Iterator[None]:
    """The lock an edit holds (flock on hub.toml's folder), held by this test."""
    fd = os.open(cfg.resolve().parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def start(cfg: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hub", "-c", str(cfg), *args], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def waits(p: subprocess.Popen) -> None:
    """p says it waits for the lock (it blocks there until released); a command that does not
    wait ends at once instead: its stderr ends without saying so."""
    line = p.stderr.readline()
    assert WAITING in line, (line, p.wait(), p.stdout.read(), p.stderr.read())


def done(p: subprocess.Popen) -> str:
    stdout, stderr = p.communicate(timeout=30)
    assert p.returncode == 0, stdout + stderr
    return stdout


def add(dev_id: str) -> tuple[str, ...]:
    return ("device", "add", dev_id, "--kind", "button", "--key", KEY)


def test_a_device_add_during_another_edit_waits_and_both_devices_stay(tmp_path):
    cfg = write_config(tmp_path, hub_toml("0000a1b2"), secrets_toml("0000a1b2"))
    sec = tmp_path / "secrets.toml"
    with edit_in_progress(cfg):  # another device add, as hub.cli.add_device makes it
        was_cfg, was_sec = E.read_text(cfg), E.read_text(sec)
        dev = C.Device(0xA000, "pir", "hall", "", "", 60, False)
        b = start(cfg, *add("0000c3d4"))
        waits(b)  # before: B wrote 0000c3d4 here, and the commit below dropped it
        E.commit([(sec, E.added_key_text(sec, was_sec, dev.hex, KEY), True, was_sec),
                  (cfg, E.added_device_text(cfg, was_cfg, dev), False, was_cfg)],
                 lambda: C.load(cfg))
        assert b.poll() is None  # still waiting
    assert "added button 0000c3d4" in done(b)
    loaded = C.load(cfg)
    assert sorted(loaded.devices) == sorted(loaded.keys) == [0xA000, 0xA1B2, 0xC3D4]


@pytest.mark.parametrize("first", [add("0000e5f6"), ("device", "remove", "0000a1b2", "--yes")])
def test_two_commands_at_once_both_land(tmp_path, first):
    cfg = write_config(tmp_path, hub_toml("0000a1b2"), secrets_toml("0000a1b2"))
    with edit_in_progress(cfg):
        a = start(cfg, *first)
        waits(a)
        b = start(cfg, *add("0000c3d4"))
        waits(b)
    done(a), done(b)
    want = {0xA1B2, 0xC3D4, 0xE5F6} if first[1] == "add" else {0xC3D4}
    loaded = C.load(cfg)
    assert set(loaded.devices) == set(loaded.keys) == want


def test_an_edit_that_replaced_hub_toml_holds_the_lock_until_it_is_done(tmp_path):
    """Review finding: the lock was a flock on hub.toml, which an edit replaces (rename) before
    it writes the secrets file. A `device add` then locked the new file and edited alongside
    a `device remove` still at work; the remove's check failed on the added device's missing
    key, and its rollback dropped the device the add had reported added. Here the remove runs
    in a thread held (a trace function, nothing replaced) right after hub.toml is replaced."""
    cfg = write_config(tmp_path, hub_toml("0000a1b2", "0000e5f6"),
                       secrets_toml("0000a1b2", "0000e5f6"))
    held, release = threading.Event(), threading.Event()

    def trace(frame, event, arg):  # the remove's first _fsync_dir: hub.toml just replaced
        if frame.f_code.co_name == "_fsync_dir" and not held.is_set():
            held.set()
            release.wait(20)
        return None

    from hub import cli as hubcli

    def remove() -> None:
        sys.settrace(trace)
        hubcli.remove_device(C.load(cfg), "0000a1b2")

    t = threading.Thread(target=remove)
    t.start()
    assert held.wait(10), "the remove never replaced hub.toml"
    b = start(cfg, *add("0000c3d4"))
    waits(b)
    time.sleep(0.3)
    assert b.poll() is None, "the add edited while the remove was still at work"
    release.set()
    t.join(10)
    assert "added button 0000c3d4" in done(b)
    loaded = C.load(cfg)
    assert set(loaded.devices) == set(loaded.keys) == {0xC3D4, 0xE5F6}


def test_an_edit_held_too_long_is_reported_not_waited_for_forever(tmp_path):
    cfg = write_config(tmp_path, hub_toml(), None)
    with edit_in_progress(cfg):
        with pytest.raises(C.ConfigError) as e, E.locked(cfg, wait_s=0.2):
            pass
    assert "another command (device add or remove, the installer) has been editing it" in str(
        e.value) and "nothing was changed" in str(e.value)


def test_files_changed_since_they_were_read_are_not_overwritten(tmp_path):
    """An editor without the lock (a text editor, an older CLI) changed hub.toml after this
    edit read it: writing would drop that change; refused, nothing written."""
    cfg = write_config(tmp_path, hub_toml("0000a1b2"), secrets_toml("0000a1b2"))
    sec = tmp_path / "secrets.toml"
    was_cfg, was_sec = E.read_text(cfg), E.read_text(sec)
    dev = C.Device(0xC3D4, "button", "", "", "", 60, False)
    new_cfg = E.added_device_text(cfg, was_cfg, dev)
    new_sec = E.added_key_text(sec, was_sec, dev.hex, KEY)
    by_hand = hub_toml("0000a1b2", "0000e5f6")
    cfg.write_text(by_hand)
    sec_before = sec.read_bytes()
    with pytest.raises(C.ConfigError) as e:
        E.commit([(sec, new_sec, True, was_sec), (cfg, new_cfg, False, was_cfg)],
                 lambda: C.load(cfg))
    assert str(e.value) == (f"{cfg} changed while this command ran (another device add?): "
                            "nothing was changed; run it again")
    assert cfg.read_text() == by_hand and sec.read_bytes() == sec_before


def test_a_device_added_meanwhile_is_named(tmp_path):
    """The id the command checked against its first read was added by another command."""
    cfg = write_config(tmp_path, hub_toml("0000a1b2"), secrets_toml("0000a1b2"))
    dev = C.Device(0xA1B2, "button", "", "", "", 60, False)
    with pytest.raises(C.ConfigError, match="device 0000a1b2 is already configured"):
        E.added_device_text(cfg, cfg.read_text(), dev)
