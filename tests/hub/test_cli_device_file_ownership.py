"""`hub device add/remove` (and the installer, through hub.cli.add_device) keep the owner, group
and mode of hub.toml and the secrets file, so the hub (User=carebeacon) can still read its keys
after a `sudo` run; a new secrets file belongs to the hub's user, mode 0600 (docs/install-hub.md);
run as a user who cannot replace the files, they refuse with what to run instead.

Laid out as docs/install-hub.md says: /etc/carebeacon root:carebeacon 0750, secrets.toml
carebeacon 0600. uid/gid 65534 (nobody:nogroup) stands in for carebeacon; these tests need root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_files_testing import (
    HUB_GID,
    HUB_UID,
    hub_toml,
    hubcli,
    needs_root,
    out,
    owner,
    secrets_toml,
    shared_directory,
    snapshot,
    write_config,
)

from hub import cli
from hub.config import load

pytestmark = needs_root


@pytest.fixture
def etc() -> Iterator[Path]:
    """/etc/carebeacon as documented, with one device: dir root:hub 0750, hub.toml root:hub
    0640, secrets.toml hub:hub 0600."""
    with shared_directory() as top:
        d = top / "carebeacon"
        d.mkdir()
        write_config(d, hub_toml("0000a1b2"), secrets_toml("0000a1b2"))
        os.chown(d, 0, HUB_GID)
        os.chmod(d, 0o750)
        os.chown(d / "hub.toml", 0, HUB_GID)
        os.chmod(d / "hub.toml", 0o640)
        os.chown(d / "secrets.toml", HUB_UID, HUB_GID)
        yield d


def check_config_as_hub_user(d: Path) -> None:
    """What the unit's ExecStartPre does, as User=carebeacon."""
    r = hubcli(d / "hub.toml", "check-config", as_hub_user=True)
    assert r.returncode == 0, out(r)


def test_sudo_device_add_keeps_the_secrets_file_the_hub_users(etc):
    check_config_as_hub_user(etc)
    r = hubcli(etc / "hub.toml", "device", "add", "0000c3d4", "--kind", "pir", "--room", "hall")
    assert r.returncode == 0, out(r)
    assert owner(etc / "secrets.toml") == (HUB_UID, HUB_GID, 0o600)
    assert owner(etc / "hub.toml") == (0, HUB_GID, 0o640)
    check_config_as_hub_user(etc)
    assert sorted(load(etc / "hub.toml").keys) == [0xA1B2, 0xC3D4]


def test_sudo_device_remove_keeps_owner_and_mode(etc):
    r = hubcli(etc / "hub.toml", "device", "remove", "0000a1b2", "--yes")
    assert r.returncode == 0, out(r)
    assert owner(etc / "secrets.toml") == (HUB_UID, HUB_GID, 0o600)
    assert owner(etc / "hub.toml") == (0, HUB_GID, 0o640)
    check_config_as_hub_user(etc)


def test_the_installers_registration_keeps_owner_and_mode(etc):
    """tools/installer/provision.py registers through hub.cli.add_device (and undoes it with
    remove_device) in the installer's own process, run with sudo."""
    _dev, _key, sec = cli.add_device(load(etc / "hub.toml"), "0000c3d4", "pir", room="hall")
    assert sec == etc / "secrets.toml" and owner(sec) == (HUB_UID, HUB_GID, 0o600)
    check_config_as_hub_user(etc)
    assert cli.remove_device(load(etc / "hub.toml"), "0000c3d4")
    assert owner(sec) == (HUB_UID, HUB_GID, 0o600)
    assert owner(etc / "hub.toml") == (0, HUB_GID, 0o640)
    check_config_as_hub_user(etc)


def test_device_add_as_the_hub_user_says_to_use_sudo_and_changes_nothing(etc):
    before = snapshot(etc)
    r = hubcli(etc / "hub.toml", "device", "add", "0000e5f6", "--kind", "button",
               "--key", "00112233445566778899aabbccddeeff", as_hub_user=True)
    text = out(r)
    assert r.returncode == 2 and "Traceback" not in text, text
    assert f"cannot write {etc / 'secrets.toml'}" in text and "not writable" in text
    assert "run instead: sudo " in text and "device add 0000e5f6 --kind button --key -" in text
    assert "00112233445566778899aabbccddeeff" not in text  # the key is not echoed back
    assert snapshot(etc) == before


def test_a_root_owned_hub_toml_is_not_taken_over_by_the_hub_user(etc):
    """A directory the hub user may write to, but hub.toml is root's: replacing it would hand
    the hub user its own configuration; refused, nothing changed."""
    os.chown(etc, HUB_UID, HUB_GID)
    before = snapshot(etc)
    r = hubcli(etc / "hub.toml", "device", "add", "0000e5f6", "--kind", "button",
               as_hub_user=True)
    text = out(r)
    assert r.returncode == 2 and "Traceback" not in text, text
    assert f"cannot write {etc / 'hub.toml'}: it is owned by root" in text
    assert "run instead: sudo " in text
    assert snapshot(etc) == before


def test_a_new_secrets_file_belongs_to_the_hub_user(etc):
    (etc / "secrets.toml").unlink()
    (etc / "hub.toml").write_text(hub_toml())
    r = hubcli(etc / "hub.toml", "device", "add", "0000c3d4", "--kind", "pir",
               env={"CAREBEACON_HUB_USER": "nobody"})
    assert r.returncode == 0, out(r)
    assert owner(etc / "secrets.toml") == (HUB_UID, HUB_GID, 0o600)
    check_config_as_hub_user(etc)


def test_a_new_secrets_file_without_the_hub_user_is_root_s_and_says_so(etc):
    (etc / "secrets.toml").unlink()
    (etc / "hub.toml").write_text(hub_toml())
    r = hubcli(etc / "hub.toml", "device", "add", "0000c3d4", "--kind", "pir",
               env={"CAREBEACON_HUB_USER": "no-such-user-here"})
    assert r.returncode == 0, out(r)
    assert "no user 'no-such-user-here'" in out(r) and "chown" in out(r)
    assert owner(etc / "secrets.toml")[::2] == (0, 0o600)


def test_status_the_hub_user_alone_may_read_says_to_use_sudo() -> None:
    # The unit's UMask=0027 makes status.json carebeacon:carebeacon 0640 (the store beside it
    # holds the household's alarm history): another user gets what to run, not a traceback.
    with shared_directory() as d:
        cfg = write_config(d, hub_toml(), None)
        data = d / "data"
        data.mkdir(mode=0o750)
        (data / "status.json").write_text("{}")
        os.chmod(data / "status.json", 0o640)
        r = hubcli(cfg, "status", as_hub_user=True)  # nobody: neither the owner nor the group
        assert r.returncode == 1 and "run this with sudo" in out(r), out(r)
        assert "Traceback" not in out(r)
