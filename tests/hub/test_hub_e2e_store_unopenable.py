"""End to end: the real hub process whose store file cannot be opened keeps running: it
scans, forwards the alarm, acknowledges it DELIVERED once the platform has it (never STORED:
it is only in memory), reports a `store` fault, and writes everything to the file (with a
restoral) once the file opens.

The failure is real: data/hub.db is a symbolic link to itself, which the kernel refuses to
open (ELOOP), for root too. A read-only and a full filesystem are in test_store_unopenable.py
(they need a private mount namespace, which the hub process here does not run in).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/hub: the e2e helpers
from e2e_home import Home  # noqa: E402

from hil.sim.wait import wait_for  # noqa: E402
from shared import frame as F  # noqa: E402

BUTTON = 0xA1B2


def _store(platform, type_: str) -> list[dict]:
    return [e for e in platform.of_type(type_) if e["fault"]["name"] == "store"]


@pytest.mark.timeout(90)
def test_hub_with_an_unopenable_store_still_forwards_and_acknowledges(broker, tmp_path, schemas):
    home = Home(broker, tmp_path, start=False)
    try:
        db = home.hub.data / "hub.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(db.name, db)
        home.start_hub()
        platform, dev = home.platform, home.dev[BUTTON]

        fault = wait_for(lambda: _store(platform, "fault"), 15, "a store fault event")[0]
        schemas.check("event", fault)
        assert "cannot open the store" in fault["fault"]["text"]
        st = home.hub.wait_status(lambda s: s["store"]["fault"], 10, "the fault in status.json")
        assert "SQLITE_CANTOPEN" in st["store"]["fault"]

        seq = dev.send(F.T_SOS, target=F.ACK_DELIVERED)
        ev = platform.wait_event(dev.ref(seq))
        schemas.check("event", ev)
        assert ev["type"] == "manual_alarm"
        dev.wait_status(seq, F.ACK_DELIVERED, timeout=20)
        assert F.ACK_STORED not in dev.statuses(seq)  # it never was on disk
        assert home.hub.alive

        os.unlink(db)  # the file can be opened now
        wait_for(lambda: _store(platform, "restoral"), 15, "the store restoral event")
        home.hub.wait_status(lambda s: s["store"]["fault"] is None, 10, "the fault cleared")
        with sqlite3.connect(db) as c:
            rows = c.execute("SELECT ref, state FROM events WHERE device_id = ?",
                             (BUTTON,)).fetchall()
        assert rows == [(dev.ref(seq), 1)]  # on disk now, delivered
        assert home.hub.alive
    finally:
        home.close()
