"""An outbox full of alarm-class messages never swallows a new alarm (firmware/apps/outbox.py).

The outbox has six slots. Cancels, tests and suspected falls wait there for DELIVERED (or
STORED); with the home internet or the hub down they pile up. A new SOS (or fall) must
still get a slot, by evicting what loses least; and if six alarms short of DELIVERED fill
it, the app keeps the new alarm, says "not delivered yet" and queues it once a slot frees,
never showing SENDING for a message that is not being sent.
"""

from simkit import MIN, SEC, Rig, bare_outbox
from test_app_bracelet import Wrist

from firmware.apps.outbox import SLOTS
from shared.frame import (
    ACK_DELIVERED,
    ACK_STORED,
    T_FALL_CANCELLED,
    T_FALL_CONFIRMED,
    T_FALL_SUSPECTED,
    T_HEARTBEAT,
    T_SOS,
    T_SOS_CANCEL,
    T_TEST,
)


def outbox_full_logs(rig):
    return [m for _t, m in rig.plat.log if "outbox full" in m]


def awake_app(rig):
    """Run until the device is awake (after a boot), and return its app."""
    while rig.dev.app is None or rig.dev.state not in ("run", "wait"):
        rig.run(20)
    return rig.dev.app


def fill_with_alarms(rig, n, mtype=T_SOS):
    """n alarms short of DELIVERED in flight (as after falls with the hub down)."""
    app = awake_app(rig)
    now = app.hal.ticks_ms()
    seqs = [app.core.send(mtype, 0, now) for _ in range(n)]
    assert all(seqs)
    return seqs


def test_bracelet_sos_with_the_internet_down_after_six_cancelled_falls():
    # Demo d3b: the hub stores (STORED) but the platform is unreachable, so the six
    # FALL_CANCELLED wait for DELIVERED in all six slots. The SOS must still go out.
    w = Wrist()
    for k in range(6):
        t = (2 + 3 * k) * MIN
        w.fall(t, after="floor").at(t + 5 * SEC, "worn")
    rig = Rig("bracelet", imu=w)
    rig.hub.deliver_ms = None
    for k in range(6):
        rig.press((2 + 3 * k) * MIN + 6 * SEC, 3500)  # "I'm fine"
    rig.run_until(22 * MIN)
    ob = rig.app().core.outbox
    assert ob.o_type == [T_FALL_CANCELLED] * SLOTS and ob.o_status == [ACK_STORED] * SLOTS
    t0 = rig.now
    rig.press(t0 + SEC, 300)
    rig.run(2 * MIN)
    assert len(rig.messages(T_SOS)) == 1, "the SOS was never sent"
    assert "RECEIVED" in rig.patterns(since=t0)
    assert not outbox_full_logs(rig)
    assert rig.app().core.outbox.evicted == 1, "one stored cancel made room (the hub has it)"
    assert rig.unique() == ""


def test_bracelet_sos_with_the_hub_down_after_three_cancelled_falls():
    # Demo d3: nothing acknowledged, three FALL_SUSPECTED + three FALL_CANCELLED fill the
    # outbox; the SOS must be queued, shown as being sent, and reach the hub once it is back.
    w = Wrist()
    for k in range(3):
        t = (2 + 3 * k) * MIN
        w.fall(t, after="floor").at(t + 5 * SEC, "worn")
    rig = Rig("bracelet", imu=w)
    rig.run(60 * SEC)
    rig.hub.down = True
    for k in range(3):
        rig.press((2 + 3 * k) * MIN + 6 * SEC, 3500)
    rig.run_until(12 * MIN)
    ob = rig.app().core.outbox
    assert sorted(ob.o_type) == [T_FALL_SUSPECTED] * 3 + [T_FALL_CANCELLED] * 3
    t0 = rig.now
    rig.press(t0 + SEC, 300)
    rig.run(40 * SEC)
    sos = rig.app().sos
    assert sos.alarm_seq and rig.app().core.outbox.pending(sos.alarm_seq)
    assert not outbox_full_logs(rig)
    rig.hub.down = False
    rig.run(5 * MIN)
    assert [f.seq for f in rig.messages(T_SOS)] == [sos.alarm_seq]
    assert "RECEIVED" in rig.patterns(since=t0 + 40 * SEC)
    # The oldest unstored FALL_SUSPECTED gave way: its cancel still went, the rest too.
    assert len(rig.messages(T_FALL_CANCELLED)) == 3
    assert rig.unique() == ""


