"""End to end: the real hub process (`python -m hub run`) between the BlueZ double (bleak's real
BlueZ backend on a private system bus) and a real mosquitto (mutual TLS, ACL); devices that
speak the radio protocol with shared.frame and shared.retry; the platform as an MQTT client.

This file: the alarm's whole climb, refused frames, radio loss. Outages and delivery:
test_hub_e2e_outage.py; kill -9: test_hub_e2e_crash.py; request fuzzing: test_hub_e2e_fuzz.py.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/hub: the e2e helpers
from e2e_air import HUB  # noqa: E402
from e2e_home import Home  # noqa: E402

from hil.sim.platform import retained  # noqa: E402
from hil.sim.wait import wait_for  # noqa: E402
from shared import frame as F  # noqa: E402

BUTTON, PIR = 0xA1B2, 0xC3D4


def retained_state(home: Home) -> dict:
    """The hub's state as a client subscribing now gets it (the retained message)."""
    b = home.broker
    return retained(b.host, b.port, f"carebeacon/v1/{b.county}/{HUB}/state",
                    tls=b.tls("platform-2"))


@pytest.fixture
def home(broker, tmp_path):
    h = Home(broker, tmp_path)
    yield h
    h.close()


@pytest.mark.timeout(60)
def test_sos_climbs_stored_delivered_help_and_status_shows_the_device(home, schemas):
    dev, platform = home.dev[BUTTON], home.platform
    t0 = time.monotonic()
    seq = dev.send(F.T_SOS, target=F.ACK_HELP)
    dev.wait_status(seq, F.ACK_STORED)
    assert dev.statuses(seq)[0] == F.ACK_STORED  # STORED is the first thing the elder hears
    stored_s = time.monotonic() - t0

    ev = platform.wait_event(dev.ref(seq))
    schemas.check("event", ev)
    assert ev["type"] == "manual_alarm" and ev["seq"] == seq and ev["hub"] == HUB
    assert ev["device"] == {"id": f"{BUTTON:08x}", "kind": "button", "location": "by the bed",
                            "room": "bedroom"}
    assert ev["household"] == "hh-e2e" and ev["rssi"] == dev.rssi

    dev.wait_status(seq, F.ACK_DELIVERED)
    # ...and a retransmission made after that still hears DELIVERED (the duplicate path)
    delivered_at = next(t for t, q, s in dev.acks if q == seq and s == F.ACK_DELIVERED)
    wait_for(lambda: any(t > delivered_at for t in dev.msgs[seq].sent), 10, "a retry")
    retry_at = next(t for t in dev.msgs[seq].sent if t > delivered_at)
    wait_for(lambda: any(t > retry_at and q == seq and s == F.ACK_DELIVERED
                         for t, q, s in dev.acks), 10, "DELIVERED answering a retry")
    assert dev.msgs[seq].retry.active  # an SOS is not over before HELP

    resp = platform.request_and_wait("ack", {"transaction": "op-1", "ref": dev.ref(seq),
                                             "operator": "desk 3"}, hub=HUB)
    schemas.check("response-ack", {k: v for k, v in resp.items() if k != "_kind"})
    assert (resp["_kind"], resp["transaction"], resp["result"]) == ("ack", "op-1", 0)
    dev.wait_status(seq, F.ACK_HELP)
    assert not dev.msgs[seq].retry.active  # the elder knows: help is on the way
    n = len(dev.statuses(seq))
    dev.transmit_again(seq)  # a late retransmission is answered with HELP too
    wait_for(lambda: len(dev.statuses(seq)) > n, 10, "the answer to a late retransmission")
    assert dev.statuses(seq)[n:] == [F.ACK_HELP]
    assert dev.bad_acks == 0 and dev.stale_acks == 0
    assert list(platform.events) == [dev.ref(seq)], "one event, no hub faults"
    print(f"SOS -> STORED in {stored_s * 1000:.0f} ms")

    st = home.hub.wait_status(lambda s: s["devices"][0]["availability"] == "online")
    out = home.hub.cli("status", "--json")
    assert out.returncode == 0, out.stdout + out.stderr  # running, connected, radio ok, no fault
    st = json.loads(out.stdout)
    button = next(d for d in st["devices"] if d["id"] == f"{BUTTON:08x}")
    assert button["availability"] == "online" and button["rssi"] == dev.rssi
    assert st["uplink"]["connected"] and st["radio"]["status"] == "ok"
    assert st["pending"] == {"events": 0, "alarms": []} and not st["faults"]
    assert st["inactivity"]["coverage"] is None  # a new hub: measured after 3 whole days
    assert "sensor coverage: not yet: needs 3 whole days measured" in home.hub.cli("status").stdout


