"""The SOS button app on the simulated side, through realistic scenarios."""

from simkit import HOUR, MIN, SEC, Forger, Rig

from firmware.hal import IN_BUTTON
from shared.frame import (
    ACK_DELIVERED,
    ACK_HELP,
    F_BUTTON_STUCK,
    T_FAULT,
    T_HEARTBEAT,
    T_SOS,
    T_SOS_CANCEL,
    T_TEST,
)


def settle(rig, ms=10 * SEC):
    rig.run(ms)  # power-on: first heartbeat, then deep sleep
    return rig.now


def test_press_sends_sos_at_once_and_until_help():
    rig = Rig("button")
    rig.hub.help_ms = 2 * MIN
    t0 = settle(rig) + 5 * SEC
    rig.press(t0, 200)
    rig.run(10 * MIN)
    sos = rig.frames(T_SOS)
    assert sos, "no SOS heard"
    first = rig.frame_times(T_SOS)[0]
    # Pressed during deep sleep: boot (600 ms) and the first advert; age covers the boot.
    assert first - t0 <= rig.board.boot_ms + 50
    assert sos[0].age_ms == rig.board.boot_ms // 100 * 100
    assert len({f.seq for f in sos}) == 1, "retries keep the number"
    assert [f.attempt for f in sos] == sorted(f.attempt for f in sos)
    acks = [(seq, st) for t, n, seq, st in rig.hub.acks_sent if seq == sos[0].seq]
    assert acks[-1][1] == ACK_HELP
    # After HELP nothing more: the last SOS frame is the one HELP answered.
    last_help = max(t for t, n, seq, st in rig.hub.acks_sent if st == ACK_HELP)
    assert max(rig.frame_times(T_SOS)) < last_help
    pats = rig.patterns(since=t0)
    assert pats[0] == "SENDING"
    for p in ("RECEIVED", "CALLING", "HELP"):
        assert p in pats, pats
    assert pats.index("RECEIVED") < pats.index("CALLING") < pats.index("HELP")
    assert rig.dev.sleeps > 2, "deep sleep between retries"
    assert rig.unique() == ""


def test_short_press_during_boot_is_not_lost():
    rig = Rig("button")
    t0 = settle(rig) + 1000
    rig.press(t0, 80)  # over long before main.py runs (boot 600 ms)
    rig.run(2 * MIN)
    assert len(rig.messages(T_SOS)) == 1


def test_not_delivered_yet_then_keeps_trying():
    rig = Rig("button")
    t0 = settle(rig)
    rig.hub.down = True
    rig.press(t0 + SEC, 200)
    rig.run(3 * MIN)
    pats = rig.patterns(since=t0)
    assert "NOT_DELIVERED" in pats
    nd = [t for t, what, v in rig.plat.traces if what == "pattern" and v == 2]
    assert nd[0] - (t0 + SEC) >= 25 * SEC - 1000, "not before the schedule's 25 s"
    n_before = len(rig.frames(T_SOS))
    assert n_before == 0  # the hub heard nothing while down
    rig.hub.down = False
    rig.run(3 * MIN)
    assert rig.messages(T_SOS), "delivered once the hub is back"
    assert rig.frames(T_SOS)[0].age_ms >= 3 * MIN - 2 * SEC, "the age keeps the true event time"


def test_forged_acknowledgements_change_nothing():
    rig = Rig("button", power_on=False)
    forger = Forger(rig.hub, rig.cfg.device_id, kinds=("key", "device", "replay", "short", "flip"))
    rig.world.medium = forger
    rig.dev.power_on()
    t0 = settle(rig)
    rig.hub.down = True  # only the forger answers
    rig.press(t0 + SEC, 200)
    rig.run(60 * SEC)
    assert forger.writes >= 10
    assert "RECEIVED" not in rig.patterns(since=t0)
    assert "NOT_DELIVERED" in rig.patterns(since=t0), "forgeries did not silence the warning"
    traced = [what for t, what, v in rig.plat.traces]
    assert traced.count("bad_ack") >= 8 and traced.count("stale_ack") >= 2
    forger.active = False  # (one that kept connecting would jam the real hub: a DoS, not a lie)
    rig.hub.down = False
    rig.run(5 * MIN)
    sos = rig.messages(T_SOS)
    assert len(sos) == 1
    assert "RECEIVED" in rig.patterns(since=t0)
    # Real progress only came from the real hub.
    assert any(st == ACK_DELIVERED for t, n, s, st in rig.hub.acks_sent if s == sos[0].seq)


