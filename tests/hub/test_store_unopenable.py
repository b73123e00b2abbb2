"""A store file that cannot be opened never stops the store (nor so the hub): it starts from
memory with the fault raised, reads what it can of the file, acknowledges and forwards as it
does for events held on a full disk, and moves everything to the file once it opens.

Real failures only: a read-only and a full filesystem (a tmpfs in a private mount namespace,
tmpfs_testing.py; skipped where that is refused), and a symbolic link loop, which the kernel
refuses to open (ELOOP) even for root, standing in for a file that cannot be read at all.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from store_testing import HUB, T0, rec, side_conn
from tmpfs_testing import run_on_tmpfs

from hub.store import Store, StoreError
from shared.frame import ACK_DELIVERED, ACK_STORED, T_SOS

_READ_ONLY = r"""
from hub.store import Store
from shared.frame import ACK_DELIVERED
data = FS + "/data"
os.mkdir(data)
path = data + "/hub.db"
s = Store(path, hub_id="hub-7", reserve_bytes=64 << 10)
old = s.add(rec(1, 1, 8)).ref  # pending on disk when the hub stops
s.put_state("hub_seq", b"\0\0\0\x05")
s.close()
read_only(data)  # e.g. the kernel remounted the card read-only after I/O errors
faults = []
s = Store(path, hub_id="hub-7", retry_interval_s=0, on_fault=faults.append,
          reserve_bytes=64 << 10)
out = {"file_open": s.file_open, "fault": s.fault, "state_unknown": s.state_unknown,
       "faults_at_start": list(faults), "hub_seq": s.get_state("hub_seq").hex()}
a = s.add(rec(2, 1, 1))  # an SOS
out["sos"] = [a.is_new, a.durable, a.status]
out["dup_status"] = s.add(rec(2, 1, 1)).status
out["pending"] = [e.ref for e in s.pending()]
out["flushed_read_only"] = s.flush_overflow()
out["faults_after_retry"] = [f is not None for f in faults]
s.mark_delivered(a.ref, 7)  # the platform's broker confirmed it
s.mark_delivered(old, 8)
out["status_after_puback"] = s.status_of(2, 1)
s.put_state("hub_seq", b"\0\0\0\x06")
out["prune_error"] = s.prune(10**13).error is not None
writable(data)
out["flushed"] = s.flush_overflow()
out["fault_after"] = s.fault
out["faults"] = [f is not None for f in faults]
out["reserve"] = s.reserve_present
s.close()
import sqlite3
with sqlite3.connect(path) as c:
    out["rows"] = c.execute("SELECT ref, state, delivered_ms FROM events ORDER BY id").fetchall()
    out["hub_seq_on_disk"] = c.execute("SELECT value FROM state WHERE name = 'hub_seq'"
                                       ).fetchone()[0].hex()