@pytest.mark.timeout(60)
def test_forged_and_unknown_frames_never_reach_the_platform(home, schemas):
    button = home.dev[BUTTON]
    forger = home.air.device(BUTTON, os.urandom(16), address="C8:2E:66:66:66:66")
    stranger = home.air.device(0x0BADCAFE, os.urandom(16), address="C8:2E:0B:AD:CA:FE",
                               rssi=-81)
    forger.send_many(10, F.T_SOS, retries=False)  # 10 = the hub's first fault report
    stranger.send_many(3, F.T_SOS, retries=False)
    # a barrier: a genuine alarm sent afterwards makes it all the way
    seq = button.send(F.T_SOS, target=F.ACK_DELIVERED)
    button.wait_status(seq, F.ACK_DELIVERED)
    fault = wait_for(lambda: home.platform.of_type("fault"), 10, "the bad-tags fault")[0]
    schemas.check("event", fault)
    assert fault["fault"]["name"] == "bad_tags" and fault["device"]["id"] == f"{BUTTON:08x}"
    st = home.hub.wait_status(lambda s: s["unknown_devices"], what="the unknown device")
    time.sleep(0.5)
    alarms = home.platform.of_type("manual_alarm")
    assert [a["ref"] for a in alarms] == [button.ref(seq)]  # no forged seq, nothing from 0badcafe
    assert all(e["device"]["id"] != "0badcafe" for e in home.platform.events.values())
    writes = {w.address for w in home.air.double.writes}
    assert forger.address not in writes and stranger.address not in writes  # no ack for them
    assert forger.acks == [] and stranger.acks == [] and forger.bad_acks == 0
    [unknown] = st["unknown_devices"]
    assert unknown["id"] == "0badcafe" and unknown["count"] == 3 and unknown["rssi"] == -81
    assert unknown["address"] == stranger.address
    refused = next(d for d in st["devices"] if d["id"] == f"{BUTTON:08x}")["refused_frames"]
    assert refused == 10
    out = home.hub.cli("status")
    assert "unpaired device 0badcafe heard 3x" in out.stdout


@pytest.mark.timeout(60)
def test_radio_adapter_loss_is_published_and_recovered(home, schemas):
    platform, dev = home.platform, home.dev[BUTTON]
    platform.wait_state(lambda s: s["state"] == "online" and s["radio"]["status"] == "ok")
    home.air.call(home.air.double.remove_adapter())
    down = platform.wait_state(lambda s: s["radio"]["status"] in ("down", "degraded"),
                               what="radio down in the hub's state")
    schemas.check("state", down)
    assert down["state"] == "online" and down["reason"] == "update"
    fault = wait_for(lambda: platform.of_type("fault"), 10, "a radio fault event")[0]
    schemas.check("event", fault)
    assert fault["fault"]["name"] == "radio_adapter" and "device" not in fault
    wait_for(lambda: retained_state(home)["radio"]["status"] != "ok", 5,
             "the retained state to say the radio is not ok")
    assert home.hub.alive

    home.air.call(home.air.double.restore_adapter())
    ok = platform.wait_state(lambda s: s["radio"]["status"] == "ok", what="radio ok again")
    schemas.check("state", ok)
    assert retained_state(home)["radio"]["status"] == "ok"
    wait_for(lambda: platform.of_type("restoral"), 10, "the radio restoral event")
    seq = dev.send(F.T_SOS, target=F.ACK_DELIVERED)  # and alarms flow again
    dev.wait_status(seq, F.ACK_DELIVERED)
    assert home.hub.alive
