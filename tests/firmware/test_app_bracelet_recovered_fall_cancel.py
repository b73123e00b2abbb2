"""A FALL_CONFIRMED recovered after a power loss can be cancelled for real.

Review finding 8: sos.adopt() did not restore fall_ref, so the wearer's 3 s hold sent
FALL_CANCELLED with arg 0, which the hub maps to "nothing was raised" (hub/events.py),
while the bracelet showed CANCELLED. A cancel of a confirmed fall names the FALL_CONFIRMED
itself (docs/protocol.md): it superseded its FALL_SUSPECTED at the hub (hub/events.py), so it
is the alarm the platform holds active; the recovered FALL_CONFIRMED keeps its own reference
to the FALL_SUSPECTED in its arg.
"""

from simkit import MIN, SEC, Rig
from test_app_bracelet import Wrist

from hub.events import map_frame
from shared.frame import T_FALL_CANCELLED, T_FALL_CONFIRMED, T_FALL_SUSPECTED


def test_recovered_fall_cancels_the_fall_it_raised():
    # The reviewer's demo (d9): the fall and its confirmation go unheard, the battery
    # goes, the bracelet comes back and re-sends the FALL_CONFIRMED, the wearer cancels.
    rig = Rig("bracelet", imu=Wrist().fall(2 * MIN))
    rig.run_until(2 * MIN - 10 * SEC)
    rig.hub.down = True
    rig.run_until(2 * MIN + 40 * SEC)
    rig.dev.power_loss(2 * SEC)
    rig.hub.down = False
    rig.run(30 * SEC)
    t = rig.now
    rig.press(t + SEC, 3500)  # "cancel my alarm"
    rig.run(MIN)
    fc = rig.messages(T_FALL_CONFIRMED)
    assert len(fc) == 1 and fc[0].arg, "re-sent with its reference to the FALL_SUSPECTED"
    suspected = fc[0].seq - fc[0].arg
    assert map_frame(fc[0]).cancels_seq == suspected, "it supersedes its FALL_SUSPECTED"
    cancels = rig.messages(T_FALL_CANCELLED)
    assert len(cancels) == 1
    c = cancels[0]
    assert c.seq - c.arg == fc[0].seq, "the cancel refers to the recovered FALL_CONFIRMED"
    mapped = map_frame(c)
    assert mapped is not None and mapped.type == "cancel" and mapped.cancels_seq == fc[0].seq
    assert "CANCELLED" in rig.patterns(since=t)


def test_recovered_fall_without_a_suspected_cancels_the_fall_itself():
    # A FALL_CONFIRMED whose FALL_SUSPECTED was never sent (arg 0) is what the hub
    # knows: a cancel must then name the FALL_CONFIRMED itself, never "nothing".
    rig = Rig("bracelet", imu=Wrist())
    rig.run(30 * SEC)
    app = rig.app()
    now = app.hal.ticks_ms()
    seq = app.core.send(T_FALL_CONFIRMED, 0, now)
    app.sos.adopt(seq, T_FALL_CONFIRMED, now)  # as after a power loss (fresh start)
    assert app.sos.alarm_seq == seq
    t = rig.now
    rig.press(t + SEC, 3500)
    rig.run(MIN)
    c = rig.messages(T_FALL_CANCELLED)
    assert len(c) == 1 and c[0].arg and c[0].seq - c[0].arg == seq
    mapped = map_frame(c[0])
    assert mapped is not None and mapped.cancels_seq == seq
    assert not rig.messages(T_FALL_SUSPECTED)