print(json.dumps(out))
"""


def test_a_read_only_filesystem_starts_the_store_from_memory(tmp_path: Path):
    out = run_on_tmpfs(_READ_ONLY, "8m", tmp_path)
    assert not out["file_open"] and "SQLITE_CANTOPEN" in out["fault"], out["log"]
    assert "/data/hub.db: cannot open the store" in out["fault"]
    assert out["faults_at_start"] == []  # not from inside the constructor (no loop yet)...
    assert out["faults_after_retry"] == [True]  # ...but at the first retry
    assert not out["state_unknown"] and out["hub_seq"] == "00000005"  # read from the file
    assert out["sos"] == [True, False, None]  # held: never STORED
    assert out["dup_status"] is None
    assert out["pending"] == ["hub-7:00000002:1", "hub-7:00000001:1"]  # alarm first, then disk
    assert out["flushed_read_only"] is False
    assert out["status_after_puback"] == ACK_DELIVERED
    assert out["prune_error"]
    assert out["flushed"] and out["fault_after"] is None and out["faults"] == [True, False]
    assert out["reserve"]
    assert out["rows"] == [["hub-7:00000001:1", 1, 8], ["hub-7:00000002:1", 1, 7]]
    assert out["hub_seq_on_disk"] == "00000006"


_FULL_AT_START = r"""
from hub.store import Store
path = FS + "/hub.db"
reserve = int(sys.argv[3])
s = Store(path, hub_id="hub-7", reserve_bytes=reserve)
s.put_state("replay:1", b"\1" * 8)
s.close()  # a clean stop: the -wal and -shm files are gone
fill()
s = Store(path, hub_id="hub-7", reserve_bytes=reserve, retry_interval_s=0)
out = {"file_open": s.file_open, "fault": s.fault, "replay": s.get_state("replay:1").hex()}
a = s.add(rec(2, 1, 1))
out["durable"] = a.durable
os.unlink(FS + "/fill")
out["flushed"] = s.flush_overflow()
out["durable_after"] = s.get(a.ref).durable
s.close()
out["integrity"] = integrity(path)
print(json.dumps(out))
"""


def test_a_full_filesystem_at_start_without_a_reserve(tmp_path: Path):
    out = run_on_tmpfs(_FULL_AT_START, "4m", tmp_path, "0")
    assert not out["file_open"] and "SQLITE_IOERR_SHMSIZE" in out["fault"], out["log"]
    assert out["replay"] == "01" * 8  # the replay windows are the file's
    assert not out["durable"]
    assert out["flushed"] and out["durable_after"] and out["integrity"] == "ok"


def test_a_full_filesystem_at_start_opens_with_the_reserve(tmp_path: Path):
    out = run_on_tmpfs(_FULL_AT_START, "4m", tmp_path, str(512 << 10))
    assert out["file_open"] and out["fault"] is None, out["log"]
    assert out["durable"] and "released the 512 KiB reserve" in out["log"]


def test_an_unreadable_file_starts_with_an_unknown_state(tmp_path: Path, caplog):
    path = tmp_path / "hub.db"
    os.symlink(path.name, path)  # hub.db -> hub.db: open() fails with ELOOP, for root too
    faults: list[str | None] = []
    s = Store(path, hub_id=HUB, retry_interval_s=60, on_fault=faults.append)
    assert not s.file_open and s.state_unknown
    assert "SQLITE_CANTOPEN" in (s.fault or "") and faults == []
    assert s.get_state("hub_seq") is None and s.pending() == [] and s.devices() == []
    a = s.add(rec(1, 1, T_SOS))
    assert (a.is_new, a.durable, a.status) == (True, False, None)
    assert s.status_of(1, 1) is None
    s.touch_device(1, last_seen_ms=T0)
    assert s.mark_delivered(a.ref, T0 + 1) and s.status_of(1, 1) == ACK_DELIVERED
    assert s.flush_overflow() is False and faults == [s.fault]
    assert s.stats()["file_open"] is False and s.stats()["held_alarms"] == 1
    os.unlink(path)  # the file can be opened now (here: created afresh)
    b = s.add(rec(1, 2, T_SOS))  # retry_interval_s=60: this write does not try yet
    assert not b.durable
    assert s.flush_overflow() is True and s.file_open and s.fault is None
    assert faults[-1] is None
    assert s.status_of(1, 2) == ACK_STORED and s.status_of(1, 1) == ACK_DELIVERED
    s.close()
    with side_conn(path) as c:
        rows = c.execute("SELECT seq, state FROM events ORDER BY id").fetchall()
        assert rows == [(1, 1), (2, 0)]
        assert c.execute("SELECT device_id, last_seen_ms FROM devices").fetchall() == [(1, T0)]


def test_what_no_retry_mends_still_raises(tmp_path: Path):
    path = tmp_path / "hub.db"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE photos (x)")
    with pytest.raises(StoreError, match="not a carebeacon hub store"):
        Store(path, hub_id=HUB)
    assert not (tmp_path / "hub.db.reserve").exists()
