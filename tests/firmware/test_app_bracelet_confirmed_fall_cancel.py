"""A confirmed fall cancelled by the wearer: the cancel names the FALL_CONFIRMED.

FALL_SUSPECTED (seq N) -> the cancel window runs out -> FALL_CONFIRMED (seq M, arg = M - N),
which supersedes N at the hub (hub/events.py) -> the wearer holds the button 3 s. The
FALL_CANCELLED must name M, the alarm the platform holds active; naming N (as before) left
the confirmed fall active and repeated while the bracelet showed CANCELLED. In the cancel
window the cancel still names the FALL_SUSPECTED (test_app_bracelet.py).
"""

from simkit import MIN, SEC, Rig
from test_app_bracelet import Wrist

from hub.events import map_frame
from shared.frame import T_FALL_CANCELLED, T_FALL_CONFIRMED, T_FALL_SUSPECTED, T_SOS


def test_a_hold_after_confirmation_cancels_the_confirmed_fall():
    rig = Rig("bracelet", imu=Wrist().fall(2 * MIN))
    rig.run_until(2 * MIN + 40 * SEC)  # the 20 s window has run out: FALL_CONFIRMED is out
    susp = rig.messages(T_FALL_SUSPECTED)
    conf = rig.messages(T_FALL_CONFIRMED)
    assert len(susp) == 1 and len(conf) == 1 and not rig.messages(T_FALL_CANCELLED)
    n, m = susp[0].seq, conf[0].seq
    assert conf[0].seq - conf[0].arg == n
    mc = map_frame(conf[0])
    assert (mc.type, mc.cause, mc.cancels_seq) == ("automatic_alarm", "fall", n)
    t = rig.now
    rig.press(t + SEC, 3500)  # "cancel my alarm": a 3 s hold
    rig.run(MIN)
    cancels = rig.messages(T_FALL_CANCELLED)
    assert len(cancels) == 1
    c = cancels[0]
    assert c.seq > m and c.seq - c.arg == m, "the cancel refers to the FALL_CONFIRMED"
    mapped = map_frame(c)
    assert mapped is not None and (mapped.type, mapped.cancels_seq) == ("cancel", m)
    assert not rig.messages(T_SOS), "the hold cancels, it raises nothing"
    assert "CANCELLED" in rig.patterns(since=t)


def test_a_confirmed_fall_still_waiting_for_a_slot_cancels_its_suspected_fall():
    # The FALL_CONFIRMED never left the bracelet (no outbox slot): the hub's active alarm is
    # the FALL_SUSPECTED, so that is what the cancel names.
    rig = Rig("bracelet", imu=Wrist())
    rig.run(30 * SEC)
    app = rig.app()
    now = app.hal.ticks_ms()
    n = app.core.send(T_FALL_SUSPECTED, 0, now)
    rig.run(5 * SEC)
    sos = app.sos
    sos.fall_ref, sos.alarm_seq, sos.alarm_type, sos.state = n, 0, T_FALL_CONFIRMED, 1
    seq = sos.cancel(app.hal.ticks_ms())
    assert seq
    rig.run(30 * SEC)
    c = rig.messages(T_FALL_CANCELLED)
    assert len(c) == 1 and c[0].seq - c[0].arg == n
    assert map_frame(c[0]).cancels_seq == n


def test_no_second_fall_window_while_a_fall_alarm_is_active():
    """A second fall while the first confirmed fall is active opens no window: help is being
    called already, and the window's cancel could close the first fall's early warning at the
    hub while that FALL_CONFIRMED is still on its way (hub/pipeline_cancels.py)."""
    wrist = Wrist().fall(2 * MIN).at(3 * MIN, "worn").fall(4 * MIN).at(5 * MIN, "worn")
    rig = Rig("bracelet", imu=wrist)
    rig.run_until(4 * MIN + 40 * SEC)
    assert len(rig.messages(T_FALL_SUSPECTED)) == 1 and len(rig.messages(T_FALL_CONFIRMED)) == 1
    assert "FALL_WINDOW" not in rig.patterns(since=4 * MIN)
    t = rig.now
    rig.press(t + SEC, 3500)  # the wearer cancels the confirmed fall
    rig.run(MIN)
    assert len(rig.messages(T_FALL_CANCELLED)) == 1
    app = rig.app()
    app.fall.reset()
    wrist.fall(rig.now + 30 * SEC)  # after it, falls are detected again
    rig.run(MIN)
    assert len(rig.messages(T_FALL_SUSPECTED)) == 2
