"""How fast can the hub store commit frames on this disk?

    .venv/bin/python bench/store_commit.py [DIR] [--rows N]

Runs hub.store.Store on a fresh file in DIR (default: a temporary directory; point it at
the hub's SD card to measure the card) and prints, in one run so the numbers compare:
  FULL, 1 row per commit      what each lone alarm costs (fsync per commit: durable)
  FULL, 10 / 100 per commit   grouped frames (add_many): one fsync per group
  NORMAL, 1 row per commit    WAL without fsync per commit, the baseline (NOT durable
                              on power loss; the store never calls these rows stored)
Files are removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.store import Record, Store  # noqa: E402  (needs the path above)

CASES = [("FULL", 1), ("FULL", 10), ("FULL", 100), ("NORMAL", 1)]


def run(directory: str, sync: str, group: int, rows: int) -> tuple[float, float]:
    """Return (commits/s, rows/s) for `rows` records in groups of `group`."""
    path = os.path.join(directory, "bench-%s-%d.db" % (sync.lower(), group))
    store = Store(path, hub_id="bench", sync=sync, max_events=10 * rows)
    try:
        body = json.dumps({"type": "HEARTBEAT", "battery": 87, "pad": "x" * 120})
        recs = [Record(1 + i % 20, 1 + i, 8, 0, 1_760_000_000_000, 1_760_000_000_000, body)
                for i in range(rows)]
        t = time.perf_counter()
        commits = 0
        for i in range(0, rows, group):
            store.add_many(recs[i:i + group])
            commits += 1
        dt = time.perf_counter() - t
    finally:
        store.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(path + suffix)
            except FileNotFoundError:
                pass
    return commits / dt, rows / dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", help="directory to test in (default: a temporary one)")
    ap.add_argument("--rows", type=int, default=2000, help="records per case (default 2000)")
    args = ap.parse_args(argv)
    if args.rows < 1:
        ap.error("--rows must be at least 1")
    if args.dir is not None and not os.path.isdir(args.dir):
        ap.error("%s: not a directory" % args.dir)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="carebeacon-bench-") as d:
        print("store commit benchmark in %s, %d rows per case" % (args.dir or d, args.rows))
        for sync, group in CASES:
            cps, rps = run(d, sync, group, args.rows)
            label = "%s, %d row%s per commit" % (sync, group, "" if group == 1 else "s")
            print("  %-28s %9.0f commits/s %10.0f rows/s" % (label, cps, rps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
