"""A real small filesystem for the store's disk-full and read-only tests
(test_store_full_filesystem.py, test_store_unopenable.py).

`run_on_tmpfs(script, size)` runs a Python script in a child process that has its own mount
namespace (`unshare -rm`: a user namespace too, so no root is needed where the kernel allows
unprivileged user namespaces) with a fresh tmpfs of `size` mounted on a temporary directory:
the kernel's own ENOSPC, EROFS and quota, not a simulation. The script gets the repository
on sys.path, `FS` (the tmpfs) and the helpers in PRELUDE, and prints one JSON object, which
run_on_tmpfs returns. Where the namespace or the mount is refused (a container without user
namespaces, no util-linux), run_on_tmpfs skips the test and says why.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_MOUNT = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'

PRELUDE = r'''
import json, os, subprocess, sys
sys.path.insert(0, sys.argv[1])
FS = sys.argv[2]

def sh(cmd):
    subprocess.run(["sh", "-c", cmd], check=True)

def fill(name="fill"):
    """Fill the filesystem to the last byte, as a runaway log would."""
    fd = os.open(os.path.join(FS, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for chunk in (1 << 20, 65536, 4096, 512, 1):
        try:
            while True:
                os.write(fd, bytes(chunk))
        except OSError:
            pass
    os.close(fd)
    assert os.statvfs(FS).f_bavail == 0

def free_kib():
    st = os.statvfs(FS)
    return st.f_bavail * st.f_frsize // 1024

def read_only(d):
    """Make directory `d` a read-only filesystem (a bind mount of itself), as after a
    remount-ro on I/O errors; writable() undoes it."""
    sh("mount --bind '%s' '%s' && mount -o remount,bind,ro '%s'" % (d, d, d))

def writable(d):
    sh("mount -o remount,bind,rw '%s'" % d)

def integrity(path):
    import sqlite3
    with sqlite3.connect(path) as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0]

def rec(dev, seq, mtype, delivered=False, pad=200):
    from hub.store import Record
    body = json.dumps({"ref": "hub-7:%08x:%d" % (dev, seq), "pad": "x" * pad})
    return Record(device_id=dev, seq=seq, mtype=mtype, arg=0, event_ms=1000, recv_ms=1000,
                  payload_json=body, delivered_ms=1000 if delivered else None)
'''


@functools.cache
def tmpfs_refused() -> str | None:
    """Why a tmpfs cannot be mounted in a private namespace here, or None if it can."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "needs unshare and mount (util-linux)"
    with tempfile.TemporaryDirectory() as d:
        try:
            p = subprocess.run(
                ["unshare", "-rm", "sh", "-c", _MOUNT, "sh", "1m", d, "true"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return "unshare -rm failed: %s" % e
    if p.returncode != 0:
        return (
            "cannot mount a tmpfs in a private user+mount namespace here (unprivileged user"
            " namespaces disabled?): %s" % (p.stderr.strip() or p.returncode)
        )
    return None


def require_tmpfs() -> None:
    why = tmpfs_refused()
    if why:
        pytest.skip(why)


def run_on_tmpfs(script: str, size: str, tmp_path: Path, *args: str, timeout: float = 120):
    """Run PRELUDE + `script` with a fresh tmpfs of `size` as FS; return its JSON output."""
    require_tmpfs()
    mnt = tmp_path / "fs"
    mnt.mkdir()
    p = subprocess.run(
        ["unshare", "-rm", "sh", "-c", _MOUNT, "sh", size, str(mnt), sys.executable, "-c",
         PRELUDE + script, str(REPO), str(mnt), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert p.returncode == 0, "child failed (%d):\n%s\n%s" % (p.returncode, p.stdout, p.stderr)
    lines = p.stdout.strip().splitlines()
    assert lines, "child printed nothing:\n%s" % p.stderr
    out = json.loads(lines[-1])
    out["log"] = p.stderr
    return out
