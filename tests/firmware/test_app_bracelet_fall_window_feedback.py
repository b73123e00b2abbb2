"""Nothing replaces FALL_WINDOW while the fall cancel window is open.

Review finding 6: the hub's whole-home pre-alarm rides on every acknowledgement, and
common.py on_prealarm played it unconditionally: 0.8 s into the window FALL_WINDOW was
replaced by PREALARM and the wearer no longer heard that a cancel window was open; the
"not delivered yet" of an older alarm could do the same. FALL_WINDOW now holds the
feedback (firmware/feedback.py F_HOLD) until the window ends.
"""

from simkit import MIN, SEC, Rig
from test_app_bracelet import Wrist

from firmware.feedback import F_HOLD, NAMES, P_FALL_WINDOW, P_PREALARM, P_SENDING, Feedback
from shared.frame import S_PREALARM, T_FALL_CANCELLED, T_FALL_CONFIRMED, T_FALL_SUSPECTED

FALL_WINDOW = NAMES.index("FALL_WINDOW")
CANCEL_MS = 20 * SEC  # cancel_s default


def window_trace(rig):
    """(ms since FALL_SUSPECTED went on the air, pattern name) from the fall on."""
    t_fs = min(t for t, _n, f in rig.hub.frames if f.mtype == T_FALL_SUSPECTED)
    return t_fs, [(t - t_fs, NAMES[v]) for t, what, v in rig.plat.traces
                  if what == "pattern" and t >= t_fs - 10]


def test_prealarm_on_the_acknowledgements_does_not_cover_the_window():
    # The reviewer's demo (d6): a pre-alarm runs for the home when the wearer falls.
    rig = Rig("bracelet", imu=Wrist().fall(2 * MIN))
    rig.run_until(2 * MIN - 100)
    rig.hub.settings = [(S_PREALARM, 10)] * 3
    rig.run_until(2 * MIN + 40 * SEC)
    t_fs, trace = window_trace(rig)
    inside = [name for dt, name in trace if dt < CANCEL_MS - 100]
    assert inside == ["FALL_WINDOW"], trace
    assert len(rig.messages(T_FALL_CONFIRMED)) == 1
    after = [name for dt, name in trace if dt >= CANCEL_MS - 100]
    assert after and after[0] == "SENDING", "the window ends into the confirmed fall's SENDING"


def test_not_delivered_of_an_older_alarm_waits_for_the_window_to_end():
    # An SOS the hub never hears is overdue ("not delivered yet" every 30 s) when the
    # wearer falls: inside the window only FALL_WINDOW plays.
    rig = Rig("bracelet", imu=Wrist().fall(2 * MIN))
    rig.run(10 * SEC)
    rig.hub.down = True
    rig.press(2 * MIN - 40 * SEC, 200)  # SOS at 1:20, overdue from 1:45
    rig.run_until(3 * MIN + 10 * SEC)
    fs_on_air = [t for t, what, v in rig.plat.traces if what == "pattern" and v == FALL_WINDOW]
    assert fs_on_air, "the fall opened the window"
    t0 = fs_on_air[0]
    inside = [NAMES[v] for t, what, v in rig.plat.traces
              if what == "pattern" and t0 <= t < t0 + CANCEL_MS - 100]
    assert inside == ["FALL_WINDOW"], inside
    later = [NAMES[v] for t, what, v in rig.plat.traces
             if what == "pattern" and t0 + CANCEL_MS - 100 <= t < t0 + CANCEL_MS + 40 * SEC]
    assert "NOT_DELIVERED" in later, "it comes once the window is over"


def test_the_window_still_ends_by_hold_press_or_timeout():
    for action, want in (("hold", T_FALL_CANCELLED), ("press", T_FALL_CONFIRMED)):
        rig = Rig("bracelet", imu=Wrist().fall(2 * MIN))
        rig.run_until(2 * MIN - 100)
        rig.hub.settings = [(S_PREALARM, 10)] * 3
        rig.run_until(2 * MIN + 5 * SEC)
        rig.press(rig.now + 100, 3500 if action == "hold" else 200)
        rig.run(MIN)
        assert len(rig.messages(want)) == 1, action
        pats = rig.patterns(since=2 * MIN + 5 * SEC)
        assert "FALL_WINDOW" not in pats, "the window pattern stopped"
        assert pats, "and what follows plays"


class Hal:
    def __init__(self):
        self.out = []

    def trace(self, what, v):
        self.out.append(v)

    def led(self, on):
        pass

    def vibrate(self, on):
        pass

    def tone(self, t):
        pass


def test_feedback_hold_refuses_other_patterns_until_stop_or_its_end():
    assert P_FALL_WINDOW[0] & F_HOLD and not P_PREALARM[0] & F_HOLD
    fb = Feedback(Hal())
    assert fb.play(P_FALL_WINDOW, 0, 3000) is True
    assert fb.play(P_PREALARM, 500, 60000) is False and fb.pattern is P_FALL_WINDOW
    assert fb.play(P_FALL_WINDOW, 600, 3000) is True, "itself: restarted"
    for t in range(600, 5000, 10):
        fb.step(t)
    assert not fb.busy, "its own end releases the hold"
    assert fb.play(P_SENDING, 5000) is True
    fb.play(P_FALL_WINDOW, 6000, 3000)
    fb.stop()
    assert fb.play(P_PREALARM, 6100, 1000) is True
