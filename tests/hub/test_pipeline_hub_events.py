"""Events the hub core raises itself: supervision (a device offline and restored) and whole-home
inactivity (pre-alarm in the acks, alarm, cancel)."""

from __future__ import annotations

from pipeline_testing import MIN

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
