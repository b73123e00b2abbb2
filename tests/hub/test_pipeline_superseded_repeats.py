"""An alarm the elder cancelled (or a later event superseded) is never repeated to the platform
again: not when its PUBACK comes after the cancel, not after a hub restart."""

from __future__ import annotations

from shared import frame as F

BUTTON = 0xA1B2


def _republished(home, ref: str, n: int) -> int:
    return [r for r, _ in home.pub.events[n:]].count(ref)


def test_a_cancelled_alarm_is_not_repeated_after_a_restart(home):
    home.send(BUTTON, F.T_SOS)
    ref = home.pub.events[0][0]
    home.core.on_delivered(ref)
    home.send(BUTTON, F.T_SOS_CANCEL, arg=1)
    home.restart()
    assert ref not in home.core.repeat_at
    n = len(home.pub.events)
    home.clock.advance(301_000)
    home.core.tick()
    assert _republished(home, ref, n) == 0


def test_a_cancel_before_the_alarms_puback_stops_its_repeats(home):
    home.send(BUTTON, F.T_SOS)
    ref = home.pub.events[0][0]
    home.send(BUTTON, F.T_SOS_CANCEL, arg=1)  # while the SOS's publish is still in flight
    home.core.on_delivered(ref)
    assert ref not in home.core.repeat_at
    n = len(home.pub.events)
    home.clock.advance(301_000)
    home.core.tick()
    assert _republished(home, ref, n) == 0


def test_an_uncancelled_alarm_still_repeats_after_a_restart(home):
    home.send(BUTTON, F.T_SOS)
    ref = home.pub.events[0][0]
    home.core.on_delivered(ref)
    home.send(BUTTON, F.T_SOS)  # a second SOS; neither is cancelled
    home.restart()
    assert ref in home.core.repeat_at
