"""The hub core and its uplink: nothing lost while the broker is down, a batch of PUBACKs in one
commit, no queue read without a backlog, a full window drained, a refused publish offered again."""

from __future__ import annotations

from pipeline_testing import Home

from hub.pipeline_outbox import PUMP_MAX_IN_FLIGHT
from shared import frame as F


def test_broker_down_keeps_everything_and_reoffers_on_connect(home):
    home.pub.connected = False
    seqs = [home.send(0xA1B2, F.T_SOS)[1] for _ in range(5)]
    assert not home.pub.events and len(home.store.pending()) == 5
    home.pub.connected = True
    home.core.on_connected(False, "5")
    assert [m["seq"] for m in home.published()] == seqs
    for ref, _ in list(home.pub.events):
        home.core.on_delivered(ref)
    assert home.store.pending() == []


def test_a_batch_of_pubacks_is_one_commit_seen_at_once(tmp_path, schemas):
    later: list = []
    home = Home(tmp_path, schemas, defer=later.append)  # the daemon passes loop.call_soon
    try:
        refs = [f"hub-a:0000a1b2:{home.send(0xA1B2, F.T_SOS)[1]}" for _ in range(3)]
        statements: list[str] = []
        home.store._db.set_trace_callback(statements.append)
        for ref in refs:
            home.core.on_delivered(ref)
        assert "COMMIT" not in statements and len(later) == 1  # one commit, queued
        assert home.store.pending() == [] and home.last_ack(0xA1B2).status == F.ACK_DELIVERED
        home.core.on_connected(True, "5")  # nothing delivered is offered again meanwhile
        assert [r for r, _ in home.pub.events] == refs
        later.pop()()
        assert statements.count("COMMIT") == 1
        home.restart()
        assert home.store.pending() == []  # on disk
    finally:
        home.store.close()


def test_without_a_backlog_a_new_event_is_published_without_reading_the_queue(home):
    statements: list[str] = []
    home.store._db.set_trace_callback(statements.append)
    pending_reads = lambda: sum("state = 0" in s for s in statements)  # noqa: E731
    home.send(0xA1B2, F.T_SOS)  # a fresh hub first reads what an earlier run left
    n = pending_reads()
    for _ in range(3):
        home.send(0xA1B2, F.T_SOS)
        home.core.on_delivered(home.pub.events[-1][0])
    assert pending_reads() == n and len(home.published("manual_alarm")) == 4
    home.core.on_disconnected("gone")
    home.pub.connected = False
    _, seq = home.send(0xA1B2, F.T_SOS)  # waits in the store...
    home.pub.connected = True
    home.core.on_connected(True, "5")  # ...and is found there
    assert home.pub.events[-1][0] == f"hub-a:0000a1b2:{seq}" and pending_reads() > n


def test_a_full_uplink_window_leaves_a_backlog_that_drains(home):
    refs = [
        f"hub-a:0000a1b2:{home.send(0xA1B2, F.T_SOS)[1]}" for _ in range(PUMP_MAX_IN_FLIGHT + 5)
    ]
    assert [r for r, _ in home.pub.events] == refs[:PUMP_MAX_IN_FLIGHT]
    for ref in refs[:PUMP_MAX_IN_FLIGHT]:
        home.core.on_delivered(ref)
    assert [r for r, _ in home.pub.events] == refs  # the rest went as the window freed
    assert [e.ref for e in home.store.pending()] == refs[PUMP_MAX_IN_FLIGHT:]
    for ref in refs[PUMP_MAX_IN_FLIGHT:]:
        home.core.on_delivered(ref)
    assert home.store.pending() == [] and not home.core.backlog


def test_a_refused_publish_stays_pending_and_is_offered_again(home):
    home.send(0xA1B2, F.T_SOS)
    ref = home.pub.events[0][0]
    home.core.on_rejected(ref, "0x87 Not authorized")
    assert home.published("fault")[0]["fault"]["name"] == "uplink_rejected"
    n = len(home.pub.events)
    home.core.tick()
    assert len(home.pub.events) == n  # not hammered at once
    home.clock.advance(61_000)
    home.core.tick()
    assert [r for r, _ in home.pub.events].count(ref) == 2
