"""A fall confirmed while the wearer's SOS is still active: two alarms at the hub, one on the
bracelet.

Review finding: the FALL_CONFIRMED used to take the SOS's place on the device and forget it.
The SOS went on being sent, but a 3 s hold cancelled only the fall while showing CANCELLED,
and the next press raised a second SOS while the first was still on the air. Now the SOS is
kept beside the fall (firmware/apps/sos.py `also_seq`): a hold cancels both, a press only
shows the status while either is active, and help on the way for either is shown.
"""

from simkit import MIN, SEC, Rig
from test_app_bracelet import Wrist

from shared.frame import ACK_HELP, T_FALL_CANCELLED, T_FALL_CONFIRMED, T_SOS, T_SOS_CANCEL


def sos_then_fall(**hub):
    """SOS at 1:00 (the hub has it, no operator yet); a fall at 2:00, lying still after it:
    FALL_CONFIRMED when the 20 s window runs out."""
    rig = Rig("bracelet", imu=Wrist().fall(2 * MIN).at(2 * MIN + 50 * SEC, "worn"))
    rig.hub.help_ms = None
    for k, v in hub.items():
        setattr(rig.hub, k, v)
    rig.press(1 * MIN, 200)
    rig.run_until(2 * MIN + 40 * SEC)
    assert len(rig.messages(T_SOS)) == 1 and len(rig.messages(T_FALL_CONFIRMED)) == 1
    return rig


def test_a_hold_cancels_the_sos_and_the_fall_together():
    rig = sos_then_fall()
    sos, fall = rig.messages(T_SOS)[0], rig.messages(T_FALL_CONFIRMED)[0]
    rig.press(3 * MIN, 3500)  # "I'm fine"
    rig.run_until(4 * MIN)
    cancels = rig.messages(T_SOS_CANCEL)
    fall_cancels = rig.messages(T_FALL_CANCELLED)
    assert [c.seq - c.arg for c in cancels] == [sos.seq], "the SOS is cancelled too"
    assert [c.seq - c.arg for c in fall_cancels] == [fall.seq]
    outbox = rig.app().core.outbox
    assert not outbox.pending(sos.seq) and not outbox.pending(fall.seq)
    assert "CANCELLED" in rig.patterns(since=3 * MIN)


def test_a_press_while_the_sos_is_still_sent_raises_no_second_sos():
    rig = sos_then_fall(deliver_ms=None)  # STORED only: the SOS is sent on and on
    fall = rig.messages(T_FALL_CONFIRMED)[0]
    device_id = rig.app().core.cfg.device_id
    rig.hub.set_status(device_id, fall.seq, ACK_HELP)  # the operator took the fall only
    rig.run_until(20 * MIN)  # past sos_hold_min (15) after the fall: its hold time is over
    assert rig.app().core.outbox.pending(rig.messages(T_SOS)[0].seq)
    rig.press(20 * MIN + SEC, 200)  # "did it go through?"
    rig.run_until(21 * MIN)
    assert len(rig.messages(T_SOS)) == 1, [f.seq for f in rig.messages(T_SOS)]
    assert not rig.messages(T_SOS_CANCEL) and not rig.messages(T_FALL_CANCELLED)
    assert rig.app().sos.active(rig.now)


def test_help_on_the_way_for_the_sos_is_shown_over_the_fall():
    rig = sos_then_fall()
    sos = rig.messages(T_SOS)[0]
    device_id = rig.app().core.cfg.device_id
    rig.hub.set_status(device_id, sos.seq, ACK_HELP)  # the operator took the SOS
    rig.run_until(4 * MIN)
    assert "HELP" in rig.patterns(since=2 * MIN + 40 * SEC)
