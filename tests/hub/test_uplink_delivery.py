"""Uplink delivery: delivered only on PUBACK, not without a subscriber, everything queued while
the broker is down goes out, an outage mid-stream loses nothing."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from uplink_testing import DEV, Client, Hub, check_all, config, event, wait_until

from hub import contract

pytestmark = pytest.mark.timeout(30)


def test_delivered_only_on_puback(broker, schemas):
    platform = Client(broker).wait_ready()
    with Hub(config(broker)) as hub:
        hub.wait_connected()
        broker.pause()  # the TCP connection stays up; nothing is acknowledged
        try:
            assert hub.add(*event(1))  # sent on the wire...
            time.sleep(0.4)
            assert hub.delivered == [] and list(hub.pending) == [
                event(1)[0]
            ]  # ...but not delivered
        finally:
            broker.resume()
        wait_until(lambda: hub.delivered == [event(1)[0]], what="PUBACK after resume")
        refs = [hub.add(*event(n)) for n in range(2, 102)]
        assert all(refs)
        wait_until(lambda: len(hub.delivered) == 101, what="100 PUBACKs")
        wait_until(lambda: len(platform.refs()) == 101, what="platform")
        # one connection, one device: the platform sees them in publish order
        assert [contract.parse_ref(r)[2] for r in platform.refs()] == list(range(1, 102))
        assert hub.uplink.stats["delivered"] >= 101 and hub.rejected == []
    check_all(schemas, platform.messages)
    platform.close()


def test_no_matching_subscribers_is_not_delivery(broker):
    with Hub(
        config(broker)
    ) as hub:  # nobody subscribed: mosquitto answers PUBACK 0x10 and drops it
        hub.wait_connected()
        hub.add(*event(1))
        wait_until(lambda: hub.rejected, what="PUBACK")
        assert hub.rejected[0][1].code == 0x10 and hub.delivered == [] and hub.pending
        platform = Client(broker).wait_ready()
        hub.reoffer()  # the hub retries pending events (after a fault / on a timer)
        wait_until(lambda: hub.delivered == [event(1)[0]], what="delivery once subscribed")
        platform.close()
    with Hub(config(broker, "hub-b", require_subscriber=False)) as lax:
        lax.wait_connected()
        lax.add(*event(1, "hub-b"))
        wait_until(lambda: lax.delivered, what="PUBACK")


def test_broker_down_at_start(broker, caplog):
    platform = Client(
        broker
    ).wait_ready()  # a persistent session, kept by the broker while the platform is away
    platform.close()
    broker.stop()
    caplog.set_level(logging.DEBUG, logger="carebeacon.uplink")
    with Hub(config(broker)) as hub:
        sent = [hub.add(*event(n)) for n in range(1, 21)]
        assert not any(sent)  # not connected: nothing sent, everything pending
        time.sleep(0.3)
        broker.start()
        wait_until(lambda: not hub.pending, what="all delivered after the broker came up")
        assert hub.connects and hub.rejected == []
    # The outage is logged once with its reason, and its end once; each retry only at DEBUG
    # (paho's own "Client is not connected" ERROR per retry included).
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 2, loud
    assert "unreachable: [Errno 111] Connection refused" in loud[0]
    assert "reachable again after" in loud[1] and "attempts failed: " in loud[1]
    retries = [r for r in caplog.records if "still unreachable" in r.getMessage()]
    assert retries and all(r.levelno == logging.DEBUG for r in retries)
    platform = Client(broker).wait_ready()
    wait_until(lambda: len(set(platform.refs())) == 20, what="queued events reach the platform")
    platform.close()


def test_outage_mid_stream_exactly_once_after_dedup(broker, schemas, caplog):
    caplog.set_level(logging.DEBUG, logger="carebeacon.uplink")
    platform = Client(broker).wait_ready()
    n = 300
    with Hub(config(broker)) as hub:
        hub.wait_connected()

        def produce():
            for i in range(1, n + 1):
                hub.add(*event(i))
                time.sleep(0.002)

        producer = threading.Thread(target=produce)
        producer.start()
        wait_until(lambda: len(hub.delivered) >= 80, what="first deliveries")
        broker.stop()
        time.sleep(0.3)
        broker.start()
        producer.join()
        wait_until(lambda: not hub.pending, timeout=15, what="everything delivered")
        assert len(hub.disconnects) >= 1 and len(hub.connects) >= 2
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    lost = sum("lost the platform broker" in m for m in loud)  # once per outage, however
    assert lost >= 1 and sum("reachable again" in m for m in loud) == lost, loud  # many retries
    assert not any(
        r.name == "carebeacon.uplink.paho" and r.levelno >= logging.WARNING for r in caplog.records
    )  # its per-retry "Client is not connected"
    want = {contract.make_ref("hub-a", DEV, i) for i in range(1, n + 1)}
    wait_until(lambda: set(platform.refs()) == want, timeout=10, what="platform has every ref")
    raw = platform.refs()
    dupes = len(raw) - len(set(raw))
    print(f"outage: {len(raw)} raw deliveries, {dupes} duplicates, {len(want)} unique")
    assert len(set(raw)) == n and dupes >= 0
    check_all(schemas, platform.messages[:50])
    platform.close()
