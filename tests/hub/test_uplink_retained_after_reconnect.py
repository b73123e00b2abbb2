"""After a reconnect the broker keeps the hub's current retained state and availability, not a
stale one paho re-sends.

Review finding: a retained publish whose PUBACK was lost (the broker stored it) is re-sent by
paho after the next CONNACK, and paho does that after on_connect returns. The hub republished
its retained messages inside on_connect, so the stale copy went out after the fresh one and the
broker kept it: an availability or radio status changed during the outage reverted, and a
device removed meanwhile came back "online" after its unpairing had been confirmed. The hub now
republishes once paho's re-sends are queued (hub/uplink.py `_now_connected`).
"""

from __future__ import annotations

import json
import time

import pytest
from tcp_relay_testing import Relay
from uplink_testing import DEV, Client, Hub, config, wait_until

from hub import contract

pytestmark = pytest.mark.timeout(60)


def retained(broker, suffix: str) -> list:
    """What a new subscriber gets, retained, on the hub's topics ending with `suffix`."""
    c = Client(broker, cn="platform-2", subscribe=(f"{contract.PREFIX}/#",), persistent=False)
    try:
        c.wait_ready()
        time.sleep(0.5)  # retained messages come right after the subscription
        return [json.loads(m.payload) if m.payload else None for m in c.on(suffix) if m.retain]
    finally:
        c.close()


@pytest.fixture
def outage(broker):
    """(hub, lose_puback(send, suffix), reconnect()): `lose_puback` has the broker
    store `send()`'s message while its PUBACK never reaches the hub, then cuts the connection
    and refuses new ones; `reconnect()` lets the hub back in and waits for it."""
    relay = Relay(broker.host, broker.port)
    platform = Client(broker).wait_ready()
    with Hub(config(broker, port=relay.port)) as hub:
        hub.wait_connected()

        def lose_puback(send, suffix: str) -> None:
            time.sleep(0.5)  # every earlier PUBACK has reached the hub
            n = len(platform.on(suffix))
            relay.hold_down = True
            send()
            wait_until(lambda: len(platform.on(suffix)) > n, what="the message at the broker")
            relay.refuse = True
            relay.cut()
            wait_until(lambda: not hub.uplink.connected, what="the hub disconnected")
            relay.hold_down = False

        def reconnect() -> None:
            n = len(hub.connects)
            relay.refuse = False
            wait_until(lambda: len(hub.connects) > n and hub.uplink.connected, 10, "reconnect")
            time.sleep(1.0)  # paho's re-sends and the republish reach the broker

        try:
            yield hub, lose_puback, reconnect
        finally:
            platform.close()
            relay.close()


def test_an_availability_changed_in_the_outage_stays(broker, outage):
    hub, lose_puback, reconnect = outage
    hub.uplink.publish_availability(DEV, True)
    lose_puback(lambda: hub.uplink.publish_availability(DEV, False), "/availability")
    hub.uplink.publish_availability(DEV, True)  # the device is back during the outage
    reconnect()
    assert [a["state"] for a in retained(broker, "/availability")] == ["online"]


def test_a_device_removed_in_the_outage_stays_unpaired(broker, outage):
    hub, lose_puback, reconnect = outage
    lose_puback(lambda: hub.uplink.publish_availability(DEV, True), "/availability")
    confirmed: list[int] = []
    hub.uplink.forget_device(DEV, confirmed.append)  # `hub device remove` meanwhile
    reconnect()
    wait_until(lambda: confirmed, 10, "the unpairing confirmed")
    assert retained(broker, "/availability") == []


def test_a_radio_status_changed_in_the_outage_stays(broker, outage):
    hub, lose_puback, reconnect = outage
    hub.uplink.publish_state("ok")
    lose_puback(lambda: hub.uplink.publish_state("down", "adapter gone"), "/state")
    hub.uplink.publish_state("ok")  # the radio recovered while disconnected
    reconnect()
    assert [s["radio"]["status"] for s in retained(broker, "/state")] == ["ok"]
