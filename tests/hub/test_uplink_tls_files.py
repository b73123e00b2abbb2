"""TLS files the uplink cannot use (hub/uplink_tls.py): `check-config`'s check names the key,
the file and the reason; at run time they are an outage, not a crash: the uplink keeps retrying,
says why in `problem` and logs each problem once, and connects once the files are fixed.

Real files: another certificate's key, a key path that is a directory, a symbolic link to
itself, files swapped, an empty CA... (the kernel refuses a directory or a loop to root too);
and a key the hub's user may not read, with the check run as that user (nobody, via setpriv).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pytest
from cli_files_testing import HUB_GID, HUB_UID, hubcli, needs_root, out, shared_directory
from cryptography.hazmat.primitives import serialization
from uplink_testing import Client, Hub, config, event, wait_until

from broker import TlsFiles
from hub.config import ConfigError, load
from hub.uplink_tls import TlsFileError, check_platform_tls, tls_context

pytestmark = pytest.mark.timeout(60)


def own_copy(broker, d: Path) -> TlsFiles:
    """hub-a's files, copied to `d` (the tests break them there); the key 0600."""
    d.mkdir(exist_ok=True)
    f = broker.tls("hub-a")
    mine = TlsFiles(*(str(shutil.copy(p, d / n)) for p, n in
                      ((f.ca, "ca.pem"), (f.cert, "hub.pem"), (f.key, "hub.key"))))
    os.chmod(mine.key, 0o600)
    return mine


def encrypted(key_file: str) -> bytes:
    key = serialization.load_pem_private_key(Path(key_file).read_bytes(), None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(b"secret"))


def break_file(case: str, f: TlsFiles, broker) -> tuple[str, str, str]:
    """Break one of `f` as `case` says; returns (config key, path, what the error must say)."""
    if case == "key of another certificate":
        shutil.copyfile(broker.tls("hub-b").key, f.key)
        return "key_file", f.key, f"does not match platform.cert_file {f.cert}"
    if case == "key is a directory":
        os.unlink(f.key)
        os.mkdir(f.key)
        return "key_file", f.key, "cannot be read: Is a directory"
    if case == "key is a symbolic link loop":
        os.unlink(f.key)
        os.symlink(os.path.basename(f.key), f.key)
        return "key_file", f.key, "cannot be read: Too many levels of symbolic links"
    if case == "key encrypted":
        Path(f.key).write_bytes(encrypted(f.key))
        return "key_file", f.key, "encrypted"
    if case == "key and certificate swapped":
        cert = Path(f.cert).read_bytes()
        shutil.copyfile(f.key, f.cert)
        Path(f.key).write_bytes(cert)
        return "cert_file", f.cert, "holds a private key, not a certificate"
    if case == "key is a certificate":
        shutil.copyfile(f.cert, f.key)
        return "key_file", f.key, "holds a certificate, not a private key"
    if case == "key garbled":
        lines = Path(f.key).read_text().splitlines()
        Path(f.key).write_text("\n".join([lines[0], "AAAA" + lines[1][4:], *lines[2:]]) + "\n")
        return "key_file", f.key, "not a valid private key"
    if case == "certificate not PEM":
        Path(f.cert).write_bytes(b"\x30\x82\x01\x00 DER, not PEM")
        return "cert_file", f.cert, "not a PEM certificate"
    if case == "CA empty":
        Path(f.ca).write_bytes(b"")
        return "ca_file", f.ca, "empty"
    raise AssertionError(case)


CASES = ["key of another certificate", "key is a directory", "key is a symbolic link loop",
         "key encrypted", "key and certificate swapped", "key is a certificate", "key garbled",
         "certificate not PEM", "CA empty"]


@pytest.mark.parametrize("case", CASES)
def test_the_error_names_the_key_the_file_and_the_reason(broker, tmp_path, case):
    f = own_copy(broker, tmp_path)
    tls_context(config(broker, files=f))  # the copies are good
    key, path, why = break_file(case, f, broker)
    with pytest.raises(TlsFileError) as err:
        tls_context(config(broker, files=f))
    assert (err.value.key, err.value.path) == (key, path)
    assert str(err.value).startswith(f"platform.{key} {path}: ")
    assert why in str(err.value)


