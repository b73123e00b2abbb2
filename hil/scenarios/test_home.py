"""The home watching over her: stillness, falls, devices that go quiet, and a week of life."""

from __future__ import annotations

import pytest

from hil.rig import Unsupported

MIN = 60_000
HOUR = 60 * MIN
STILL = {"default_min": 60, "prealarm_min": 10}  # a new home: 60 min still -> pre-alarm


def _live_a_while(s, minutes: int) -> None:
    """She moves about in front of the PIR every 3-5 minutes."""
    end = s.now() + minutes * MIN
    k = 0
    while s.now() < end:
        s.motion("pir")
        s.run((3 + k % 3) * MIN)
        k += 1


@pytest.mark.timeout(4 * 3600)
def test_pir_stillness_prealarm_alarm_then_cancelled_by_motion(open_home):
    s = open_home(("pir",), clock="virtual", inactivity=STILL)
    s.run(2 * MIN)  # the PIR's 60 s warm-up
    _live_a_while(s, 120)
    still_from = s.now()
    s.until(lambda: s.inactivity() == "prealarm", 100 * MIN, "the hub's pre-alarm", MIN)
    prealarm_at = s.now()
    assert not s.events("automatic_alarm", since=still_from), "pre-alarm first"
    ref, alarm, _t = s.wait_event("automatic_alarm", cause="inactivity", since=prealarm_at,
                                  timeout_ms=20 * MIN, step_ms=10_000)
    s.metrics.notes.append(f"still {(prealarm_at - still_from) / MIN:.0f} min -> pre-alarm, "
                           f"alarm {(_t - prealarm_at) / MIN:.0f} min later")
    s.operator_ack(ref)  # the operator takes it (else the hub repeats it every 5 min)
    s.run(3 * MIN)
    t = s.motion("pir")
    cref, cancel, _t = s.wait_event("cancel", since=t, timeout_ms=5 * MIN, step_ms=1000)
    assert cancel["cancels"] == ref
    s.until(lambda: s.inactivity() == "idle", MIN, "idle again")
    # Again, but she moves during the pre-alarm: no alarm at all.
    _live_a_while(s, 120)
    s.until(lambda: s.inactivity() == "prealarm", 100 * MIN, "the second pre-alarm", MIN)
    t = s.motion("pir")
    s.until(lambda: s.inactivity() == "idle", 5 * MIN, "the pre-alarm answered by motion", 1000)
    s.run(20 * MIN)
    assert len(s.events("automatic_alarm")) == 1
    s.metrics.expected, s.metrics.delivered = 2, len(s.events(("automatic_alarm", "cancel")))
    s.metrics.duplicates = s.duplicates


@pytest.mark.parametrize("answer", ["none", "cancel"])
def test_bracelet_fall(open_home, answer):
    """A fall: FALL_SUSPECTED reaches the platform at once; with no answer the cancel window
    (20 s) ends in a confirmed fall alarm, which the operator acknowledges (HELP on the
    wrist); held 3 s in the window it is cancelled instead ("I'm fine")."""
    s = open_home(("bracelet",), clock="virtual")
    s.run(5000)
    t = s.fall("bracelet")
    sref, _e, arrived = s.wait_event("automatic_alarm", "bracelet", since=t, cause="fall_suspected",
                                     timeout_ms=10_000, step_ms=50)
    s.metrics.notes.append(f"impact -> platform {arrived - t:.0f} ms (fall_suspected)")
    s.until(lambda: "FALL_WINDOW" in s.patterns("bracelet", t), 5000, "FALL_WINDOW on the wrist")
    if answer == "cancel":
        s.run(3000)
        s.hold("bracelet", 3500)
        cref, cancel, _t = s.wait_event("cancel", "bracelet", since=t, timeout_ms=15_000)
        assert cancel["cancels"] == sref
        s.run(40_000)
        assert not s.events("automatic_alarm", "bracelet", since=t, cause="fall")
        s.metrics.expected = 2
    else:
        fref, fall, _t = s.wait_event("automatic_alarm", "bracelet", since=t, cause="fall",
                                      timeout_ms=40_000)
        assert fall["cancels"] == sref, "the confirmed fall supersedes its early warning"
        s.operator_ack(fref)
        s.until(lambda: "HELP" in s.patterns("bracelet", t), 60_000, "HELP on the wrist")
        s.metrics.expected = 2
    s.metrics.delivered = len(s.events(("automatic_alarm", "cancel"), "bracelet", since=t))
    s.metrics.duplicates = s.duplicates
    assert s.metrics.delivered == 2


