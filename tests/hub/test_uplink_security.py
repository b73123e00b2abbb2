"""Uplink security against mosquitto: a hub is confined to its own subtree, bad client
certificates are refused, a client id cannot take over another hub."""

from __future__ import annotations

import time

import pytest
from uplink_testing import Client, Hub, P, check_all, config, event, wait_until

from hub import contract

pytestmark = pytest.mark.timeout(30)


def test_hub_confined_to_its_subtree(broker, schemas):
    platform = Client(broker).wait_ready()
    with Hub(config(broker)) as hub:
        hub.wait_connected()
        own = hub.add(*event(1))
        other = event(2, hub_id="hub-b")
        assert own
        hub.pending[other[0]] = contract.encode(other[1])
        hub.uplink.publish_event(other[0], f"{P}/hub-b/event", contract.encode(other[1]))
        wait_until(lambda: hub.delivered and hub.rejected, what="PUBACKs")
        assert hub.delivered == [event(1)[0]]
        ((ref, why),) = hub.rejected
        assert ref == other[0] and why.code == 0x87 and "authori" in why.name.lower()
        wait_until(lambda: platform.refs() == [event(1)[0]], what="platform event")
        assert (
            other[0] not in hub.delivered and other[0] in hub.pending
        )  # stays pending: hub raises a fault
    # By hand, with hub-a's certificate: another hub's requests, or responses: nothing arrives.
    spy = Client(
        broker,
        "hub-a",
        subscribe=(f"{P}/hub-b/request/+", f"{P}/+/response/#", "#"),
        persistent=False,
    ).wait_ready()
    platform.publish(f"{P}/hub-b/request/list_devices", b'{"transaction":"t"}')
    platform.publish(f"{P}/hub-a/response/ack", b"{}")
    mid = spy.publish(
        f"{P}/hub-a/request/ack", b'{"transaction":"forged","ref":"hub-a:1a2b3c4d:1"}'
    )
    wait_until(lambda: mid in spy.acks, what="spy PUBACK")
    assert spy.acks[mid] == 0x87  # a hub cannot forge requests, not even to itself
    time.sleep(0.3)
    assert spy.messages == []
    check_all(schemas, platform.on("/event") + platform.on("/state"))  # what the hub sent
    spy.close()
    platform.close()


@pytest.mark.parametrize("case", ["other_ca", "no_certificate"])
def test_bad_client_certificate_refused(broker, case):
    f = broker.rogue if case == "other_ca" else broker.tls("hub-a")
    cfg = config(broker, files=f)
    if case == "no_certificate":
        cfg.cert_file = cfg.key_file = None
    with Hub(cfg) as hub:
        time.sleep(1.0)  # several attempts at 0.05..0.3 s
        assert hub.connects == [] and not hub.uplink.connected
        assert not hub.add(*event(1))
    assert " as hub-a " not in broker.log()  # mosquitto never accepted the client


def test_client_id_cannot_take_over_another_hub(broker):
    with Hub(config(broker)) as hub:
        hub.wait_connected()
        intruder = Client(
            broker, "hub-b", subscribe=(), persistent=False, client_id="hub-a"
        ).wait_ready()
        time.sleep(0.3)
        assert (
            hub.disconnects == [] and hub.uplink.connected
        )  # use_username_as_clientid: it became "hub-b"
        intruder.close()
