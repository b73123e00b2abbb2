"""Hub event refs are never reused, also when the disk failed before a restart (review
finding 3; docs/mqtt.md, "Events": the platform deduplicates on ref, so a reused ref is a
dropped event).

A hub event held in memory while the disk fails is published before its number is committed.
The next run starts above the last committed number, above the committed reservation, and at
or above the wall clock's Unix seconds at its start; a number ahead of the wall clock is only
taken under a committed reservation (hub/pipeline_hub_events.py, _next_hub_seq). Real store (its
connection failing like a dying SD card: store_testing.FailingConn), real codecs; a "crash"
abandons the running store without closing it, so nothing held in memory reaches the disk.
"""

from __future__ import annotations

import logging

from pipeline_testing import Home
from store_testing import FailingConn

from hub import contract, events as E
from hub.pipeline_hub_events import HUB_SEQ_BLOCK

RESTART_MS = 3_000  # systemd's RestartSec=3 (hub/systemd/carebeacon-hub.service), at least


def fail_disk(home: Home) -> FailingConn:
    conn = FailingConn(home.store._db)
    home.store._db = conn
    conn.failing = True
    return conn


def crash_and_restart(home: Home, conn: FailingConn | None, after_ms: int) -> None:
    """The process dies (what it held in memory is gone); it starts again `after_ms` later,
    on a disk that reads and writes again."""
    old = home.store
    home.clock.advance(after_ms)
    home.open()  # a new store on the same file: the old one is never closed nor flushed
    if conn is not None:
        conn.real.close()
    old._db = None


def inactivity_alarm(home: Home) -> str:
    return home.core.hub_event(
        E.H_INACTIVITY_ALARM, E.Mapped("automatic_alarm", cause="inactivity")
    )


def refs(home: Home) -> list[str]:
    out = []
    for _, m in home.pub.events:
        home.schemas.check("event", m)
        assert contract.parse_ref(m["ref"])[1:] == (None, m["seq"])
        if m["ref"] not in out:
            out.append(m["ref"])
    return out


def test_the_reviewers_sequence_a_store_fault_then_a_restart(home):
    """demo3: the store fault's ref, published and PUBACKed while the disk failed, came back
    after the restart on the next hub event, an inactivity alarm the platform then dropped."""
    conn = fail_disk(home)
    home.core.hub_fault(202, "cannot write the store (disk I/O error)")
    [(ref1, fault)] = home.pub.events
    assert fault["fault"]["name"] == "store" and not home.store.get(ref1).durable
    home.core.on_delivered(ref1)
    crash_and_restart(home, conn, RESTART_MS)
    ref2 = inactivity_alarm(home)
    assert ref2 != ref1
    assert contract.parse_ref(ref2)[2] > contract.parse_ref(ref1)[2]
    assert refs(home) == [ref1, ref2]


def test_numbers_ahead_of_the_clock_are_reserved_before_use(home):
    """Thirty hub events within one second (numbers run ahead of the wall clock), the disk
    then fails, and the hub restarts within that same second: still no ref repeats, because
    the numbers ahead of the clock were reserved while the disk could be written."""
    for i in range(20):
        home.core.hub_fault(207, f"power event {i}")
    conn = fail_disk(home)
    for i in range(10):
        home.core.hub_fault(207, f"power event during the disk fault {i}")
    assert home.core.counters["hub_seq_unreserved"] == 0
    before = refs(home)
    crash_and_restart(home, conn, 0)
    for i in range(5):
        home.core.hub_fault(207, f"after the restart {i}")
    after = refs(home)[len(before):]
    assert len(before) == 30 and len(after) == 5 and not set(before) & set(after)


def test_a_hub_whose_clock_is_not_set_numbers_in_reserved_blocks(home):
    """A Pi without RTC before NTP (1970): no wall-clock floor; every number is reserved in
    blocks first, so a crash during a disk fault still does not repeat one."""
    home.clock.wall = 86_400_000  # 1970-01-02
    home.clock.local = lambda: (0, 3, False)
    home.restart()
    inactivity_alarm(home)
    first = home.core.hub_seq
    conn = fail_disk(home)
    home.core.hub_fault(202, "cannot write the store (disk I/O error)")
    crash_and_restart(home, conn, RESTART_MS)
    inactivity_alarm(home)
    r = refs(home)
    assert len(r) == 3 and len(set(r)) == 3
    assert home.core.hub_seq == first + HUB_SEQ_BLOCK  # the run started at the reservation


def test_when_neither_the_disk_nor_the_clock_can_vouch_it_says_so(home, caplog):
    """The one case left: the disk fails while numbers are ahead of the clock and beyond the
    reservation. The event still goes out (an alarm is never held back); logged, counted."""
    home.clock.local = lambda: (0, 3, False)
    home.restart()
    fail_disk(home)
    caplog.set_level(logging.ERROR, logger="carebeacon.hub")
    ref = inactivity_alarm(home)
    assert ref in refs(home)
    assert home.core.counters["hub_seq_unreserved"] == 1
    assert any("could be reused after a restart" in r.getMessage() for r in caplog.records)
