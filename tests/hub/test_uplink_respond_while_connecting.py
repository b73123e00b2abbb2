"""Publishing while a connection attempt is under way: nothing is lost and the attempt connects.

The attempt runs paho's `reconnect()` in a thread of its own (hub/uplink_loop.py) while the
hub's loop goes on. Each case holds the attempt thread at one point (the TLS socket made but not
stored by paho; stored, CONNECT not yet queued; reconnect() returned: the Gate of
test_uplink_close_race.py), publishes from the loop, lets the attempt go on and looks at what
the platform got and at the broker's log.

- `Uplink.respond` holds a response made while not connected and sends it after the CONNACK
  (hub/uplink_requests.py). Handed to paho at "stored" it used to be queued before CONNECT and
  never written: the connection hung until the keepalive ended it.
- Whatever else reaches paho there (a publish made on the loop, as a future code path might)
  is written once the loop takes the socket (`Driver._register`), not left until the keepalive.
"""

from __future__ import annotations

import json
import threading

import pytest
from test_uplink_close_race import Gate
from uplink_testing import Client, Hub, P, config, wait_until

from hub import contract

pytestmark = pytest.mark.timeout(60)

POINTS = ["made", "stored", "done"]


def hub_connections(log: str) -> int:
    """TCP connections the broker took (the platform's came before `log` was cut)."""
    return log.count("New connection from 127.0.0.1")


@pytest.mark.parametrize("point", POINTS)
def test_a_response_made_during_an_attempt_arrives_after_it_connects(broker, point):
    platform = Client(broker, subscribe=(f"{P}/+/response/+",)).wait_ready()
    before = len(broker.log())
    request = contract.Request(kind="list_devices", transaction="while-connecting")
    # keepalive 30 s: a connection left hanging would outlast the test's waits
    with Gate(point) as gate, Hub(config(broker, keepalive=30)) as hub:
        assert gate.held.wait(5), "the attempt never reached the point"
        assert not hub.uplink.connected
        hub.uplink.respond(request, contract.Result.OK, data={"devices": []})
        gate.release.set()
        wait_until(lambda: platform.messages, 10, "the response at the platform")
        hub.wait_connected()
        bodies = [json.loads(m.payload) for m in platform.messages]
        assert [b["transaction"] for b in bodies] == ["while-connecting"]
        assert bodies[0]["data"] == {"devices": []}
        assert hub.uplink.stats["connects"] == 1
        assert hub_connections(broker.log()[before:]) == 1, broker.log()[before:]


@pytest.mark.parametrize("point", POINTS)
def test_a_publish_reaching_paho_during_an_attempt_does_not_hang_the_connection(broker, point):
    platform = Client(broker, subscribe=(f"{P}/+/state",)).wait_ready()
    topic = contract.state_topic("test-county", "hub-a")
    with Gate(point) as gate, Hub(config(broker, keepalive=30)) as hub:
        assert gate.held.wait(5), "the attempt never reached the point"
        uplink = hub.uplink
        published = threading.Event()

        def probe() -> None:  # on the loop, as every paho call of the hub's
            uplink._client.publish(topic, b'{"probe": 1}', qos=1)
            published.set()

        uplink._on_loop(probe)
        assert published.wait(5), "the loop did not run the publish"
        gate.release.set()
        # hung, it would wait for the 30 s keepalive; a refused first try is retried at once
        wait_until(lambda: uplink.connected, 15, "connected well before the keepalive")
        wait_until(lambda: any(m.payload == b'{"probe": 1}' for m in platform.messages), 10,
                   "the probe published")
