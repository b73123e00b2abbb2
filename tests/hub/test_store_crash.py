"""kill -9 of a process writing to the store, at random moments: nothing told STORED is lost,
nothing is stored twice, nothing is invented."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from store_testing import REPO, side_conn

from hub.store import DELIVERED

_CRASH_CHILD = r"""
import json, random, sys
sys.path.insert(0, sys.argv[1])
from hub.store import Record, Store
path, rnd = sys.argv[2], int(sys.argv[3])
rng = random.Random(rnd)
s = Store(path, hub_id="crash", max_events=10**6)
old = [r for r in s._db.execute("SELECT device_id, seq FROM events")]
out = sys.stdout
def say(tag, ref):
    out.write("%s %s\n" % (tag, ref)); out.flush()
k = 0
while True:
    batch = []
    for _ in range(rng.randint(1, 4)):
        if old and rng.random() < 0.2:
            dev, seq = rng.choice(old)  # a retry of a frame stored in an earlier life
        else:
            k += 1
            dev, seq = 1 + k % 3, rnd * 100000 + k
        mtype = 1 if seq % 4 == 0 else 8
        batch.append(Record(dev, seq, mtype, 0, 1000, 1000, json.dumps({"s": seq})))
    for r in batch:
        say("T", s.ref_for(r.device_id, r.seq))  # attempted (anything on disk must be here)
    for a in s.add_many(batch):
        if a.durable:
            say("S", a.ref)  # the device would now be told STORED
    if rng.random() < 0.3:
        p = s.pending(5)
        if p:
            s.mark_delivered(p[0].ref, 1)
            say("D", p[0].ref)
"""


def test_kill_9_never_loses_a_stored_frame_nor_duplicates_nor_invents(tmp_path: Path):
    path = tmp_path / "hub.db"
    rng = random.Random(20240607)
    attempted: set[str] = set()
    stored: set[str] = set()
    delivered: set[str] = set()
    for rnd in range(1, 9):
        proc = subprocess.Popen(
            [sys.executable, "-c", _CRASH_CHILD, str(REPO), str(path), str(rnd)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        sets = {"T": attempted, "S": stored, "D": delivered}
        stop_after = rng.randint(1, 400)
        for n, line in enumerate(proc.stdout, start=1):
            tag, ref = line.split()
            sets[tag].add(ref)
            if n >= stop_after:
                break
        proc.kill()  # SIGKILL, wherever the child is
        proc.wait(timeout=10)
        for line in proc.stdout:  # what it said before dying, still in the pipe
            if line.endswith("\n"):
                tag, ref = line.split()
                sets[tag].add(ref)
        err = proc.stderr.read() if proc.stderr else ""
        assert proc.returncode == -9, err
        with side_conn(path) as c:
            rows = c.execute("SELECT ref, device_id, seq, state FROM events").fetchall()
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        refs = {r[0] for r in rows}
        assert stored <= refs, "told STORED, then lost: %s" % sorted(stored - refs)[:5]
        assert refs <= attempted, "invented: %s" % sorted(refs - attempted)[:5]
        assert len({(r[1], r[2]) for r in rows}) == len(rows) == len(refs)
        assert all(r[3] == DELIVERED for r in rows if r[0] in delivered)
    assert len(stored) > 50
