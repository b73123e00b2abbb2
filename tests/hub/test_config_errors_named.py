"""hub.toml and secrets problems are refused with the file and the key named, never a traceback,
and a device key is never echoed. Review findings, each failing before its fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import ConfigError, load
from hub_testing import MINIMAL_HUB_TOML

ROOT = Path(__file__).resolve().parents[2]
BASE = MINIMAL_HUB_TOML


def hub(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub", "-c", str(cfg), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def refused(r: subprocess.CompletedProcess, *names: str) -> None:
    assert "Traceback" not in r.stderr, r.stderr[-800:]
    assert r.returncode == 2 and all(n in r.stderr for n in names), r.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "true"])
def test_a_number_setting_refuses_nan_infinity_and_booleans(tmp_path, value):
    (tmp_path / "hub.toml").write_text(BASE + f"[radio]\nack_connect_timeout_s = {value}\n")
    with pytest.raises(ConfigError, match="radio.ack_connect_timeout_s"):
        load(tmp_path / "hub.toml")


def test_a_hub_toml_that_is_not_utf8_is_named(tmp_path):
    cfg = tmp_path / "hub.toml"
    cfg.write_bytes(BASE.encode() + b"# K\xfcche\n")  # an editor saving in Latin-1
    refused(hub(cfg, "check-config"), str(cfg), "not UTF-8")


def test_a_secrets_file_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / "hub.toml").write_text(BASE)
    sec = tmp_path / "secrets.toml"
    sec.write_bytes(b"# cl\xe9s\n[keys]\n")
    os.chmod(sec, 0o600)
    refused(hub(tmp_path / "hub.toml", "check-config"), str(sec), "not UTF-8")


def test_a_config_path_that_is_a_folder_is_named(tmp_path):
    refused(hub(tmp_path, "check-config"), str(tmp_path), "a folder")


def test_a_malformed_platform_url_is_named(tmp_path):
    (tmp_path / "hub.toml").write_text(BASE.replace("mqtt://localhost:1883", "mqtt://[::1:1883"))
    refused(hub(tmp_path / "hub.toml", "check-config"), "platform.url")


def test_a_key_written_where_the_device_id_goes_is_never_printed(tmp_path):
    (tmp_path / "hub.toml").write_text(BASE + '[[devices]]\nid = "0000a1b2"\nkind = "button"\n')
    sec = tmp_path / "secrets.toml"
    key = "8f1c2d3e4a5b69788796a5b4c3d2e1f0"
    sec.write_text(f'[keys]\n"{key}" = "0000a1b2"\n')  # id and key swapped
    os.chmod(sec, 0o600)
    r = hub(tmp_path / "hub.toml", "check-config")  # what ExecStartPre puts in the journal
    refused(r, str(sec), "entry 1")
    assert key not in r.stdout + r.stderr


def test_a_data_dir_the_hub_cannot_create_is_named(tmp_path):
    (tmp_path / "hub.toml").write_text(BASE.replace('data_dir = "data"',
                                                    'data_dir = "/proc/carebeacon"'))
    refused(hub(tmp_path / "hub.toml", "run"), "hub.data_dir", "/proc/carebeacon")
