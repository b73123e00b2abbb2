"""Events the hub core raises itself: supervision (a device offline and restored) and whole-home
inactivity (pre-alarm in the acks, alarm, cancel)."""

from __future__ import annotations

from pipeline_testing import MIN, deliver_settings

from shared import frame as F


def test_supervision_offline_and_restored(home):
    home.send(0xC3D4, F.T_HEARTBEAT)
    assert (0xC3D4, True) in home.pub.availability
    home.clock.advance(2 * 30 * MIN + 10 * MIN + 1000)
    home.send(0xA1B2, F.T_HEARTBEAT)  # the button keeps reporting
    home.core.tick()
    assert (0xC3D4, False) in home.pub.availability
    [missing] = home.published("supervision_missing")
    assert missing["device"]["id"] == "0000c3d4" and missing["ref"].startswith("hub-a:00000000:")
    home.send(0xC3D4, F.T_HEARTBEAT)
    assert len(home.published("supervision_restored")) == 1


def _pir_offline(home):
    home.send(0xC3D4, F.T_HEARTBEAT)
    home.send(0xA1B2, F.T_HEARTBEAT)
    home.clock.advance(2 * 30 * MIN + 10 * MIN + 1000)
    home.send(0xA1B2, F.T_HEARTBEAT)
    home.core.tick()
    assert len(home.published("supervision_missing")) == 1


def test_a_device_back_after_a_hub_restart_gets_its_restoral(home):
    # Review finding: the offline set lived in memory only; after a restart the platform,
    # told the PIR was missing, never heard it was back
    _pir_offline(home)
    home.restart()  # a crash: nothing saved at shutdown
    home.clock.advance(MIN)
    home.send(0xC3D4, F.T_HEARTBEAT)
    assert len(home.published("supervision_restored")) == 1


def test_a_device_still_offline_after_a_restart_is_not_reported_missing_again(home):
    _pir_offline(home)
    home.restart()
    for minute in range(2 * 60 + 20):
        home.clock.advance(MIN)
        if minute % 30 == 0:
            home.send(0xA1B2, F.T_HEARTBEAT)
        home.core.tick()
    assert len({m["ref"] for m in home.published("supervision_missing")}) == 1
    home.send(0xC3D4, F.T_HEARTBEAT)  # and its restoral still comes
    assert len(home.published("supervision_restored")) == 1
    home.restart()  # back: a restart now starts it with a fresh window
    assert home.core.home.supervisor.state(0xC3D4) == "unknown"


def test_inactivity_prealarm_sounds_in_acks_then_alarms_then_cancels(home):
    home.send(0xC3D4, F.T_ACTIVITY, arg=(4 << 8) | 5)  # someone moves
    for _ in range(12 * 60 + 30):  # a still home, minute by minute (default 12 h at first)
        home.clock.advance(MIN)
        home.core.tick()
        if home.core.home.prealarm_until:
            break
    assert home.core.home.prealarm_until, "no pre-alarm after 12.5 h of stillness"
    home.send(0xA1B2, F.T_HEARTBEAT)
    ack = home.last_ack(0xA1B2)
    assert ack.setting == F.S_PREALARM and 1 <= ack.value <= 10
    assert not home.published("automatic_alarm")
    for _ in range(11):
        home.clock.advance(MIN)
        home.core.tick()
    [alarm] = home.published("automatic_alarm")
    assert alarm["cause"] == "inactivity" and "device" not in alarm
    home.send(0xC3D4, F.T_MOTION, arg=800)
    [cancel] = home.published("cancel")
    assert cancel["cancels"] == alarm["ref"]


def _prealarm_running(home):
    home.send(0xC3D4, F.T_ACTIVITY, arg=(4 << 8) | 5)
    for _ in range(12 * 60 + 30):
        home.clock.advance(MIN)
        home.core.tick()
        if home.core.home.prealarm_until:
            return
    raise AssertionError("no pre-alarm after 12.5 h of stillness")


def _prealarm_in_next_ack(home, dev):
    home.send(dev, F.T_HEARTBEAT)
    ack = home.last_ack(dev)
    return ack.value if ack.setting == F.S_PREALARM else None


def test_devices_told_of_the_prealarm_hear_it_is_over_once(home):
    # Review finding: "0 = over" (docs/protocol.md) was never sent: a button told "are you all
    # right?" for 10 min went on calling after the elder walked past the PIR.
    deliver_settings(home, 0xA1B2)  # nothing else pending: its acks carry only the pre-alarm
    _prealarm_running(home)
    assert _prealarm_in_next_ack(home, 0xA1B2) == 10
    home.core.ack_written(0xA1B2, F.S_PREALARM, True, value=10)
    home.clock.advance(MIN)
    home.send(0xC3D4, F.T_MOTION, arg=800)  # a sign of life clears it
    assert home.core.home.prealarm_until is None
    assert _prealarm_in_next_ack(home, 0xA1B2) == 0, "told it is over"
    home.core.ack_written(0xA1B2, F.S_PREALARM, False, value=0)  # that write failed
    assert _prealarm_in_next_ack(home, 0xA1B2) == 0, "told again"
    home.core.ack_written(0xA1B2, F.S_PREALARM, True, value=0)
    assert _prealarm_in_next_ack(home, 0xA1B2) is None, "once it has it, nothing more"


def test_a_device_never_told_of_the_prealarm_hears_nothing_of_its_end(home):
    deliver_settings(home, 0xA1B2)
    _prealarm_running(home)
    home.send(0xC3D4, F.T_MOTION, arg=800)
    assert home.core.home.prealarm_until is None
    assert _prealarm_in_next_ack(home, 0xA1B2) is None


def test_the_prealarm_turned_alarm_is_over_for_the_devices_too(home):
    deliver_settings(home, 0xA1B2)
    _prealarm_running(home)
    assert _prealarm_in_next_ack(home, 0xA1B2) == 10
    for _ in range(11):
        home.clock.advance(MIN)
        home.core.tick()
    assert home.published("automatic_alarm")
    assert _prealarm_in_next_ack(home, 0xA1B2) == 0