def test_long_press_cancels_the_sos():
    rig = Rig("button")
    t0 = settle(rig) + SEC
    rig.press(t0, 200)  # SOS
    rig.press(t0 + 10 * SEC, 3500)  # hold 3.5 s: cancel
    rig.run(3 * MIN)
    sos = rig.messages(T_SOS)
    cancel = rig.messages(T_SOS_CANCEL)
    assert len(sos) == 1 and len(cancel) == 1
    assert cancel[0].arg == cancel[0].seq - sos[0].seq
    t_cancel = rig.frame_times(T_SOS_CANCEL)[0]
    assert all(t < t_cancel for t in rig.frame_times(T_SOS)), "no SOS after its cancel"
    assert "CANCELLED" in rig.patterns(since=t0)


def test_panic_hold_does_not_cancel_its_own_sos():
    rig = Rig("button")
    t0 = settle(rig) + SEC
    rig.press(t0, 6000)
    rig.run(2 * MIN)
    assert len(rig.messages(T_SOS)) == 1
    assert not rig.messages(T_SOS_CANCEL)


def test_press_during_an_active_sos_replays_status_not_a_second_sos():
    rig = Rig("button")
    t0 = settle(rig) + SEC
    rig.press(t0, 200)
    rig.press(t0 + 20 * SEC, 200)
    rig.run(2 * MIN)
    assert len(rig.messages(T_SOS)) == 1
    assert rig.patterns(since=t0 + 20 * SEC)[0] in ("RECEIVED", "CALLING", "SENDING")


def test_triple_press_is_a_test_that_supersedes_the_sos():
    rig = Rig("button")
    t0 = settle(rig) + SEC
    for k in range(3):  # an easy pace from deep sleep: about one press a second
        rig.press(t0 + k * 900, 150)
    rig.run(3 * MIN)
    sos = rig.messages(T_SOS)
    test = rig.messages(T_TEST)
    assert len(sos) == 1, "SOS went out at the first press: never delayed"
    assert len(test) == 1 and test[0].arg == test[0].seq - sos[0].seq
    t_test = rig.frame_times(T_TEST)[0]
    assert all(t < t_test for t in rig.frame_times(T_SOS)), "the SOS stops once superseded"
    assert "TEST_OK" in rig.patterns(since=t0)


def test_presses_lost_during_boot_fail_safe_as_an_sos():
    # From deep sleep the first ~0.6 s are boot time: a fast triple press loses its
    # second press there. The gesture then is not a test, and the SOS stands (the
    # elder sees it being sent and can cancel it): never a test that hides an alarm.
    rig = Rig("button")
    t0 = settle(rig) + SEC
    for k in range(3):
        rig.press(t0 + k * 300, 120)
    rig.run(2 * MIN)
    assert len(rig.messages(T_SOS)) == 1
    assert not rig.messages(T_TEST)


def test_stuck_button_is_one_fault_not_endless_alarms():
    rig = Rig("button")
    t0 = settle(rig) + SEC
    rig.press(t0, 45 * SEC)
    rig.run(30 * MIN)
    assert len(rig.messages(T_SOS)) == 1
    faults = rig.messages(T_FAULT)
    assert [(f.arg >> 16, (f.arg >> 8) & 0xFF) for f in faults] == [(F_BUTTON_STUCK, 1),
                                                                     (F_BUTTON_STUCK, 0)]
    raised = [t for t, n, f in rig.hub.frames if f.mtype == T_FAULT and (f.arg >> 8) & 1][0]
    assert raised - t0 >= 30 * SEC
    assert rig.dev.sleeps > 2, "no wake loop while it was held"


def test_stuck_through_deep_sleep_clears_on_release():
    rig = Rig("button")
    t0 = settle(rig) + SEC
    rig.press(t0, 10 * MIN)
    rig.run(20 * MIN)
    faults = rig.messages(T_FAULT)
    assert [(f.arg >> 8) & 0xFF for f in faults] == [1, 0]
    cleared = [t for t, n, f in rig.hub.frames if f.mtype == T_FAULT and not (f.arg >> 8) & 1][0]
    assert cleared - (t0 + 10 * MIN) < 5 * SEC, "the release woke it"


def test_heartbeats_through_sleep_wake_cycles():
    rig = Rig("button", heartbeat_min=60)
    rig.run(6 * HOUR + MIN)
    hb = rig.messages(T_HEARTBEAT)
    assert len(hb) == 7  # power-on, then hourly
    times = [rig.frame_times(T_HEARTBEAT)[0]]
    for f in hb[1:]:
        times.append(min(t for t, n, g in rig.hub.frames if g.seq == f.seq))
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(abs(g - HOUR) < 2 * SEC for g in gaps), gaps
    assert [f.seq for f in hb] == sorted(f.seq for f in hb)
    assert rig.dev.sleeps >= 6
    assert rig.plat.nvs_writes <= 2, "one block reservation, not a write per frame"
    # Battery percent and mV in the heartbeat: 3000 mV on 2 alkaline cells.
    assert hb[0].arg & 0xFF == 3000 // 20 and hb[0].arg >> 16 == 90


