"""`[platform]` and transport security (hub/config_platform.py): TLS files under a plaintext URL
are refused (a one-letter `mqtt://` typo for `mqtts://` used to drop them silently: every alarm
in clear to whoever answered), plain MQTT reaches this machine only, `hub run` warns about a
plaintext platform, and the hub's TLS private key may not be readable by other users (like
secrets.toml). Every loader refuses them but `hub run` (strict=False), which blocks its uplink
instead (tests/hub/test_hub_e2e_uplink_blocked.py). Real files and modes; `hub run` and
`check-config` as real processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_files_testing import HUB_GID, ROOT, hubcli, out

from broker import free_port
from hub.config import ConfigError, load

TLS = 'ca_file = "ca.pem"\ncert_file = "hub.pem"\nkey_file = "hub.key"\n'


def write(d: Path, url: str, tls: str = TLS, key_mode: int = 0o600) -> Path:
    for f in ("ca.pem", "hub.pem", "hub.key"):
        (d / f).write_text("x")
    os.chmod(d / "hub.key", key_mode)
    (d / "hub.toml").write_text(
        '[hub]\nid = "hub-a"\ncounty = "test-county"\nhousehold = "HH-7"\ndata_dir = "data"\n'
        f'[platform]\nurl = "{url}"\n{tls}')
    return d / "hub.toml"


@pytest.mark.parametrize("url", ["mqtt://platform.county.example:8883", "mqtt://localhost:1883",
                                 "unix:///run/mosquitto/mqtt.sock"])
@pytest.mark.parametrize("key", ["ca_file", "cert_file", "key_file"])
def test_tls_files_with_a_plaintext_url_are_refused(tmp_path, url, key):
    cfg = write(tmp_path, url, tls=f'{key} = "{key}.pem"\n')
    with pytest.raises(ConfigError) as e:
        load(cfg)
    assert str(e.value).startswith(f"{cfg}: platform.{key}: '{key}.pem' is set, but url '{url}'"
                                   " is not TLS")
    assert "use mqtts:// or remove ca_file, cert_file and key_file" in str(e.value)


def test_the_typo_is_refused_by_check_config_and_the_fix_loads(tmp_path):
    cfg = write(tmp_path, "mqtt://platform.county.example:8883")
    r = hubcli(cfg, "check-config")
    assert r.returncode == 2 and "platform.ca_file" in out(r) and "use mqtts://" in out(r), out(r)
    write(tmp_path, "mqtts://platform.county.example:8883")
    assert load(cfg).platform.tls


@pytest.mark.parametrize("url", ["mqtt://platform.county.example", "mqtt://192.168.1.20:1883",
                                 "mqtt://[2001:db8::1]:1883", "mqtt://localhost.example.org",
                                 "mqtt://mylocalhost", "mqtt://localhost.localdomain.example",
                                 "mqtt://[::ffff:10.8.0.1]"])
def test_plain_mqtt_beyond_this_machine_is_refused(tmp_path, url):
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path, url, tls=""))
    assert f"platform.url: '{url}': plain MQTT (no TLS) only to this machine" in str(e.value)


# This machine by name without DNS at load: localhost, RFC 6761's .localhost, the hosts files'
# localhost.localdomain (a config that ran before plain MQTT was confined); IPv4-mapped loopback.
@pytest.mark.parametrize("url", ["mqtt://localhost:1883", "mqtt://127.0.0.1", "mqtt://[::1]:1",
                                 "mqtt://127.0.1.1", "unix:///run/mosquitto/mqtt.sock",
                                 "mqtt://localhost.localdomain:1883", "mqtt://broker.localhost",
                                 "mqtt://LocalHost.:1883", "mqtt://[::ffff:127.0.0.1]"])
def test_plaintext_stays_for_tests_and_the_simulator(tmp_path, url):
    p = load(write(tmp_path, url, tls="")).platform
    assert not p.tls and p.ca_file is None and p.cert_file is None and p.key_file is None
    assert p.blocked is None
    if url.startswith("mqtt://") and not url.startswith(("mqtt://1", "mqtt://[")):
        assert p.host == "127.0.0.1"  # a name: connected to without asking DNS



@pytest.mark.parametrize(("url", "tls"), [
    ("mqtt://10.8.0.1:1883", ""),  # over a VPN: ran before plain MQTT was confined
    ("mqtt://localhost.example.org", ""),
    ("mqtt://localhost:1883", TLS), ("mqtt://10.8.0.1:1883", TLS),
    ("unix:///run/mosquitto/mqtt.sock", 'key_file = "absent.key"\n'),  # files: not looked at
])
def test_hub_run_loads_them_with_its_uplink_blocked(tmp_path, url, tls):
    """`hub run` must run (systemd restart-loops a refusal, storing no alarm) but not connect:
    `blocked` is check-config's refusal word for word, the files are not kept for the uplink."""
    cfg = write(tmp_path, url, tls=tls)
    with pytest.raises(ConfigError) as e:
        load(cfg)
    p = load(cfg, strict=False).platform
    assert p.blocked == str(e.value)
    assert not p.tls and p.ca_file is None and p.cert_file is None and p.key_file is None
    assert p.file_problems == ()


