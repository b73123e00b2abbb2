"""The PIR app on the simulated side: warm-up, summaries, first motion after stillness, faults."""

from simkit import HOUR, MIN, SEC, Rig

from shared.frame import F_PIR_SILENT, F_PIR_STUCK, T_ACTIVITY, T_FAULT, T_HEARTBEAT, T_MOTION


def activity(rig):
    return [(f.arg >> 8, f.arg & 0xFF) for f in rig.messages(T_ACTIVITY)]


def test_warm_up_is_ignored_then_summaries_every_interval():
    rig = Rig("pir", summary_min=15)
    for t in (10 * SEC, 30 * SEC):  # warm-up: the HC-SR501 / AM312 output means nothing yet
        rig.motion(t)
    for t in (2 * MIN, 4 * MIN, 9 * MIN, 20 * MIN):
        rig.motion(t)
    rig.run(32 * MIN)
    # Intervals start at the end of warm-up (60 s): 1..16 min, 16..31 min.
    assert activity(rig) == [(3, 15), (1, 15)]
    t_first = min(t for t, n, f in rig.hub.frames if f.mtype == T_ACTIVITY)
    assert abs(t_first - (MIN + 15 * MIN)) < 3 * SEC, "sent when the interval closes"
    assert rig.messages(T_ACTIVITY)[0].age_ms < 3 * SEC
    boots = rig.plat.counts["boots"]
    assert boots <= 1 + 2 + 4 + 3, "one boot per motion (pulses waited out in light sleep)"


def test_someone_moving_in_view_all_interval_long_is_motion_in_it():
    # Review finding: a retriggering sensor held high by someone cooking in view gave one
    # edge, then summaries of 0 motions: the hub counted the time as stillness.
    rig = Rig("pir", summary_min=15)
    rig.motion(2 * MIN, 25 * MIN)  # high 2 -> 27 min
    rig.run(50 * MIN)
    # intervals 1..16 (the edge), 16..31 (high until 27), 31..46 (nobody)
    assert activity(rig)[:3] == [(1, 15), (1, 15), (0, 15)]
    assert not rig.messages(T_FAULT), "25 min high is a person, not a stuck sensor"


def test_first_motion_after_a_long_still_period_is_sent_at_once():
    rig = Rig("pir", still_min=30)
    rig.motion(2 * MIN)
    rig.motion(50 * MIN)
    rig.run(55 * MIN)
    m = rig.messages(T_MOTION)
    assert len(m) == 1
    assert m[0].arg >= 45  # minutes still before it (the first motion's pulse fell at 2 min + 2 s)
    t = min(t for t, n, f in rig.hub.frames if f.mtype == T_MOTION)
    assert t - 50 * MIN < 2 * SEC


def test_stuck_high_output_is_a_fault_and_clears():
    rig = Rig("pir")
    rig.motion(5 * MIN, 40 * MIN)  # held high 40 min
    rig.run(50 * MIN)
    faults = [(f.arg >> 16, (f.arg >> 8) & 0xFF) for f in rig.messages(T_FAULT)]
    assert faults == [(F_PIR_STUCK, 1), (F_PIR_STUCK, 0)]
    raised = min(t for t, n, f in rig.hub.frames if f.mtype == T_FAULT)
    assert 35 * MIN - 2 * SEC <= raised <= 35 * MIN + 5 * SEC
    assert rig.dev.sleeps > 3, "no wake loop on a high output"


def test_a_sensor_that_never_fires_is_reported():
    rig = Rig("pir")
    rig.run(49 * HOUR)
    faults = [(f.arg >> 16, (f.arg >> 8) & 0xFF) for f in rig.messages(T_FAULT)]
    assert faults == [(F_PIR_SILENT, 1)]
    assert len(rig.messages(T_HEARTBEAT)) >= 48
    assert all(n == 0 for n, _m in activity(rig))
    # Deep sleep nearly all the time: energy is the point of this device.
    e = rig.plat.energy
    assert e["deep"] > 0.99 * 49 * HOUR
    rig.motion(rig.now + MIN)
    rig.run(5 * MIN)
    faults = [(f.arg >> 16, (f.arg >> 8) & 0xFF) for f in rig.messages(T_FAULT)]
    assert faults[-1] == (F_PIR_SILENT, 0)
    assert rig.unique() == ""


def test_mains_board_with_hcsr501_on_ext0():
    rig = Rig("pir", board="esp32-devkit-pir-hcsr501")
    rig.motion(3 * MIN, 5000)
    rig.run(20 * MIN)
    hb = rig.messages(T_HEARTBEAT)
    assert hb and (hb[0].arg >> 8) & 8, "external power flag"
    assert hb[0].arg >> 16 == 0 and hb[0].arg & 0xFF == 0, "no battery to report"
    assert activity(rig) == [(1, 15)]