def test_button_sos_after_six_cancelled_sos_with_the_hub_down():
    # Demo d2: six SOS, each cancelled, while the hub is down; then the real emergency.
    rig = Rig("button")
    rig.hub.help_ms = 30 * SEC
    rig.run(10 * SEC)
    rig.hub.down = True
    for _ in range(6):
        rig.press(rig.now + SEC, 200)
        rig.run(10 * SEC)
        rig.press(rig.now + SEC, 3500)
        rig.run(2 * MIN)
    t0 = rig.now + SEC
    rig.press(t0, 200)
    rig.run(30 * SEC)
    assert not outbox_full_logs(rig), "every cancel and the SOS were queued"
    rig.hub.down = False
    rig.run(10 * MIN)
    sos = rig.messages(T_SOS)
    assert len(sos) == 1, "only the last SOS (the others were cancelled before they went out)"
    assert sos[0].seq > max(f.seq for f in rig.messages(T_SOS_CANCEL))
    assert "HELP" in rig.patterns(since=t0)
    assert rig.unique() == ""


def test_an_sos_the_outbox_cannot_take_is_kept_and_sent_once_a_slot_frees():
    # Six alarms short of DELIVERED fill every slot (none of them may be evicted): the new
    # SOS stays active, the elder hears "not delivered yet" (never SENDING), a press asks
    # again and hears the same; once the hub acknowledges the others, it goes out.
    rig = Rig("button")
    rig.hub.help_ms = 20 * SEC
    rig.hub.down = True
    fill_with_alarms(rig, SLOTS)
    t0 = rig.now + SEC
    rig.press(t0, 200)
    rig.run(5 * SEC)
    sos = rig.app().sos
    assert sos.active(rig.now) and sos.alarm_seq == 0
    assert rig.patterns(since=t0) == ["NOT_DELIVERED"]
    t1 = rig.now + SEC
    rig.press(t1, 200)  # "did it go through?"
    rig.run(5 * SEC)
    assert rig.patterns(since=t1) == ["NOT_DELIVERED"]
    assert outbox_full_logs(rig)
    rig.hub.down = False
    t2 = rig.now
    rig.run(5 * MIN)
    heard = {f.seq for f in rig.messages(T_SOS)}
    assert len(heard) == SLOTS + 1, "the fillers and then the press's own SOS"
    pats = rig.patterns(since=t2)
    assert "SENDING" in pats and pats[-1] == "HELP"
    press_sos = max(heard)
    t, f = [(t, f) for t, _n, f in rig.hub.frames if f.seq == press_sos][0]
    assert t - t0 > 20 * SEC and abs(t - f.age_ms - t0) <= SEC, "dated at the press"
    assert rig.unique() == ""


def test_a_cancel_always_takes_the_slot_of_the_alarm_it_cancels():
    # Five alarms in flight plus the elder's SOS: full. Holding 3 s must queue the cancel
    # (in the SOS's slot), not drop the SOS with no cancel ever sent.
    rig = Rig("button")
    rig.hub.down = True
    fill_with_alarms(rig, SLOTS - 1)
    rig.press(rig.now + SEC, 200)
    rig.run(10 * SEC)
    sos_seq = rig.app().sos.alarm_seq
    assert sos_seq
    rig.press(rig.now + SEC, 3500)
    rig.run(10 * SEC)
    app = rig.app() or awake_app(rig)
    assert app.sos.cancel_seq and app.core.outbox.pending(app.sos.cancel_seq)
    assert not app.core.outbox.pending(sos_seq)
    rig.hub.down = False
    rig.run(3 * MIN)
    cancels = rig.messages(T_SOS_CANCEL)
    assert [f.seq - f.arg for f in cancels] == [sos_seq]
    assert sos_seq not in {f.seq for f in rig.frames(T_SOS)}, "never sent after its cancel"
    assert not outbox_full_logs(rig)


def test_the_weekly_test_always_takes_the_slot_of_its_sos():
    rig = Rig("button")
    rig.hub.down = True
    fill_with_alarms(rig, SLOTS - 1)
    t0 = rig.now + SEC
    for k in range(3):
        rig.press(t0 + k * 900, 150)
    rig.run(20 * SEC)
    rig.hub.down = False
    rig.run(3 * MIN)
    tests = rig.messages(T_TEST)
    assert len(tests) == 1 and tests[0].arg, "TEST queued, naming the SOS it supersedes"
    sos_seq = tests[0].seq - tests[0].arg
    assert sos_seq not in {f.seq for f in rig.frames(T_SOS)}
    assert not outbox_full_logs(rig)


