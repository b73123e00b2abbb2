"""The bracelet app on the simulated side: falls, the cancel window, worn / not worn."""

from simkit import MIN, SEC, Rig

from shared.frame import (
    ACK_HELP,
    F_IMU,
    S_CANCEL_S,
    T_ACTIVITY,
    T_FALL_CANCELLED,
    T_FALL_CONFIRMED,
    T_FALL_SUSPECTED,
    T_FAULT,
    T_HEARTBEAT,
    T_NOT_WORN,
    T_SOS,
    T_WORN,
)


def _noise(t, amp):
    """Deterministic integer noise in [-amp, amp] from the sample time."""
    x = (t * 1103515245 + 12345) & 0x7FFFFFFF
    return (x >> 8) % (2 * amp + 1) - amp


class Wrist:
    """An accelerometer signal (milli-g): worn, lying on a table, falling, lying on the floor."""

    def __init__(self):
        self.segments = [(0, "worn")]  # (from t, mode), sorted

    def at(self, t, mode):
        self.segments.append((t, mode))
        self.segments.sort()
        return self

    def fall(self, t, after="floor"):
        return self.at(t - 400, "freefall").at(t, "impact").at(t + 60, "bounce").at(t + 700, after)

    def __call__(self, t):
        mode = "worn"
        for t0, m in self.segments:
            if t0 <= t:
                mode = m
        n = _noise(t, 8)
        if mode == "worn":  # a gesture of ~150 mg every 3 s
            g = 150 if (t // 500) % 6 == 0 else 0
            return (n + g, _noise(t + 7, 8), 1000 + _noise(t + 13, 8) - g // 2)
        if mode == "table":
            return (_noise(t, 4), _noise(t + 7, 4), 1000 + _noise(t + 13, 4))
        if mode == "freefall":
            return (n, 0, 200)
        if mode == "impact":
            return (2500, 800, 3500)
        if mode == "bounce":
            return (800 + _noise(t, 800), _noise(t + 3, 600), 500 + _noise(t + 5, 800))
        if mode == "sitdown":  # a hard landing in a chair: one spike, then life goes on
            return (400, 300, 2700)
        return (1000 + n, _noise(t + 7, 8), _noise(t + 13, 8))  # floor: gravity along x


def rig_with(wrist, **kw):
    return Rig("bracelet", imu=wrist, **kw)


def test_fall_opens_the_window_then_sends_fall():
    w = Wrist().fall(2 * MIN)
    rig = rig_with(w)
    rig.hub.help_ms = 90 * SEC
    rig.run(6 * MIN)
    susp = rig.messages(T_FALL_SUSPECTED)
    conf = rig.messages(T_FALL_CONFIRMED)
    assert len(susp) == 1 and len(conf) == 1
    peak_dg = susp[0].arg >> 16
    assert peak_dg >= 40, "peak in 0.1 g"
    assert (susp[0].arg >> 8) & 0xFF == 20, "cancel window (default 20 s) in the frame"
    assert conf[0].arg == conf[0].seq - susp[0].seq
    t_susp = min(t for t, n, f in rig.hub.frames if f.mtype == T_FALL_SUSPECTED)
    t_conf = min(t for t, n, f in rig.hub.frames if f.mtype == T_FALL_CONFIRMED)
    assert t_susp - 2 * MIN < 5 * SEC, "detected within the stillness time + one FIFO batch"
    assert 20 * SEC <= t_conf - t_susp <= 22 * SEC
    pats = rig.patterns(since=2 * MIN)
    assert pats[0] == "FALL_WINDOW" and "HELP" in pats
    assert any(st == ACK_HELP for t, n, s, st in rig.hub.acks_sent if s == conf[0].seq)


def test_fall_cancelled_in_the_window():
    w = Wrist().fall(2 * MIN)
    rig = rig_with(w)
    rig.press(2 * MIN + 8 * SEC, 3500)  # "I'm fine": hold 3 s
    rig.run(4 * MIN)
    susp = rig.messages(T_FALL_SUSPECTED)
    canc = rig.messages(T_FALL_CANCELLED)
    assert len(susp) == 1 and len(canc) == 1
    assert canc[0].arg == canc[0].seq - susp[0].seq
    assert not rig.messages(T_FALL_CONFIRMED)
    assert not rig.messages(T_SOS), "the press in the window is not an SOS"
    assert "CANCELLED" in rig.patterns(since=2 * MIN)


def test_im_fine_shows_sending_until_the_hub_has_it():
    # As an SOS cancel does: the wearer is never left in silence after the hold. It used to
    # play nothing until "not delivered yet" 25 s later (the hub down here).
    rig = rig_with(Wrist().fall(2 * MIN))
    rig.run_until(2 * MIN - 10 * SEC)
    rig.hub.down = True
    hold_at = 2 * MIN + 8 * SEC
    rig.press(hold_at, 3500)  # "I'm fine"
    rig.run_until(2 * MIN + 40 * SEC)
    assert rig.app().sos.cancel_seq, "FALL_CANCELLED queued"
    after = rig.patterns(since=hold_at + 3 * SEC)
    assert after[:1] == ["SENDING"], after


def test_short_press_in_the_window_calls_help_now():
    w = Wrist().fall(2 * MIN)
    rig = rig_with(w)
    rig.press(2 * MIN + 6 * SEC, 200)
    rig.run(3 * MIN)
    t_susp = min(t for t, n, f in rig.hub.frames if f.mtype == T_FALL_SUSPECTED)
    t_conf = min(t for t, n, f in rig.hub.frames if f.mtype == T_FALL_CONFIRMED)
    assert t_conf - t_susp < 10 * SEC


def test_cancel_window_is_a_hub_setting():
    w = Wrist().fall(3 * MIN)
    rig = rig_with(w)
    rig.hub.settings = [(S_CANCEL_S, 10)]
    rig.run(5 * MIN)
    susp = rig.messages(T_FALL_SUSPECTED)
    assert (susp[0].arg >> 8) & 0xFF == 10
    t_susp = min(t for t, n, f in rig.hub.frames if f.mtype == T_FALL_SUSPECTED)
    t_conf = min(t for t, n, f in rig.hub.frames if f.mtype == T_FALL_CONFIRMED)
    assert 10 * SEC <= t_conf - t_susp <= 12 * SEC


def test_hard_sit_down_is_not_a_fall():
    w = Wrist().at(2 * MIN, "sitdown").at(2 * MIN + 40, "worn")
    rig = rig_with(w)
    rig.run(4 * MIN)
    assert not rig.messages(T_FALL_SUSPECTED)


def test_not_worn_then_worn_again():
    w = Wrist().at(MIN, "table").at(70 * MIN, "worn")
    rig = rig_with(w, not_worn_min=60, heartbeat_min=5)
    rig.run(76 * MIN)
    nw = rig.messages(T_NOT_WORN)
    assert len(nw) == 1
    t_nw = min(t for t, n, f in rig.hub.frames if f.mtype == T_NOT_WORN)
    assert 60 * MIN <= t_nw <= 61 * MIN + 5 * SEC  # 60 min after the last movement
    assert len(rig.messages(T_WORN)) == 1
    worn_flag = {}
    for t, _n, f in rig.hub.frames:
        if f.mtype == T_HEARTBEAT:
            worn_flag.setdefault(f.seq, (t, (f.arg >> 8) & 2))
    flags = sorted(worn_flag.values())
    assert [w for t, w in flags if 62 * MIN < t < 70 * MIN] == [0], "not worn in the heartbeat"
    assert [w for t, w in flags if t > 71 * MIN] == [2], "worn again"


def test_activity_summaries_count_active_seconds():
    rig = rig_with(Wrist().at(20 * MIN, "table"), summary_min=15)
    rig.run(31 * MIN)
    act = [(f.arg >> 8, f.arg & 0xFF) for f in rig.messages(T_ACTIVITY)]
    assert len(act) == 2 and all(m == 15 for _n, m in act)
    assert act[0][0] > 100, "a gesture every 3 s: about a third of the seconds"
    assert act[1][0] < act[0][0], "on the table after 20 min"


def test_sos_button_on_the_bracelet():
    rig = rig_with(Wrist())
    rig.press(MIN, 200)
    rig.run(2 * MIN)
    assert len(rig.messages(T_SOS)) == 1
    assert rig.plat.energy["deep"] == 0, "the bracelet never deep-sleeps (fall detection)"
    assert rig.plat.energy["light"] > 0.8 * 2 * MIN


def test_missing_imu_is_a_fault_and_sos_still_works():
    rig = Rig("bracelet")  # no imu_fn: the sensor does not answer
    rig.press(30 * SEC, 200)
    rig.run(MIN)
    faults = rig.messages(T_FAULT)
    assert faults and faults[0].arg >> 16 == F_IMU
    assert len(rig.messages(T_SOS)) == 1


def test_charging_means_not_worn_and_no_falls():
    w = Wrist().fall(3 * MIN)
    rig = rig_with(w)
    rig.plat.ext_power = True
    rig.run(5 * MIN)
    assert not rig.messages(T_FALL_SUSPECTED)
    assert rig.messages(T_NOT_WORN)
    hb = rig.messages(T_HEARTBEAT)
    assert (hb[0].arg >> 8) & 1, "charging flag"
