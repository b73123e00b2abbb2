"""End to end, the real hub process and a real mosquitto: a device removed with `hub device
remove` is announced unpaired once the hub is connected after its restart, its retained
availability cleared (an empty retained payload, docs/mqtt.md): a console subscribing later
no longer shows it. The duty is kept in the store until the broker confirms it, through
restarts while the platform is down; a device added back before that keeps its availability
(hub/unpaired.py)."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/hub: the e2e helpers
from e2e_air import HUB  # noqa: E402
from e2e_home import Home  # noqa: E402

from hil.sim.wait import wait_for  # noqa: E402
from shared import frame as F  # noqa: E402

BUTTON, PIR = 0xA1B2, 0xC3D4


@pytest.fixture
def home(broker, tmp_path):
    h = Home(broker, tmp_path)
    yield h
    h.close()


def retained_availability(home: Home) -> dict[str, str]:
    """What a console subscribing now gets: device id -> retained availability state. The
    hub's retained state is subscribed after the availability (one SUBSCRIBE): the broker
    sends retained messages subscription by subscription, so once the state is in, every
    retained availability is too."""
    base = f"carebeacon/v1/{home.broker.county}/{HUB}"
    got: dict[str, str] = {}
    state = threading.Event()
    tls = home.broker.tls("platform-2")  # not the Platform's identity: no session takeover
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="platform-2",
                    protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=tls.ca, certfile=tls.cert, keyfile=tls.key)

    def message(cl, userdata, m):
        if m.topic.endswith("/state"):
            state.set()
        elif m.retain:  # (an empty retained payload is never kept, so never sent here)
            got[m.topic.split("/")[-2]] = json.loads(m.payload)["state"]

    c.on_connect = lambda cl, *a: cl.subscribe(
        [(f"{base}/device/+/availability", 1), (f"{base}/state", 1)])
    c.on_message = message
    c.connect(home.broker.host, home.broker.port, 30, clean_start=True)
    c.loop_start()
    try:
        assert state.wait(10), "no retained state of the hub"
    finally:
        c.disconnect()
        c.loop_stop()
    return got


def pending(home: Home) -> list[str] | None:
    """The store's list of devices still to announce unpaired (None: never written)."""
    uri = f"{(home.hub.data / 'hub.db').absolute().as_uri()}?mode=ro"
    db = sqlite3.connect(uri, uri=True)
    try:
        row = db.execute("SELECT value FROM state WHERE name = 'unpaired_pending'").fetchone()
    finally:
        db.close()
    return None if row is None else json.loads(bytes(row[0]))


def both_online(home: Home) -> None:
    """The button and the PIR heard: the hub publishes their availability, retained."""
    for dev in (BUTTON, PIR):
        seq = home.dev[dev].send(F.T_HEARTBEAT, target=F.ACK_STORED)
        home.dev[dev].wait_status(seq, F.ACK_STORED)
    wait_for(lambda: home.platform.availability == {"0000a1b2": True, "0000c3d4": True}, 10,
             "both devices online at the platform")
    assert retained_availability(home) == {"0000a1b2": "online", "0000c3d4": "online"}


def answered(home: Home, tx: str) -> None:
    """A request answered: the hub's response follows, on the same connection, anything it
    published on connecting (an unpairing included): a mark that those reached the broker."""
    resp = home.platform.request_and_wait("list_devices", {"v": 1, "transaction": tx}, hub=HUB)
    assert resp["result"] == 0, resp


def remove_pir(home: Home) -> None:
    r = home.hub.cli("device", "remove", "0000c3d4", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr


def restart_offline(home: Home) -> None:
    """Stop the hub and start it again while the broker is down; until it scans."""
    home.hub.stop()
    home.hub.start().wait_ready()
    assert not home.hub.status()["uplink"]["connected"]


@pytest.mark.timeout(120)
def test_a_removed_device_is_unpaired_at_the_restart_and_the_others_stay(home):
    both_online(home)
    remove_pir(home)
    home.hub.stop()
    home.start_hub()
    wait_for(lambda: home.platform.unpaired == ["0000c3d4"], 10,
             "the platform told the PIR is unpaired")
    assert retained_availability(home) == {"0000a1b2": "online"}
    wait_for(lambda: pending(home) == [], 10, "the broker's PUBACK recorded")
    home.hub.stop()  # confirmed: announced no more
    home.start_hub()
    answered(home, "ld-1")
    assert home.platform.unpaired == ["0000c3d4"]


@pytest.mark.timeout(120)
def test_a_removal_while_the_platform_is_down_is_announced_after_restarts(home):
    """forget_gone reports a removal at the first start only: the second start knows it
    from the store."""
    both_online(home)
    home.broker.stop()  # graceful: the retained messages are kept
    remove_pir(home)
    restart_offline(home)
    assert pending(home) == ["0000c3d4"]
    restart_offline(home)
    assert pending(home) == ["0000c3d4"]
    home.broker.start()
    wait_for(lambda: "0000c3d4" in home.platform.unpaired, 20, "the platform told")
    assert retained_availability(home) == {"0000a1b2": "online"}
    wait_for(lambda: pending(home) == [], 10, "the broker's PUBACK recorded")


@pytest.mark.timeout(120)
def test_a_device_added_back_before_the_hub_connected_keeps_its_availability(home):
    both_online(home)
    home.broker.stop()
    remove_pir(home)
    restart_offline(home)
    assert pending(home) == ["0000c3d4"]
    key = next(s.key for s in home.specs if s.id == PIR)  # back with its own key
    r = home.hub.cli("device", "add", "0000c3d4", "--kind", "pir", "--key", key.hex())
    assert r.returncode == 0, r.stdout + r.stderr
    restart_offline(home)
    n = len(home.platform.states)
    home.broker.start()
    home.platform.wait_connected()
    home.platform.wait_state(lambda s: s["reason"] == "connected", after=n)
    answered(home, "ld-1")
    assert retained_availability(home) == {"0000a1b2": "online", "0000c3d4": "online"}
    assert home.platform.unpaired == [] and pending(home) == []
    seq = home.dev[PIR].send(F.T_HEARTBEAT, target=F.ACK_STORED)  # and it is served
    home.dev[PIR].wait_status(seq, F.ACK_STORED)
