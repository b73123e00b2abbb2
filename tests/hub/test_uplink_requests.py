"""Platform requests through the uplink and the hub's responses, valid and refused; a retained
request is not replayed."""

from __future__ import annotations

import json
import time

import pytest
from uplink_testing import DEV, Client, Hub, P, check_all, config, wait_until

from hub import contract

pytestmark = pytest.mark.timeout(30)


def test_requests_and_responses(broker, schemas):
    platform = Client(broker, subscribe=(f"{P}/+/response/+",)).wait_ready()
    with Hub(config(broker)) as hub:
        hub.wait_connected()
        good = {
            "ack": {"transaction": "t1", "ref": "hub-a:1a2b3c4d:5", "operator": "desk 3"},
            "settings": {"transaction": 2, "settings": {"heartbeat_interval": 30}},
            "identify": {"transaction": "t3", "device": "1a2b3c4d"},
            "test": {"transaction": "t4", "device": "1a2b3c4d"},
            "list_devices": {"transaction": "t5"},
        }
        for kind, body in good.items():
            platform.publish(f"{P}/hub-a/request/{kind}", json.dumps(body))
        wait_until(lambda: len(hub.requests) == 5, what="requests")
        for req in hub.requests:
            data = None
            if req.kind == "list_devices":
                data = {
                    "devices": [
                        contract.device_entry(
                            contract.Device(DEV, "button", "bedside", "bedroom"), True
                        )
                    ]
                }
            hub.uplink.respond(
                req,
                contract.Result.OK if req.kind != "settings" else contract.Result.HOLD,
                data=data,
            )
        bad = [
            ("ack", b"{not json"),
            ("ack", b'{"ref":"hub-a:1a2b3c4d:5"}'),
            ("reboot", b'{"transaction":"x"}'),
            ("settings", b'{"transaction":"y","settings":{"heartbeat_interval":0}}'),
            ("ack", b'{"transaction":"z","ref":"hub-b:1a2b3c4d:5"}'),
            ("test", b'{"transaction":"w"}'),
            ("list_devices", b" " * 5000),
        ]
        for kind, payload in bad:
            platform.publish(f"{P}/hub-a/request/{kind}", payload)
        platform.publish(
            f"{P}/hub-a/request/ack", b'{"transaction":"r","ref":"hub-a:1a2b3c4d:9"}', retain=True
        )
        wait_until(lambda: len(platform.messages) == 12, what="12 responses")
        time.sleep(0.2)
        assert (
            len(hub.requests) == 6
        )  # the retained one was also delivered live (retain flag cleared)...
    with Hub(config(broker)) as again:  # ...but its retained replay on re-subscribe is ignored
        again.wait_connected()
        time.sleep(0.3)
        assert again.requests == []
    got = sorted(
        (
            str(json.loads(m.payload)["transaction"]),
            m.topic.rsplit("/", 1)[1],
            json.loads(m.payload)["result"],
        )
        for m in platform.messages
    )
    assert got == sorted(
        [
            ("t1", "ack", 0),
            ("2", "settings", 4),
            ("t3", "identify", 0),
            ("t4", "test", 0),
            ("t5", "list_devices", 0),
            ("None", "ack", 2),
            ("None", "ack", 7),
            ("x", "error", 5),
            ("y", "settings", 3),
            ("z", "ack", 3),
            ("w", "test", 7),
            ("None", "list_devices", 1),
        ]
    )
    check_all(schemas, platform.messages)
    platform.close()


def test_held_responses_keep_the_newest_and_name_what_they_drop(caplog):
    from hub.uplink_requests import HELD_MAX, HeldResponses

    held = HeldResponses()
    for i in range(HELD_MAX + 2):
        held.hold(f"t/{i}", b"%d" % i)
    dropped = [r.getMessage() for r in caplog.records if "dropping" in r.getMessage()]
    assert len(dropped) == 2 and "t/0" in dropped[0] and "t/1" in dropped[1]
    taken = held.take()
    assert [t for t, _ in taken] == [f"t/{i}" for i in range(2, HELD_MAX + 2)]
    assert held.take() == []
