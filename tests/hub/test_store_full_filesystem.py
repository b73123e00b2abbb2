"""The store on a truly full filesystem (a small tmpfs filled to the last byte, in a private
mount namespace: tmpfs_testing.py): the reserve file it releases keeps alarms durable,
eviction of old delivered routine events keeps them durable while that history lasts, and
without either, alarms are held in memory and still forwarded, with the fault raised.

test_store_disk_full.py fakes a full disk with PRAGMA max_page_count; that leaves the
filesystem room for the WAL, so it never shows that the eviction itself needs space.
"""

from __future__ import annotations

from pathlib import Path

from tmpfs_testing import run_on_tmpfs

from shared.frame import ACK_STORED

_FULL_DISK_SOS = r"""
from hub.store import Store
path = FS + "/hub.db"
s = Store(path, hub_id="hub-7", reserve_bytes=int(sys.argv[3]))
reserve_at_start = s.reserve_present
for q in range(1, 60):  # the reviewer's demo: 59 delivered routine events, then the disk fills
    s.add(rec(1, q, 8, delivered=True))
fill()
a = s.add(rec(2, 1, 1))  # an SOS
out = {"reserve_at_start": reserve_at_start, "durable": a.durable, "status": a.status,
       "room_made": s.room_made, "fault": s.fault, "reserve_after": s.reserve_present,
       "pending": [e.ref for e in s.pending()]}
s.close()
s = Store(path, hub_id="hub-7", reserve_bytes=int(sys.argv[3]))  # a restart, disk still full
out["reopened"] = s.file_open
out["sos_on_disk"] = s.get(a.ref) is not None and s.get(a.ref).durable
s.close()
out["integrity"] = integrity(path)
print(json.dumps(out))
"""


def test_the_reserve_makes_an_alarm_durable_on_a_truly_full_filesystem(tmp_path: Path):
    out = run_on_tmpfs(_FULL_DISK_SOS, "8m", tmp_path, str(1 << 20))
    assert out["reserve_at_start"], out["log"]
    assert out["durable"] and out["status"] == ACK_STORED and out["fault"] is None, out["log"]
    assert out["room_made"] == 59  # the routine history went too, to keep room for the next
    assert not out["reserve_after"]  # spent; set aside again once the disk has room
    assert out["pending"] == ["hub-7:00000002:1"]
    assert out["reopened"] and out["sos_on_disk"] and out["integrity"] == "ok", out["log"]
    assert "released the 1024 KiB reserve" in out["log"]


def test_without_a_reserve_the_alarm_is_held_in_memory_and_forwarded(tmp_path: Path):
    """What the reviewer saw: the eviction needs room in the WAL too, so on a full
    filesystem it fails. The alarm is then held in memory, forwarded and not called STORED."""
    out = run_on_tmpfs(_FULL_DISK_SOS, "8m", tmp_path, "0")
    assert not out["reserve_at_start"]
    assert not out["durable"] and out["status"] is None, out["log"]
    assert "SQLITE_FULL" in out["fault"] and out["room_made"] == 0
    assert out["pending"] == ["hub-7:00000002:1"]  # still offered to the platform
    assert "evicting routine events failed too (SQLITE_FULL" in out["log"]


_STEADY = r"""
from hub.store import Store
path = FS + "/hub.db"
s = Store(path, hub_id="hub-7", reserve_bytes=256 << 10, retry_interval_s=0)
for q in range(1, 2001):
    s.add(rec(1, q, 8, delivered=True))
fill()
alarms = []
routine_seq = 2000
for q in range(1, 401):  # an alarm among every 5 routine events, on a disk with 0 bytes free
    alarms.append(s.add(rec(2, q, 1)).durable)
    for _ in range(5):
        routine_seq += 1
        s.add(rec(1, routine_seq, 8, delivered=True))
out = {"alarms_durable": sum(alarms), "alarms": len(alarms), "fault": s.fault,
       "room_made": s.room_made, "free_kib": free_kib(),
       "events": s.stats()["events"], "pending_alarms": s.stats()["pending_alarms"]}
s.close()
out["integrity"] = integrity(path)
print(json.dumps(out))
"""


def test_alarms_stay_durable_on_a_full_disk_while_routine_history_lasts(tmp_path: Path):
    """After the reserve is spent, delivered routine events are evicted before the file has
    to grow, so the space the reserve gave back is kept for when that history runs out."""
    out = run_on_tmpfs(_STEADY, "16m", tmp_path)
    assert out["alarms_durable"] == out["alarms"] == 400, out["log"]
    assert out["fault"] is None and out["pending_alarms"] == 400
    assert out["room_made"] >= 2000, "the oldest history went first"
    assert out["free_kib"] > 0, "space the reserve gave back is still there"
    assert out["integrity"] == "ok"
    assert "disk almost full" in out["log"]


_ALARMS_ONLY = r"""
from hub.store import Store
path = FS + "/hub.db"
faults = []
s = Store(path, hub_id="hub-7", reserve_bytes=128 << 10, retry_interval_s=0,
          on_fault=faults.append)
s.add(rec(1, 1, 1))
fill()
results = [s.add(rec(2, q, 1)) for q in range(1, 301)]  # alarms only: nothing to evict
durable = [a.ref for a in results if a.durable]
held = [a.ref for a in results if not a.durable]
pending = [e.ref for e in s.pending(1000)]
out = {"durable": len(durable), "held": len(held), "fault": s.fault,
       "held_status": [s.status_of(2, q) for q in range(len(durable) + 1, 301)],
       "held_pending": pending[-len(held):] == held if held else None,
       "reserve_before_free": s.reserve_present}
os.unlink(FS + "/fill")  # space is back
out["flushed"] = s.flush_overflow()
out["fault_after"] = s.fault
out["faults"] = [f is not None for f in faults]
out["pruned"] = s.prune(1000).error
out["reserve_after_prune"] = s.reserve_present
out["on_disk_alarms"] = s.stats()["pending_alarms"]
s.close()
out["integrity"] = integrity(path)
print(json.dumps(out))
"""


def test_alarms_beyond_the_reserve_are_held_and_written_when_space_returns(tmp_path: Path):
    out = run_on_tmpfs(_ALARMS_ONLY, "8m", tmp_path)
    assert out["durable"] > 0, "the reserve gave room for some alarms"
    assert out["held"] > 0 and "SQLITE_FULL" in out["fault"], out["log"]
    assert set(out["held_status"]) == {None}  # never STORED while only in memory
    assert out["held_pending"] is True  # forwarded from memory, in order
    assert not out["reserve_before_free"]
    assert out["flushed"] and out["fault_after"] is None
    assert out["faults"] == [True, False]  # raised once, cleared once
    assert out["pruned"] is None and out["reserve_after_prune"]  # set aside again
    assert out["on_disk_alarms"] == 301 and out["integrity"] == "ok"
