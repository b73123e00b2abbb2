"""Relative paths: `-c etc/hub.toml` finds etc/secrets.toml (not etc/etc/secrets.toml); a
relative `--secrets` is relative to the working directory for `device add` and for loading
alike; hub.toml's own `secrets_file` is relative to hub.toml's directory."""

from __future__ import annotations

from cli_files_testing import hub_toml, hubcli, out, secrets_toml, write_config

from hub import cli, config as C


def test_relative_config_path_with_a_directory(tmp_path):
    """The review's demo d7."""
    (tmp_path / "etc").mkdir()
    write_config(tmp_path / "etc", hub_toml(), None)
    r = hubcli("etc/hub.toml", "device", "add", "0000a1b2", "--kind", "button", cwd=tmp_path)
    assert r.returncode == 0, out(r)
    assert (tmp_path / "etc" / "secrets.toml").is_file()
    for cfg in ("etc/hub.toml", str(tmp_path / "etc" / "hub.toml")):
        r = hubcli(cfg, "check-config", cwd=tmp_path)
        assert r.returncode == 0 and "1 device(s)" in r.stdout.decode(), out(r)


def test_relative_secrets_option_is_the_same_file_for_writing_and_loading(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "keys").mkdir()
    write_config(tmp_path / "etc", hub_toml(), None)
    args = ("--secrets", "keys/s.toml")
    r = hubcli("etc/hub.toml", *args, "device", "add", "0000a1b2", "--kind", "button",
               cwd=tmp_path)
    assert r.returncode == 0, out(r)
    assert (tmp_path / "keys" / "s.toml").is_file()
    r = hubcli("etc/hub.toml", *args, "check-config", cwd=tmp_path)
    assert r.returncode == 0, out(r)


def test_secrets_file_setting_is_relative_to_hub_toml(tmp_path, monkeypatch):
    etc = tmp_path / "etc"
    (etc / "private").mkdir(parents=True)
    write_config(etc, 'secrets_file = "private/keys.toml"\n' + hub_toml("0000a1b2"), None)
    (etc / "private" / "keys.toml").write_text(secrets_toml("0000a1b2"))
    (etc / "private" / "keys.toml").chmod(0o600)
    monkeypatch.chdir(tmp_path)
    assert list(C.load("etc/hub.toml").keys) == [0xA1B2]
    assert cli.secrets_path(C.load("etc/hub.toml").path) == etc.relative_to(tmp_path) / \
        "private" / "keys.toml"
    r = hubcli("etc/hub.toml", "device", "remove", "0000a1b2", "--yes", cwd=tmp_path)
    assert r.returncode == 0, out(r)
    assert (etc / "private" / "keys.toml").read_text() == "[keys]\n"
