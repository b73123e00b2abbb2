"""Where the installer keeps its things, also when it runs under sudo.

    firmware cache   $CAREBEACON_CACHE, else ~/.cache/carebeacon
    visit records    --records DIR, else $CAREBEACON_RECORDS, else ~/carebeacon-records

`~` is the home of the person running the tool. The guide runs the visit's commands with
sudo (they write the hub's root-owned files), and sudo resets the environment: HOME becomes
/root and the CAREBEACON_* variables are dropped. Under sudo `~` is therefore the home of
the user who ran sudo (SUDO_USER), where the cache filled before the visit is, and what the
tool creates there (records, labels, compiled modules) is given back to that user at the
end, so that the same commands also work without sudo later.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

RECORDS = "carebeacon-records"


def sudo_user() -> pwd.struct_passwd | None:
    """The user who ran `sudo`, when this process runs as root through sudo."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("SUDO_USER", "")
    if not name or name == "root":
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def home() -> Path:
    pw = sudo_user()
    return Path(pw.pw_dir) if pw else Path.home()


def cache_dir() -> Path:
    env = os.environ.get("CAREBEACON_CACHE")
    return Path(env) if env else home() / ".cache" / "carebeacon"


def records_root(records: str | Path | None = None) -> Path:
    if records:
        return Path(records)
    env = os.environ.get("CAREBEACON_RECORDS")
    return Path(env) if env else home() / RECORDS


def give_back(paths: list[Path]) -> None:
    """Under sudo: hand what this run created in the invoking user's home back to them.

    Only root-owned entries strictly inside that home are changed: the given trees, and
    their parent folders up to the home (made here with parents=True)."""
    pw = sudo_user()
    if pw is None:
        return
    top = Path(pw.pw_dir).resolve()

    def mine(p: Path) -> None:
        try:
            st = p.lstat()
            if st.st_uid == 0:
                os.lchown(p, pw.pw_uid, pw.pw_gid)
        except OSError:
            pass

    for path in paths:
        path = path.resolve()
        if top not in path.parents or not path.exists():
            continue
        for parent in path.parents:
            if parent == top:
                break
            mine(parent)
        mine(path)
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                mine(Path(dirpath) / name)
