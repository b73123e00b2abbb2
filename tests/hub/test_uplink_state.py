"""The hub's retained state and availability: the last will when the hub dies, "shutdown" on
an orderly close, retained availability republished when the broker lost it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from uplink_testing import DEV, Client, Hub, P, check_all, config, wait_until

pytestmark = pytest.mark.timeout(30)
REPO = Path(__file__).resolve().parents[2]


HUB_SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
from hub.uplink import Uplink, UplinkConfig
u = Uplink(UplinkConfig(**{cfg!r}), on_connected=lambda sp, p: print("connected", flush=True))
u.start()
time.sleep(60)
"""


def test_last_will_when_hub_dies(broker, schemas):
    cfg = config(broker, "hub-b").__dict__
    proc = subprocess.Popen(
        [sys.executable, "-c", HUB_SCRIPT.format(repo=str(REPO), cfg=cfg)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "connected"
        platform = Client(broker, subscribe=(f"{P}/hub-b/state",)).wait_ready()
        wait_until(lambda: platform.on("/state"), what="retained online state")
        assert json.loads(platform.on("/state")[0].payload)["state"] == "online"
        proc.send_signal(
            signal.SIGKILL
        )  # the hub dies without DISCONNECT: the broker publishes the will
        wait_until(lambda: len(platform.on("/state")) == 2, what="last will")
        will = json.loads(platform.on("/state")[1].payload)
        assert will["state"] == "offline" and will["reason"] == "connection_lost"
        late = Client(
            broker, "platform-2", subscribe=(f"{P}/+/state",), persistent=False
        ).wait_ready()
        wait_until(lambda: late.on("/state"), what="retained will")
        assert (
            late.on("/state")[0].retain
            and json.loads(late.on("/state")[0].payload)["state"] == "offline"
        )
        check_all(schemas, platform.messages + late.messages)
        platform.close()
        late.close()
    finally:
        proc.kill()
        proc.wait()


def test_orderly_close_says_shutdown(broker):
    platform = Client(broker, subscribe=(f"{P}/hub-a/state",)).wait_ready()
    with Hub(config(broker)) as hub:
        hub.wait_connected()
        hub.uplink.publish_state("degraded", "adapter resets: 3 in 10 min")
        wait_until(lambda: len(platform.on("/state")) == 2, what="state update")
    wait_until(lambda: len(platform.on("/state")) == 3, what="shutdown state")
    states = [json.loads(m.payload) for m in platform.on("/state")]
    assert [(s["state"], s["reason"]) for s in states] == [
        ("online", "connected"),
        ("online", "update"),
        ("offline", "shutdown"),
    ]
    assert states[1]["radio"] == {"status": "degraded", "detail": "adapter resets: 3 in 10 min"}
    time.sleep(0.2)
    assert len(platform.on("/state")) == 3  # a DISCONNECT discards the will
    platform.close()


def test_retained_availability_survives_and_is_republished(broker, schemas):
    with Hub(config(broker)) as hub:
        hub.wait_connected()
        hub.uplink.publish_availability(DEV, True)
        hub.uplink.publish_availability(0x00000007, True)
        hub.uplink.publish_availability(0x00000007, False)
        hub.uplink.forget_device(0x00000007)
        time.sleep(0.2)
        broker.stop()  # graceful: retained messages are saved...
        for f in (broker.dir / "var").glob("*.db"):
            f.unlink()  # ...and lost, as on a broker without persistence: the hub republishes
        broker.start()
        wait_until(lambda: len(hub.connects) == 2, what="reconnect")
        time.sleep(0.2)
        late = Client(broker, subscribe=(f"{P}/hub-a/#",), persistent=False).wait_ready()
        wait_until(lambda: late.on("/availability") and late.on("/state"), what="retained messages")
        avail = [json.loads(m.payload) for m in late.on("/availability")]
        assert [(a["device"], a["state"]) for a in avail] == [("1a2b3c4d", "online")]
        assert json.loads(late.on("/state")[0].payload)["state"] == "online"
        check_all(schemas, late.messages)
        late.close()
