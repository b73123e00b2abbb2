"""Two clients with one hub's identity (a cloned SD card, a copied key) against mosquitto: each
connect ends the other's connection (hub/uplink_takeover.py). They used to knock each other off
about once per minimum retry delay for ever, with two WARNING lines per round; now each logs it
once at ERROR, backs off to its maximum delay and says so in `problem` (the hub's status).

mosquitto 2.0.11 sends no DISCONNECT (0x8E) to the client it drops, under MQTT 5 either: the
uplink recognises a takeover from connections the broker closes soon after accepting them.
"""

from __future__ import annotations

import logging
import time

import pytest
from uplink_testing import Hub, config, wait_until

from hub.uplink_takeover import SESSION_TAKEN_OVER, Takeover

pytestmark = pytest.mark.timeout(60)

MAX_DELAY = 0.4
ERROR = "another client is using this hub's identity"


def uplink_lines(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= level and r.name.startswith("carebeacon.uplink")]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_two_hubs_with_one_identity_back_off_and_say_so(broker, caplog, protocol):
    caplog.set_level(logging.DEBUG, logger="carebeacon.uplink")
    cfg = dict(reconnect_min_delay=0.05, reconnect_max_delay=MAX_DELAY, protocol=protocol)
    with Hub(config(broker, **cfg)) as hub:
        hub.wait_connected()
        hub.uplink._takeover.stable_s = 1.5  # 3 x the maximum delay in the field: 180 s
        with Hub(config(broker, **cfg)) as clone:
            wait_until(lambda: hub.uplink.problem and clone.uplink.problem, what="the takeover")
            time.sleep(0.5)
            before = hub.uplink.stats["connects"] + clone.uplink.stats["connects"]
            time.sleep(3.0)
            rounds = hub.uplink.stats["connects"] + clone.uplink.stats["connects"] - before
            # backed off: a connect per MAX_DELAY at most, with margin (about 45 per 0.05 s before)
            assert 2 <= rounds <= 3.0 / MAX_DELAY + 4, rounds
            for h in (hub, clone):
                assert "another client uses this hub's identity (hub-a)" in h.uplink.problem
                assert h.uplink.identity_in_use  # the daemon raises fault 211 from it
            errors = uplink_lines(caplog, logging.ERROR)
            assert len(errors) == 2 and all(ERROR in e for e in errors), errors  # one per hub
            # each hub's first loss is an outage as any (logged with its end); the next ones
            # are at INFO: no WARNINGs per round (there were two)
            loud = uplink_lines(caplog, logging.WARNING)
            assert len(loud) == 6, loud
            assert sum("lost the platform broker" in m for m in loud) == 2, loud
            assert sum("reachable again" in m for m in loud) == 2, loud
        # the clone is gone: once a connection lasts `stable_s`, the problem is over
        wait_until(lambda: hub.uplink.problem is None, MAX_DELAY + 1.5 + 2, "the end of it")
        assert hub.uplink.connected
        assert not hub.uplink.identity_in_use  # and clears it (restoral)
        assert "the other client has stopped" in uplink_lines(caplog, logging.WARNING)[-1]


def test_brief_connections_in_a_row_are_outages_until_a_takeover_is_clear(broker, caplog):
    """The broker restarted right after each connect: the first loss is an outage (WARNING), a
    brief one after it is logged at INFO, and if the broker is gone then, the failed attempt
    says so (WARNING). Not yet a takeover."""
    caplog.set_level(logging.DEBUG, logger="carebeacon.uplink")
    with Hub(config(broker)) as hub:
        for n in (1, 2):
            wait_until(lambda n=n: len(hub.connects) == n, what=f"connect {n}")
            broker.stop()
            wait_until(lambda: hub.uplink.problem, what="the outage")
            time.sleep(0.3)
            broker.start()
        wait_until(lambda: len(hub.connects) == 3, what="the last reconnection")
        assert hub.uplink.problem is None
    lines = uplink_lines(caplog, logging.WARNING)
    assert len(lines) == 4, lines
    assert "lost the platform broker" in lines[0] and "reachable again after" in lines[1]
    assert "unreachable: [Errno 111] Connection refused" in lines[2]
    assert "reachable again after" in lines[3]
    assert any("(2 times in a row)" in m for m in uplink_lines(caplog, logging.INFO))


def test_a_disconnect_saying_session_taken_over_is_one_at_once(broker, caplog):
    """Brokers that say it (EMQX, HiveMQ: DISCONNECT 0x8E): no need to wait for a pattern."""
    caplog.set_level(logging.DEBUG, logger="carebeacon.uplink")
    t = Takeover(config(broker))
    t.connected(None)
    assert not t.lost(0x8B, said=True) and not t.active  # "server shutting down": an outage
    t.connected(None)
    assert t.lost(SESSION_TAKEN_OVER, said=True) and t.active
    assert "taken over 1 time(s)" in t.text
    t.connected(None)
    assert t.lost(SESSION_TAKEN_OVER, said=True)
    assert "taken over 2 time(s)" in t.text
    errors = uplink_lines(caplog, logging.ERROR)
    assert len(errors) == 1 and "DISCONNECT 0x8E" in errors[0]