def test_a_fall_while_six_alarms_fill_the_outbox_is_confirmed_once_a_slot_frees():
    # The FALL_SUSPECTED finds no slot (six alarms short of DELIVERED): the window still
    # opens; at its end the FALL_CONFIRMED (arg 0: no FALL_SUSPECTED sent) waits for a
    # slot, "not delivered yet", and goes out once the hub acknowledges the others.
    rig = Rig("bracelet", imu=Wrist().fall(2 * MIN))
    rig.hub.help_ms = 20 * SEC
    rig.run(60 * SEC)
    rig.hub.down = True
    fill_with_alarms(rig, SLOTS, T_FALL_CONFIRMED)
    rig.run_until(2 * MIN + 45 * SEC)  # the fall, the 20 s window, its end
    app = rig.app()
    assert app.falls == 1 and app.susp_seq == 0 and not app.window
    assert app.sos.active(rig.now) and app.sos.alarm_seq == 0
    assert "NOT_DELIVERED" in rig.patterns(since=2 * MIN + 20 * SEC)
    rig.hub.down = False
    rig.run(5 * MIN)
    confirmed = [f for f in rig.messages(T_FALL_CONFIRMED) if f.seq == app.sos.alarm_seq]
    assert confirmed and confirmed[0].arg == 0
    assert not rig.messages(T_FALL_SUSPECTED)
    assert "HELP" in rig.patterns(since=3 * MIN)
    assert rig.unique() == ""


def test_im_fine_after_a_fall_the_outbox_could_not_take_tells_the_hub_nothing():
    rig = Rig("bracelet", imu=Wrist().fall(2 * MIN).at(2 * MIN + 5 * SEC, "worn"))
    rig.run(60 * SEC)
    rig.hub.down = True
    fill_with_alarms(rig, SLOTS, T_FALL_CONFIRMED)
    rig.press(2 * MIN + 6 * SEC, 3500)  # "I'm fine" in the window
    rig.run_until(2 * MIN + 15 * SEC)
    app = rig.app()
    assert app.falls == 1 and not app.window and not app.sos.active(rig.now)
    assert rig.patterns(since=2 * MIN + 9 * SEC)[:1] == ["CANCELLED"]
    assert all(t != T_FALL_CANCELLED for t in app.core.outbox.o_type), "nothing to cancel"
    assert not outbox_full_logs(rig)[1:], "only the FALL_SUSPECTED found no slot"



def _outbox(entries):
    """An outbox holding (type, status) per slot, numbered 1.. in order."""
    ob = bare_outbox(4242)
    for k, (mtype, status) in enumerate(entries):
        ob.put(k, k + 1, mtype, 0, 0, 0)
        ob.o_status[k] = status
    return ob


def test_eviction_follows_what_each_message_may_lose():
    routine = (T_HEARTBEAT, 0)
    stored_cancel = (T_SOS_CANCEL, ACK_STORED)
    new_cancel = (T_FALL_CANCELLED, 0)
    suspected = (T_FALL_SUSPECTED, 0)
    sos_sent = (T_SOS, 0)
    sos_stored = (T_SOS, ACK_STORED)
    fall_delivered = (T_FALL_CONFIRMED, ACK_DELIVERED)
    # Routine first, then the oldest among equals.
    mixed = [sos_sent, stored_cancel, routine, new_cancel, routine, fall_delivered]
    assert _outbox(mixed).victim(T_HEARTBEAT) == 2
    # A stored cancel gives way to anything (the hub keeps it and forwards it first).
    no_routine = [sos_sent, new_cancel, stored_cancel, suspected, stored_cancel, sos_stored]
    assert _outbox(no_routine).victim(T_HEARTBEAT) == 2
    assert _outbox(no_routine).victim(T_SOS) == 2
    # An unstored cancel or suspected fall gives way only to alarm-class messages.
    unstored = [sos_sent, new_cancel, suspected, sos_stored, suspected, sos_sent]
    assert _outbox(unstored).victim(T_HEARTBEAT) == -1
    assert _outbox(unstored).victim(T_TEST) == 1
    assert _outbox(unstored).victim(T_FALL_SUSPECTED) == 1
    # A DELIVERED alarm gives way only to a new SOS / FALL_CONFIRMED (the platform has it).
    alarms = [sos_sent, fall_delivered, sos_stored, sos_sent, sos_sent, sos_stored]
    assert _outbox(alarms).victim(T_SOS_CANCEL) == -1
    assert _outbox(alarms).victim(T_FALL_CONFIRMED) == 1
    # Alarms short of DELIVERED are never evicted.
    assert _outbox([sos_sent, sos_stored] * 3).victim(T_SOS) == -1
    ob = _outbox(mixed)
    assert ob.free_slot(T_SOS) == 2 and ob.o_seq[2] == 0 and ob.evicted == 1