def test_hub_run_is_not_blocked_by_a_tls_platform_with_a_missing_file(tmp_path):
    cfg = write(tmp_path, "mqtts://platform.county.example")
    (tmp_path / "ca.pem").unlink()
    p = load(cfg, strict=False).platform  # the uplink's problem: it retries the files
    assert p.blocked is None and p.file_problems == (
        f"{cfg}: platform.ca_file: {tmp_path / 'ca.pem'}: file not found",)


def run_until_started(cfg: Path) -> str:
    """`hub run` until its first status.json (it has started: no bluetoothd or broker needed
    for that), then SIGTERM; its log."""
    log = cfg.parent / "hub.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "hub", "-c", str(cfg), "run"], cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not (cfg.parent / "data" / "status.json").exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    return log.read_text()


def test_hub_run_warns_about_a_plaintext_platform(tmp_path):
    port = free_port()  # nothing listens: an outage, as in any test without a broker
    text = run_until_started(write(tmp_path, f"mqtt://localhost:{port}", tls=""))
    # (the loopback name is connected to as 127.0.0.1: no DNS asked)
    assert (f"WARNING carebeacon.config: platform mqtt://127.0.0.1:{port}: NO TLS: alarms go "
            "unencrypted and unauthenticated") in text


def test_hub_run_says_nothing_of_the_kind_with_tls(tmp_path):
    text = run_until_started(write(tmp_path, f"mqtts://localhost:{free_port()}"))
    assert "NO TLS" not in text and "carebeacon.config" not in text


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602, 0o660, 0o670, 0o400 | 0o004])
def test_a_tls_key_other_users_may_read_or_replace_is_refused(tmp_path, mode):
    cfg = write(tmp_path, "mqtts://platform.county.example", key_mode=mode)
    key = tmp_path / "hub.key"
    with pytest.raises(ConfigError) as e:
        load(cfg)
    assert str(e.value).startswith(f"{cfg}: platform.key_file: {key}: mode {mode:04o}: other "
                                   "users may read or replace the hub's TLS private key; run: "
                                   f"chmod 600 {key}")
    r = hubcli(cfg, "check-config")  # the hub refuses to start the same way
    assert r.returncode == 2 and f"mode {mode:04o}" in out(r), out(r)


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o640, 0o440])
def test_a_tls_key_for_the_hub_alone_loads(tmp_path, mode):
    cfg = write(tmp_path, "mqtts://platform.county.example", key_mode=mode)
    assert load(cfg).platform.key_file == str(tmp_path / "hub.key")  # group: root's, ours


@pytest.mark.skipif(os.geteuid() != 0, reason="chgrp to another group needs root")
def test_a_tls_key_readable_by_a_group_not_the_hubs_is_refused(tmp_path, monkeypatch):
    """0640 root:nogroup: the members of nogroup could read it, unless the hub runs as nobody
    (the hub's user named for root's commands by CAREBEACON_HUB_USER, as for device add)."""
    cfg = write(tmp_path, "mqtts://platform.county.example", key_mode=0o640)
    os.chown(tmp_path / "hub.key", 0, HUB_GID)
    monkeypatch.setenv("CAREBEACON_HUB_USER", "no-such-user-here")
    with pytest.raises(ConfigError, match=r"mode 0640 and group nogroup: other users may read"):
        load(cfg)
    monkeypatch.setenv("CAREBEACON_HUB_USER", "nobody")  # nobody's group is nogroup
    assert load(cfg).platform.tls