def hub_toml(d: Path, f: TlsFiles, broker) -> Path:
    (d / "hub.toml").write_text(
        f'[hub]\nid = "hub-a"\ncounty = "test-county"\nhousehold = "hh-1"\ndata_dir = "data"\n'
        f'[platform]\nurl = "mqtts://{broker.host}:{broker.port}"\n'
        f'ca_file = "{f.ca}"\ncert_file = "{f.cert}"\nkey_file = "{f.key}"\n')
    (d / "secrets.toml").write_text("[keys]\n")
    os.chmod(d / "secrets.toml", 0o600)
    return d / "hub.toml"


def test_check_config_builds_the_context_from_hub_toml(broker, tmp_path):
    f = own_copy(broker, tmp_path / "tls")
    cfg = load(hub_toml(tmp_path, f, broker))
    check_platform_tls(cfg)  # good files: nothing to say
    break_file("key of another certificate", f, broker)
    cfg = load(hub_toml(tmp_path, f, broker))  # hub/config.py only sees that the files exist
    with pytest.raises(ConfigError) as err:
        check_platform_tls(cfg)
    assert str(err.value) == (
        f"{cfg.path}: platform.key_file {f.key}: does not match platform.cert_file {f.cert}"
        " (another certificate's key?)")


@needs_root
def test_check_config_names_a_key_the_hub_user_cannot_read(broker):
    """The usual mistake: the key left root's (0600); the hub runs as its own user."""
    with shared_directory() as d:
        f = own_copy(broker, d / "tls")
        os.chmod(d / "tls", 0o755)
        cfg = hub_toml(d, f, broker)
        os.chown(d / "secrets.toml", HUB_UID, HUB_GID)
        os.chown(f.key, HUB_UID, HUB_GID)  # 0600, the hub user's
        r = hubcli(cfg, "check-config", as_hub_user=True)
        assert r.returncode == 0, out(r)
        os.chown(f.key, 0, 0)  # 0600, root's
        r = hubcli(cfg, "check-config", as_hub_user=True)
        assert r.returncode == 2
        assert out(r) == (f"config error: {cfg}: platform.key_file {f.key}: cannot be read: "
                          "Permission denied\n")


def loud(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.startswith("carebeacon.uplink")]


def test_an_unusable_key_is_an_outage_and_a_fixed_one_connects(broker, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="carebeacon.uplink")
    f = own_copy(broker, tmp_path)
    good_key = Path(f.key).read_bytes()
    _, _, mismatch = break_file("key of another certificate", f, broker)
    platform = Client(broker).wait_ready()
    with Hub(config(broker, files=f)) as hub:  # start() used to raise here: the hub stopped
        wait_until(lambda: hub.uplink.problem, what="the first attempt")
        ref, msg = event(1)
        assert not hub.add(ref, msg)  # kept pending, as in any outage
        time.sleep(1.0)  # attempts 0.05 .. 0.3 s apart
        assert not hub.uplink.connected and hub.connects == []
        assert mismatch in hub.uplink.problem and f.key in hub.uplink.problem
        attempts = [r for r in caplog.records if mismatch in r.getMessage()]
        assert len(attempts) >= 4  # retried, at DEBUG after the first
        assert [r.levelno for r in attempts[:2]] == [logging.ERROR, logging.DEBUG]

        _, _, unreadable = break_file("key is a directory", f, broker)  # another problem:
        wait_until(lambda: unreadable in hub.uplink.problem, what="the new reason")
        time.sleep(0.5)

        os.rmdir(f.key)
        Path(f.key).write_bytes(good_key)  # fixed: used at the next attempt, no restart
        hub.wait_connected()
        wait_until(lambda: ref in hub.delivered, what="the pending event delivered")
        assert hub.uplink.problem is None
    # each problem logged once (ERROR), the end of the outage once; every retry at DEBUG
    lines = loud(caplog)
    assert len(lines) == 3, lines
    assert mismatch in lines[0] and f.key in lines[0] and "no restart needed" in lines[0]
    assert unreadable in lines[1] and f.key in lines[1]
    assert "reachable again after" in lines[2]
    assert " as hub-a " in broker.log()
    platform.close()


def test_the_units_check_config_cannot_keep_the_hub_from_starting():
    """systemd runs check-config before `run`: failing there, it kept the hub from starting
    (a restart every 3 s, no alarm stored), what the uplink's outage handling is there to avoid."""
    unit = (Path(__file__).parents[2] / "hub/systemd/carebeacon-hub.service").read_text()
    (pre,) = [line for line in unit.splitlines() if line.startswith("ExecStartPre=")]
    assert pre.startswith("ExecStartPre=-") and pre.endswith(" check-config")
