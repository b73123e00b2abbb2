"""Platform requests in the hub core: settings and identify reach devices in their
acknowledgements, once and not lost; requests about unknown things get error results."""

from __future__ import annotations

import pytest

from hub import contract
from shared import frame as F

MIN = 60_000


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


def _two_acks_in_flight(home, setting, old, new):
    """Frame A's first ack carries `old`; the platform changes it to `new`; frame B's first
    ack carries `new`, queued behind A's (one connection at a time per address)."""
    dev = 0xA1B2
    home.send(dev, F.T_HEARTBEAT)
    home.core.ack_written(dev, F.S_HEARTBEAT_MIN, True, value=60)  # hub.toml's, delivered
    acks = []
    for t, v in (("t1", old), ("t2", new)):
        req = contract.Request("settings", t, device_id=dev, settings=((setting, v),))
        home.core.on_request(req)
        home.send(dev, F.T_HEARTBEAT)
        acks.append(home.last_ack(dev))
    assert [(a.setting, a.value) for a in acks] == [(setting, old), (setting, new)]
    return dev, acks


def test_an_older_acks_write_does_not_stand_for_a_newer_value(home):
    # as the daemon reports them: each write with the value it carried (ack bytes 10-11)
    dev, (a, b) = _two_acks_in_flight(home, F.S_SUMMARY_MIN, 10, 15)
    home.core.ack_written(dev, a.setting, True, value=a.value)  # A (10) lands
    home.core.ack_written(dev, b.setting, False, value=b.value)  # B (15) fails
    assert home.core.devices[dev].settings.get(F.S_SUMMARY_MIN) == 15, "15 still to send"
    home.send(dev, F.T_HEARTBEAT)
    assert (home.last_ack(dev).setting, home.last_ack(dev).value) == (F.S_SUMMARY_MIN, 15)


def test_a_heartbeat_the_device_never_got_is_not_supervised(home):
    # 60 -> 120 (A lands) -> 30 (B fails): the device beats every 120 min, and the hub must
    # not expect it every 30 (a false "offline" after 30-odd minutes)
    dev, (a, b) = _two_acks_in_flight(home, F.S_HEARTBEAT_MIN, 120, 30)
    home.core.ack_written(dev, a.setting, True, value=a.value)
    home.core.ack_written(dev, b.setting, False, value=b.value)
    home.clock.advance(90 * MIN)  # inside the device's real 120-minute heartbeat
    home.core.tick()
    assert (dev, False) not in home.pub.availability
    assert home.core.devices[dev].settings.get(F.S_HEARTBEAT_MIN) == 30, "30 still to send"


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


def missing(home, dev):
    return [m for m in home.published("supervision_missing")
            if m.get("device", {}).get("id") == f"{dev:08x}"]


def test_a_longer_heartbeat_from_the_platform_is_supervised_at_once(home):
    """The platform sets the button's heartbeat to 12 h: the device reports twice a day from
    its next contact, so the hub must not call it missing after hub.toml's 2 x 60 + 10 min."""
    home.send(0xA1B2, F.T_HEARTBEAT)
    home.core.ack_written(0xA1B2, home.last_ack(0xA1B2).setting, True)  # hub.toml's 60
    req = contract.Request("settings", "hb", device_id=0xA1B2,
                           settings=((F.S_HEARTBEAT_MIN, 720),))
    home.core.on_request(req)
    assert home.pub.responses[-1][2] == contract.Result.HOLD
    assert home.core.home.supervisor.window_ms(0xA1B2) == (2 * 720 + 10) * MIN
    home.send(0xA1B2, F.T_HEARTBEAT)  # the device hears 720 in this ack
    assert (home.last_ack(0xA1B2).setting, home.last_ack(0xA1B2).value) == (
        F.S_HEARTBEAT_MIN, 720)
    home.core.ack_written(0xA1B2, F.S_HEARTBEAT_MIN, True)
    for _ in range(12):  # 12 h of silence: the device's next heartbeat is not due yet
        home.clock.advance(60 * MIN)
        home.core.tick()
    assert not missing(home, 0xA1B2)
    assert home.core.home.supervisor.state(0xA1B2) == "online"
    assert home.core.home.supervisor.window_ms(0xC3D4) == (2 * 30 + 10) * MIN  # not its own


def test_a_shorter_heartbeat_is_supervised_once_the_device_has_it(home):
    """Until a device hears a shorter heartbeat it keeps its old one: expecting the short one
    at once would call it missing before its next report is due."""
    req = contract.Request("settings", "hb", settings=((F.S_HEARTBEAT_MIN, 15),))  # whole home
    home.core.on_request(req)
    sup = home.core.home.supervisor
    assert sup.window_ms(0xA1B2) == (2 * 60 + 10) * MIN  # hub.toml's, still on the device
    assert sup.window_ms(0xC3D4) == (2 * 30 + 10) * MIN
    home.send(0xC3D4, F.T_HEARTBEAT)
    ack = home.last_ack(0xC3D4)
    assert (ack.setting, ack.value) == (F.S_HEARTBEAT_MIN, 15)
    assert sup.window_ms(0xC3D4) == (2 * 30 + 10) * MIN  # written, not yet confirmed
    home.core.ack_written(0xC3D4, ack.setting, True)
    home.core.tick()  # the supervisor follows within a tick
    assert sup.window_ms(0xC3D4) == (2 * 15 + 10) * MIN
    assert sup.window_ms(0xA1B2) == (2 * 60 + 10) * MIN  # the button has not heard it yet
    home.clock.advance(41 * MIN)
    home.core.tick()
    assert missing(home, 0xC3D4) and not missing(home, 0xA1B2)


def test_a_failed_write_of_a_shorter_heartbeat_keeps_the_longer_window(home):
    home.core.on_request(contract.Request("settings", "hb", device_id=0xC3D4,
                                          settings=((F.S_HEARTBEAT_MIN, 15),)))
    home.send(0xC3D4, F.T_HEARTBEAT)
    home.core.ack_written(0xC3D4, F.S_HEARTBEAT_MIN, False)
    home.core.tick()
    assert home.core.home.supervisor.window_ms(0xC3D4) == (2 * 30 + 10) * MIN
    assert home.core.devices[0xC3D4].settings == {F.S_HEARTBEAT_MIN: 15}  # sent again


def test_a_device_setting_the_devices_would_not_keep_is_refused_and_changes_nothing(home):
    """The firmware clamps its settings (shared/frame.py SETTING_LO/HI): a value outside them
    would never be in force, so the hub must not answer "devices get it"."""
    home.send(0xC3D4, F.T_HEARTBEAT)
    home.core.ack_written(0xC3D4, F.S_HEARTBEAT_MIN, True)
    for name, value in (("fall_cancel_window", 0), ("fall_cancel_window", 31),
                        ("activity_interval", 241), ("heartbeat_interval", 1441)):
        body = '{"transaction": 1, "settings": {"%s": %d, "quiet_end": 400}}' % (name, value)
        with pytest.raises(contract.ContractError) as e:
            contract.parse_request("carebeacon/v1/test-county/hub-a/request/settings", body,
                                   county="test-county", hub_id="hub-a")
        assert e.value.result == contract.Result.WRONG_DATA, (name, value)
    # a Request made without the contract's parser (a bug, a test double) changes nothing either
    sid = contract.SETTINGS["fall_cancel_window"][0]
    home.core.on_request(contract.Request("settings", "r", settings=((sid, 0), (5, 400))))
    assert home.pub.responses[-1][2] == contract.Result.WRONG_DATA
    assert home.core.devices[0xC3D4].settings == {}
    assert home.store.get_state("device_settings") is None