def test_settings_and_time_arrive_in_acknowledgements_and_survive_sleep():
    from shared.frame import S_HEARTBEAT_MIN

    rig = Rig("button", heartbeat_min=60)
    rig.hub.settings = [(S_HEARTBEAT_MIN, 20)]
    rig.run(2 * HOUR)
    hb = rig.frame_times(T_HEARTBEAT)
    firsts = sorted({min(t for t, n, f in rig.hub.frames if f.seq == g.seq)
                     for g in rig.messages(T_HEARTBEAT)})
    gaps = [b - a for a, b in zip(firsts, firsts[1:], strict=False)]
    assert gaps and all(abs(g - 20 * MIN) < 3 * SEC for g in gaps), gaps
    assert rig.plat.nvs.get("hb_min") == 20, "kept in NVS for after a power loss"
    assert len(hb) >= 6


def test_low_battery_warns_hub_and_elder_quietly_at_night():
    rig = Rig("button", low_battery_pct=20)
    rig.plat.battery_mv = 2300  # 1.15 V per alkaline cell: ~20 %
    rig.hub.tod_s = 23 * 3600  # 23:00, inside the default quiet hours
    rig.run(2 * HOUR + MIN)
    from shared.frame import T_LOW_BATTERY

    low = rig.messages(T_LOW_BATTERY)
    assert len(low) == 1, "once a day to the hub"
    hb = rig.messages(T_HEARTBEAT)
    assert all((f.arg >> 8) & 4 for f in hb), "every heartbeat carries the low flag"
    assert rig.patterns().count("LOW_BATTERY") >= 2
    # At night the chirps are light only (the first heartbeat came before the clock did).
    night = [t for t, what, v in rig.plat.outputs if what == "tone" and v and t > 30 * MIN]
    assert not night


def test_safe_boot_skips_the_app():
    rig = Rig("button", power_on=False)
    rig.plat.inputs[IN_BUTTON].pulse(0, 10_500)  # the SOS button: 10 s (firmware/safeboot.py)
    rig.dev.power_on(0)
    rig.run(MIN)
    assert rig.dev.state == "safe"
    assert not rig.hub.frames


def test_button_held_briefly_at_power_up_is_a_press():
    rig = Rig("button", power_on=False)
    rig.plat.inputs[IN_BUTTON].pulse(0, 1500)
    rig.dev.power_on(0)
    rig.run(MIN)
    assert rig.dev.state != "safe"
    assert len(rig.messages(T_SOS)) == 1


def test_watchdog_reset_is_reported_and_numbering_skips_ahead():
    from firmware.hal import WAKE_WATCHDOG
    from shared.frame import F_WATCHDOG_RESET

    rig = Rig("button")
    rig.run(MIN)
    before = max(f.seq for f in rig.frames())
    rig.dev._reset(WAKE_WATCHDOG, rig.now)
    rig.run(MIN)
    faults = rig.messages(T_FAULT)
    assert faults and faults[0].arg >> 16 == F_WATCHDOG_RESET
    assert faults[0].seq > before
    assert rig.unique() == ""



def test_hub_prealarm_calls_out_on_the_device_for_its_minutes():
    from shared.frame import S_PREALARM

    rig = Rig("button")
    rig.hub.settings.append((S_PREALARM, 7))  # rides on the power-on heartbeat's ack
    rig.run(30 * SEC)
    assert "PREALARM" in rig.patterns(since=0)
    assert rig.dev.app is not None and rig.dev.app.fb.pattern[0] >> 4 == 13  # still calling
    rig.run(8 * MIN)
    assert rig.dev.sleeps >= 1  # over after its minutes: back to deep sleep
    assert rig.unique() == ""


def test_identify_blinks_for_its_seconds_at_the_next_contact():
    from shared.frame import S_IDENTIFY

    rig = Rig("button")
    rig.hub.settings.append((S_IDENTIFY, 20))  # rides on the power-on heartbeat's ack
    rig.run(10 * SEC)
    assert "IDENTIFY" in rig.patterns(since=0)
    assert rig.dev.app is not None and rig.dev.app.fb.pattern[0] >> 4 == 14  # still showing
    rig.run(MIN)
    assert rig.dev.sleeps >= 1  # over after its seconds: back to deep sleep
    assert rig.patterns(since=0).count("IDENTIFY") == 1, "once, not at every contact"


def test_identify_never_covers_an_alarm_the_elder_is_watching():
    from shared.frame import S_IDENTIFY

    rig = Rig("button")
    rig.run(MIN)
    start = rig.now
    rig.press(rig.now + SEC)  # an SOS: SENDING, then the statuses climb
    rig.hub.settings.append((S_IDENTIFY, 20))  # arrives with the SOS's STORED ack
    rig.run(10 * SEC)
    seen = rig.patterns(since=start)
    assert "RECEIVED" in seen and "IDENTIFY" not in seen, seen
    assert rig.unique() == ""
