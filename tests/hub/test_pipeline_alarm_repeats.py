"""Confirmed alarms are published again until an operator acknowledges them, across a restart
too; one the elder cancelled is not."""

from __future__ import annotations

from hub import contract
from shared import frame as F


def test_confirmed_alarms_repeat_until_an_operator_acknowledges(home):
    home.send(0xA1B2, F.T_SOS)
    ref = home.pub.events[0][0]
    home.core.on_delivered(ref)
    home.clock.advance(301_000)
    home.core.tick()
    assert [r for r, _ in home.pub.events].count(ref) == 2
    home.core.on_delivered(ref)
    req = contract.Request("ack", 1, ref=ref)
    home.core.on_request(req)
    home.clock.advance(301_000)
    home.core.tick()
    assert [r for r, _ in home.pub.events].count(ref) == 2


def test_a_restarted_hub_keeps_repeating_unacknowledged_alarms(home):
    home.send(0xA1B2, F.T_SOS)
    ref = home.pub.events[0][0]
    home.core.on_delivered(ref)
    home.restart()
    home.clock.advance(301_000)
    home.core.tick()
    assert [r for r, _ in home.pub.events].count(ref) == 2
    home.core.on_request(contract.Request("ack", 9, ref=ref))
    home.restart()
    assert ref not in home.core.repeat_at


def test_an_alarm_the_elder_cancelled_is_not_repeated(home):
    home.send(0xA1B2, F.T_SOS)
    ref = home.pub.events[0][0]
    home.core.on_delivered(ref)
    home.send(0xA1B2, F.T_SOS_CANCEL, arg=1)
    home.clock.advance(301_000)
    home.core.tick()
    assert [r for r, _ in home.pub.events].count(ref) == 1
