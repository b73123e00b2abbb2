"""What the platform set, read from the hub's store by the command-line tools (`check-config`,
the installer) while the hub may be running: read only, the running hub is the store's one
writer. A store that cannot be read is said on stderr and checked no further."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from typing import TypeVar

from hub import config as C, contract

T = TypeVar("T")


class StoredState:
    """The store's state blobs, read only."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def get_state(self, name: str) -> bytes | None:
        row = self.db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])


def _read(cfg: C.Config, what: str, fn: Callable[[StoredState], T], absent: T) -> T:
    path = cfg.data_dir / "hub.db"
    if not path.exists():
        return absent
    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return fn(StoredState(db))
        finally:
            db.close()
    except sqlite3.Error as e:
        print(f"{path}: not read ({e}): {what} not checked", file=sys.stderr)
        return absent


def floor_in_force(cfg: C.Config) -> int | None:
    """The inactivity floor the hub runs with (minutes): the platform's over hub.toml's, over
    the default; None when inactivity detection is off. For the installer: a device's own
    summary interval must be shorter (docs/inactivity.md)."""
    from hub.home import stored_tuning

    if not cfg.inactivity.enabled:
        return None
    tuned = _read(cfg, "the platform's inactivity floor is", lambda s: stored_tuning(cfg, s), {})
    return {**cfg.inactivity.values, **tuned}.get("floor_min", contract.FLOOR_DEFAULT_MIN)


def floor_problem(cfg: C.Config) -> str | None:
    """hub.toml's inactivity floor against the activity intervals the platform set
    (hub/device_settings.py): what `hub run` would log at start, or None."""
    from hub.device_settings import DeviceSettings
    from hub.home import floor_problem as problem, stored_tuning

    if not cfg.inactivity.enabled:
        return None
    return _read(cfg, "the platform's settings are",
                 lambda s: problem(cfg, stored_tuning(cfg, s), DeviceSettings(cfg, s)), None)