@pytest.mark.parametrize("how", ["power", "range"])
def test_device_offline_detected_and_restored(open_home, how):
    """A button stops reporting (battery out, or carried out of range): after two missed
    heartbeats and the grace time the platform hears supervision_missing and the device's
    availability goes offline; when it reports again, supervision_restored and online."""
    s = open_home(("button",), clock="virtual", device_cfg={"button": {"heartbeat_min": 5}})
    s.until(lambda: s.availability("button") is True, 2 * MIN, "the button online")
    s.run(10 * MIN)
    t = s.now()
    if how == "power":
        s.power("button", False)
    else:
        s.out_of_range("button", True)
    ref, _e, gone = s.wait_event("supervision_missing", since=t, timeout_ms=40 * MIN,
                                 step_ms=10_000)
    assert s.availability("button") is False
    s.metrics.notes.append(f"missing after {(gone - t) / MIN:.0f} min (heartbeat 5 min)")
    t = s.now()
    if how == "power":
        s.power("button", True)
    else:
        s.out_of_range("button", False)
    s.wait_event("supervision_restored", since=t, timeout_ms=10 * MIN, step_ms=1000)
    assert s.availability("button") is True
    s.metrics.expected, s.metrics.delivered = 2, len(
        s.events(("supervision_missing", "supervision_restored")))
    s.metrics.duplicates = s.duplicates


@pytest.mark.timeout(600)
def test_a_week_at_home(open_home):
    """Seven days of a resident's routine (hil/sim/resident.py) on the virtual clock: the hub
    learns the home's stillness and raises no inactivity alarm; an accidental double press
    gives ONE alarm, cancelled by her 20 s later; the button's batteries run down to a
    battery_low; no device is ever reported missing."""
    s = open_home(("button", "pir"), clock="virtual", tick_ms=60_000)
    if not hasattr(s, "home"):
        raise Unsupported("needs the simulated home's resident")
    from hil.sim.resident import DAY, Resident

    r = Resident(s.home, pirs={"living room": "pir"}, drain_mv_per_day={"button": 115})
    r.live_until(2 * DAY + 3 * HOUR)  # Wednesday 10:00
    s.wait_asleep("button")
    t = s.double_press("button")
    ref, _e, _t = s.wait_event("manual_alarm", "button", since=t)
    s.run(20_000)
    s.hold("button", 3500)
    s.wait_event("cancel", "button", since=t, timeout_ms=30_000)
    s.operator_ack(ref)
    r.live_until(7 * DAY)
    types = [e["type"] for _r, e, _t in s.events()]
    assert types.count("manual_alarm") == 1 and types.count("cancel") == 1
    assert not s.events("automatic_alarm"), "no false inactivity alarm in a normal week"
    assert not s.events("supervision_missing")
    low = s.events("battery_low", "button")
    assert low, "the batteries ran down: battery_low"
    det = s.hub.core.home.detector
    s.metrics.notes.append(f"battery_low on day {low[0][2] / DAY:.1f}; {det.learned_days} days "
                           f"learned; threshold now {det.threshold_ms / HOUR:.1f} h")
    s.metrics.expected, s.metrics.delivered = 2, types.count("manual_alarm") + types.count(
        "cancel")
    s.metrics.duplicates = s.duplicates


@pytest.mark.timeout(300)
def test_leaving_home_with_the_bracelet_suspends_the_inactivity_alarm(open_home):
    """She goes out (the bracelet leaves the hub's range): after 15 min the hub counts her
    away, and two hours of an empty, still home raise no pre-alarm; back home, the first
    motion ends the away state."""
    s = open_home(("pir", "bracelet"), clock="virtual", inactivity=STILL)
    s.run(2 * MIN)
    _live_a_while(s, 30)
    s.out_of_range("bracelet", True)
    s.until(lambda: s.inactivity() == "away", 30 * MIN, "the hub's away state", MIN)
    s.run(120 * MIN)
    assert s.inactivity() == "away"
    assert not s.events("automatic_alarm"), "nobody home: no inactivity alarm"
    s.out_of_range("bracelet", False)
    s.run(MIN)
    s.motion("pir")
    s.until(lambda: s.inactivity() == "idle", 20 * MIN, "home again", 10_000)
    s.metrics.notes.append("away after the bracelet was gone 15 min; no alarm in 2 h away")
