"""Platform requests in the hub core: settings and identify reach devices in their
acknowledgements, once and not lost; requests about unknown things get error results."""

from __future__ import annotations

from hub import contract
from shared import frame as F


def test_platform_settings_reach_devices_in_acknowledgements(home):
    req = contract.Request("settings", "t1", device_id=0xC3D4, settings=((F.S_SUMMARY_MIN, 10),))
    home.core.on_request(req)
    assert home.pub.responses[-1][2] == contract.Result.HOLD  # in force at next contact
    home.send(0xC3D4, F.T_HEARTBEAT)
    first = home.last_ack(0xC3D4)
    home.core.ack_written(0xC3D4, first.setting, True)
    home.send(0xC3D4, F.T_HEARTBEAT)
    second = home.last_ack(0xC3D4)
    home.core.ack_written(0xC3D4, second.setting, True)
    assert {(first.setting, first.value), (second.setting, second.value)} == {
        (F.S_HEARTBEAT_MIN, 30),
        (F.S_SUMMARY_MIN, 10),
    }
    home.send(0xC3D4, F.T_HEARTBEAT)
    assert home.last_ack(0xC3D4).setting == F.S_NONE


def test_a_pending_setting_rides_only_on_a_frames_first_ack(home):
    req = contract.Request("settings", "t1", device_id=0xA1B2, settings=((F.S_SUMMARY_MIN, 10),))
    home.core.on_request(req)  # pending now: heartbeat 60 (hub.toml) and summary 10
    _, seq = home.send(0xA1B2, F.T_HEARTBEAT)
    first = home.last_ack(0xA1B2)
    assert (first.setting, first.value) == (F.S_HEARTBEAT_MIN, 60)
    home.core.ack_written(0xA1B2, first.setting, True)
    # the same advert heard again: the device already has this frame's status (a heartbeat
    # stays local: DELIVERED at once) and ignores this ack whole, so the summary setting must
    # not ride on it (it would be lost)
    home.send(0xA1B2, F.T_HEARTBEAT, seq=seq, attempt=1)
    again = home.last_ack(0xA1B2)
    assert (again.seq, again.status, again.setting) == (seq, first.status, F.S_NONE)
    home.core.ack_written(0xA1B2, again.setting, True)
    home.send(0xA1B2, F.T_HEARTBEAT)
    assert (home.last_ack(0xA1B2).setting, home.last_ack(0xA1B2).value) == (F.S_SUMMARY_MIN, 10)


def test_a_setting_changed_while_its_ack_was_in_flight_is_sent_again(home):
    home.send(0xA1B2, F.T_HEARTBEAT)
    home.core.ack_written(0xA1B2, F.S_HEARTBEAT_MIN, True)
    for t, v in (("t1", 10), ("t2", 15)):
        req = contract.Request("settings", t, device_id=0xA1B2, settings=((F.S_SUMMARY_MIN, v),))
        home.core.on_request(req)
        if v == 10:
            home.send(0xA1B2, F.T_HEARTBEAT)  # carries 10; the platform changes it meanwhile
            assert home.last_ack(0xA1B2).value == 10
    home.core.ack_written(0xA1B2, F.S_SUMMARY_MIN, True)  # the device has 10, not 15
    home.send(0xA1B2, F.T_HEARTBEAT)
    assert (home.last_ack(0xA1B2).setting, home.last_ack(0xA1B2).value) == (F.S_SUMMARY_MIN, 15)


def test_identify_rides_on_the_devices_next_acknowledgement_once(home):
    home.send(0xC3D4, F.T_HEARTBEAT)
    home.core.ack_written(0xC3D4, F.S_HEARTBEAT_MIN, True)
    home.core.on_request(contract.Request("identify", "i1", device_id=0xC3D4))
    kind, tr, result, _, data = home.pub.responses[-1]
    assert (kind, tr, result) == ("identify", "i1", contract.Result.HOLD)
    assert data == {"device": "0000c3d4", "seconds": 30}
    home.send(0xC3D4, F.T_ACTIVITY, arg=(3 << 8) | 5)
    ack = home.last_ack(0xC3D4)
    assert (ack.setting, ack.value) == (F.S_IDENTIFY, 30)
    home.core.ack_written(0xC3D4, ack.setting, True)
    home.send(0xC3D4, F.T_ACTIVITY, arg=(3 << 8) | 5)
    assert home.last_ack(0xC3D4).setting == F.S_NONE  # once, not at every contact
    home.core.on_request(contract.Request("identify", "i2", device_id=0x1234))
    assert home.pub.responses[-1][2] == contract.Result.WRONG_DATA


def test_requests_about_unknown_things_get_error_results(home):
    home.core.on_request(contract.Request("ack", 1, ref="hub-a:0000a1b2:999"))
    home.core.on_request(contract.Request("test", 2, device_id=0x1234))
    home.core.on_request(contract.Request("list_devices", 3))
    res = {r[1]: r for r in home.pub.responses}
    assert res[1][2] == contract.Result.WRONG_DATA
    assert res[2][2] == contract.Result.WRONG_DATA
    assert res[3][2] == 0 and [d["id"] for d in res[3][4]["devices"]] == ["0000a1b2", "0000c3d4"]
