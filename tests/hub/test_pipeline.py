"""The hub core (hub/pipeline.py) from frame to platform message: an alarm stored, acknowledged,
published and climbing to HELP; retried, forged, unknown, replayed and routine frames; replay
windows kept across a restart. The harness is in pipeline_testing.py."""

from __future__ import annotations

import json
import logging
import os

from hub import contract
from shared import frame as F


def test_sos_is_stored_acknowledged_published_and_climbs_to_help(home):
    what, seq = home.send(0xA1B2, F.T_SOS, age_ms=1500)
    assert what == "stored"
    ack = home.last_ack(0xA1B2)  # authenticated with the device's key
    assert (ack.seq, ack.status, ack.clock_valid) == (seq, F.ACK_STORED, True)
    assert ack.setting == F.S_HEARTBEAT_MIN and ack.value == 60
    [msg] = home.published("manual_alarm")
    assert msg["ref"] == f"hub-a:0000a1b2:{seq}" and msg["device"]["room"] == "bedroom"
    assert msg["household"] == "HH-7" and msg["rssi"] == -61
    # the event keeps its true time: 1.5 s before it was received
    assert contract.iso_time((home.clock.wall - 1500) / 1000) == msg["event_time"]
    home.core.on_delivered(msg["ref"])
    assert home.last_ack(0xA1B2).status == F.ACK_DELIVERED
    req = contract.parse_request(
        "carebeacon/v1/test-county/hub-a/request/ack",
        json.dumps({"transaction": 7, "ref": msg["ref"]}),
        county="test-county",
        hub_id="hub-a",
    )
    home.core.on_request(req)
    assert home.pub.responses[-1][:3] == ("ack", 7, 0)
    assert home.last_ack(0xA1B2).status == F.ACK_HELP
    assert home.store.get(msg["ref"]).state == 2


def test_retry_of_a_stored_frame_is_acknowledged_again_not_stored_twice(home):
    _, seq = home.send(0xA1B2, F.T_SOS)
    home.core.on_delivered(home.published()[0]["ref"])
    n = len(home.acks)
    what, _ = home.send(0xA1B2, F.T_SOS, seq=seq, attempt=5, age_ms=9000)
    assert what == "duplicate"
    assert len(home.acks) == n + 1 and home.last_ack(0xA1B2).status == F.ACK_DELIVERED
    assert len(home.published("manual_alarm")) == 1
    assert home.store.stats()["events"] == 1 if "events" in home.store.stats() else True


def test_forged_frames_are_refused_counted_and_reported(home, caplog):
    caplog.set_level(logging.WARNING, logger="carebeacon")
    for _ in range(10):
        what, _ = home.send(0xA1B2, F.T_SOS, key=os.urandom(16))
        assert what == "refused"
    # the first five and the tenth are logged: a flood of forgeries cannot fill the journal
    assert len([r for r in caplog.records if "refused a frame" in r.getMessage()]) == 6
    assert not home.published("manual_alarm") and not home.acks
    assert home.core.devices[0xA1B2].bad_tags == 10
    [fault] = home.published("fault")
    assert fault["fault"]["name"] == "bad_tags" and fault["device"]["id"] == "0000a1b2"


def test_unknown_devices_are_counted_never_forwarded(home):
    stranger = F.Codec(0x0BADCAFE, os.urandom(16))
    data = bytes(stranger.encode(bytearray(24), 1, F.T_SOS))
    assert home.core.on_frame("11:22:33:44:55:66", data, -80) == "unknown"
    assert home.core.unknown[0x0BADCAFE].count == 1 and not home.pub.events and not home.acks
    assert home.core.on_frame("11:22:33:44:55:66", b"\x10" + bytes(5), -80) == "malformed"


def test_replay_below_the_window_is_refused_loudly(home):
    home.send(0xC3D4, F.T_HEARTBEAT, seq=5000, arg=90 << 16)
    what, _ = home.send(0xC3D4, F.T_SOS, seq=100)
    assert what == "too_old"
    [fault] = home.published("fault")
    assert fault["fault"]["name"] == "replay_too_old"


def test_routine_frames_stay_local_and_update_battery(home):
    home.send(0xC3D4, F.T_HEARTBEAT, arg=(77 << 16) | (150))
    home.send(0xC3D4, F.T_ACTIVITY, arg=(3 << 8) | 5)
    assert not home.published()
    assert home.core.devices[0xC3D4].battery == 77
    assert home.last_ack(0xC3D4).status == F.ACK_DELIVERED  # nothing more will come
    assert home.store.pending() == []


def test_cancel_and_test_name_the_alarm_they_supersede(home):
    _, sos = home.send(0xA1B2, F.T_SOS)
    _, cancel = home.send(0xA1B2, F.T_SOS_CANCEL, arg=1)
    [c] = home.published("cancel")
    assert c["cancels"] == f"hub-a:0000a1b2:{sos}"
    _, sos2 = home.send(0xA1B2, F.T_SOS)
    home.send(0xA1B2, F.T_TEST, arg=1)
    [t] = home.published("test")
    assert t["cancels"] == f"hub-a:0000a1b2:{sos2}"


def test_restart_keeps_replay_windows_and_hub_sequence(home):
    _, seq = home.send(0xA1B2, F.T_SOS)
    home.core.hub_fault(207, "test fault")
    hub_seq = home.core.hub_seq
    home.restart()
    assert home.send(0xA1B2, F.T_SOS, seq=seq)[0] == "duplicate"
    assert home.core.hub_seq == hub_seq
    home.core.hub_fault(207, "another")
    assert home.core.hub_seq == hub_seq + 1


def test_a_faults_state_is_committed_with_its_event_and_only_then(home):
    # hub faults 210 and 211 keep "raised" in a store state: written in the event's own
    # commit, so a crash cannot keep the event without it; a fault already in force with the
    # same text sends nothing and writes nothing.
    home.core.hub_fault(211, "in use", states={"identity_in_use": b"1"})
    assert home.store.get_state("identity_in_use") == b"1"
    home.store.put_state("identity_in_use", b"x")
    home.core.hub_fault(211, "in use", states={"identity_in_use": b"1"})
    assert home.store.get_state("identity_in_use") == b"x" and len(home.pub.events) == 1
    home.core.hub_fault_cleared(211, states={"identity_in_use": b"0"})
    assert home.store.get_state("identity_in_use") == b"0"
    assert [m["type"] for _, m in home.pub.events] == ["fault", "restoral"]
    home.core.hub_fault_cleared(211, states={"identity_in_use": b"y"})  # not in force
    assert home.store.get_state("identity_in_use") == b"0" and len(home.pub.events) == 2
