"""Helpers for the tests of `hub device add/remove` editing hub.toml and the secrets file:
run the real CLI in a subprocess (as another user, under a file-size limit, from another
directory), snapshot a directory to prove nothing changed."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub_testing import MINIMAL_HUB_TOML

ROOT = Path(__file__).resolve().parents[2]
KEY = "00112233445566778899aabbccddeeff"
HUB_UID = HUB_GID = 65534  # nobody:nogroup stands in for the service user carebeacon
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"),
    reason="needs root and setpriv: files are chown'ed to another user (nobody) and the CLI "
    "runs as that user, standing in for the service user carebeacon")


def hub_toml(*device_ids: str, tail: str = "") -> str:
    blocks = "".join(f'\n[[devices]]\nid = "{d}"\nkind = "button"\nroom = "bedroom"\n'
                     for d in device_ids)
    return MINIMAL_HUB_TOML + blocks + tail


def secrets_toml(*device_ids: str) -> str:
    return "[keys]\n" + "".join(f'"{d}" = "{KEY}"\n' for d in device_ids)


def write_config(d: Path, hub: str, secrets: str | None) -> Path:
    (d / "hub.toml").write_text(hub, encoding="utf-8")
    if secrets is not None:
        (d / "secrets.toml").write_text(secrets)
        os.chmod(d / "secrets.toml", 0o600)
    return d / "hub.toml"


def hubcli(cfg: str | Path, *args: str | bytes, stdin: str | None = None, cwd: Path = ROOT,
           as_hub_user: bool = False, fsize: int | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m hub -c cfg args...`; as_hub_user: as uid/gid 65534 without other groups;
    fsize: RLIMIT_FSIZE in bytes (the kernel refuses writes past it with EFBIG, as a full disk
    refuses them; Python ignores SIGXFSZ)."""
    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.RLIM_INFINITY))

    # setpriv (util-linux), as the review's demos: subprocess's user= could not exec the venv's
    # python here (its interpreter lives under root's home)
    user = ["setpriv", f"--reuid={HUB_UID}", f"--regid={HUB_GID}", "--clear-groups"]
    return subprocess.run(
        [*(user if as_hub_user else []), sys.executable, "-m", "hub", "-c", str(cfg), *args],
        cwd=cwd, capture_output=True, timeout=60, preexec_fn=limit,
        input=None if stdin is None else stdin.encode(),
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT),
             **(env or {})})


def out(r: subprocess.CompletedProcess) -> str:
    return (r.stdout + r.stderr).decode("utf-8", "replace")


def snapshot(d: Path) -> dict[str, tuple[bytes, int, int, int]]:
    """Every file in d: content, owner, group, mode."""
    res = {}
    for p in sorted(d.iterdir()):
        st = p.lstat()
        res[p.name] = (p.read_bytes() if p.is_file() else b"", st.st_uid, st.st_gid,
                       stat.S_IMODE(st.st_mode))
    return res


def owner(p: Path) -> tuple[int, int, int]:
    st = p.stat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@contextlib.contextmanager
def shared_directory() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path is root's own, mode 0700)."""
    d = Path(tempfile.mkdtemp(prefix="carebeacon-cli-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d)
