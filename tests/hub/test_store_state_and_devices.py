"""The store's state blobs (replay windows) and device table: durable, written with the next
commit."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_testing import HUB, T0, rec, side_conn

from hub.store import Store
from shared.replay import R_DUPLICATE, ReplayWindow


def test_state_blobs_are_durable(path: Path):
    w = ReplayWindow()
    for q in (1, 2, 5):
        w.accept(q)
    with Store(path, hub_id=HUB) as s:
        assert s.get_state("replay:1") is None
        assert s.put_state("replay:1", w.to_bytes()) is True
        with side_conn(path) as c:
            assert c.execute("SELECT COUNT(*) FROM state").fetchone()[0] == 1
        with pytest.raises(ValueError, match="must be bytes"):
            s.put_state("replay:1", "text")  # type: ignore[arg-type]
    with Store(path, hub_id=HUB) as s:
        back = ReplayWindow.from_bytes(s.get_state("replay:1"))
        assert back.to_bytes() == w.to_bytes() and back.check(5) == R_DUPLICATE


def test_devices_are_written_with_the_next_commit(path: Path):
    with Store(path, hub_id=HUB) as s:
        s.touch_device(7, last_seen_ms=T0, rssi=-70)
        s.touch_device(7, battery=81)
        assert s.devices() == [
            {"device_id": 7, "last_seen_ms": T0, "rssi": -70, "battery": 81, "availability": None}
        ]
        with side_conn(path) as c:
            assert c.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 0  # no own fsync
        s.add(rec(7, 1))
        with side_conn(path) as c:
            assert c.execute("SELECT battery FROM devices").fetchall() == [(81,)]
        s.touch_device(7, availability="offline")
        with pytest.raises(ValueError, match="unknown fields colour"):
            s.touch_device(7, colour=1)
    with Store(path, hub_id=HUB) as s:  # close() wrote the last touch
        assert s.devices()[0]["availability"] == "offline" and s.devices()[0]["rssi"] == -70
