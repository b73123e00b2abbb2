"""Opening the hub's store (hub/store.py): WAL with full sync, schema version, foreign or
broken files and bad configuration refused naming the cause; usable from an executor thread."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from store_testing import HUB, rec, side_conn

from hub.store import Store, StoreError
from hub.store_schema import SCHEMA_VERSION
from shared.frame import ACK_STORED, T_SOS


def test_opens_in_wal_mode_with_full_sync(store: Store, path: Path):
    assert store.journal_mode == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # type: ignore[union-attr]
    with side_conn(path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
        assert c.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_newer_schema_is_refused_with_a_clear_error(path: Path):
    Store(path, hub_id=HUB).close()
    with side_conn(path) as c:
        c.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError) as e:
        Store(path, hub_id=HUB)
    msg = str(e.value)
    assert str(path) in msg and "version %d is newer" % (SCHEMA_VERSION + 1) in msg


def test_foreign_or_broken_files_are_refused_naming_the_path(tmp_path: Path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE photos (x)")
    with pytest.raises(StoreError, match="not a carebeacon hub store.*photos"):
        Store(other, hub_id=HUB)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as e:
        Store(junk, hub_id=HUB)
    assert str(junk) in str(e.value) and "not a database" in str(e.value)
    with pytest.raises(StoreError, match="directory .*missing.* does not exist"):
        Store(tmp_path / "missing" / "hub.db", hub_id=HUB)
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path, hub_id=HUB)
    with pytest.raises(StoreError, match="plain file path"):
        Store(":memory:", hub_id=HUB)


def test_configuration_is_checked(path: Path):
    with pytest.raises(TypeError):
        Store(path)  # type: ignore[call-arg]  # hub_id is required: refs must be unique per hub
    for bad in ("", "a:b", "hub 1", "é", "x" * 65, "Hub", "hub.7"):
        with pytest.raises(ValueError, match="hub_id"):
            Store(path, hub_id=bad)
    with pytest.raises(ValueError, match="sync"):
        Store(path, hub_id=HUB, sync="OFF")
    with pytest.raises(ValueError, match="max_events"):
        Store(path, hub_id=HUB, max_events=0)


def test_usable_from_one_executor_thread(path: Path):
    s = Store(path, hub_id=HUB)  # created on the loop thread
    box: list[object] = []
    t = threading.Thread(target=lambda: box.append(s.add(rec(1, 1, T_SOS))))
    t.start()
    t.join()
    assert box and box[0].durable  # type: ignore[attr-defined]
    assert s.status_of(1, 1) == ACK_STORED
    s.close()
