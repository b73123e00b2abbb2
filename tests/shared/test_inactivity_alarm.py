"""shared/inactivity.py pre-alarm, alarm and clearing; the threshold clamped to floor and
ceiling."""

from inactivity_testing import DAY, H, Home, M

from shared.inactivity import (
    EV_ALARM,
    EV_CLEARED,
    EV_PREALARM,
    SRC_AWAY,
    SRC_DOOR,
    SRC_MOTION,
    SRC_PRESS,
    ST_ALARM,
    ST_IDLE,
    ST_PREALARM,
)


def test_prealarm_then_alarm_then_cleared():
    home = Home()  # fresh: default 12 h
    home.at(0, SRC_MOTION)
    home.idle(12 * H - M)
    assert home.events == []
    assert home.at(12 * H) == EV_PREALARM
    assert home.det.state == ST_PREALARM
    assert home.idle(12 * H + 9 * M) == 0
    assert home.at(12 * H + 10 * M) == EV_ALARM
    assert home.det.state == ST_ALARM
    assert home.idle(20 * H) == 0  # no repeats
    assert home.at(20 * H + 1, SRC_MOTION) == EV_CLEARED
    assert home.det.state == ST_IDLE and home.det.still_ms == 0
    assert home.det.ended_still_ms == 20 * H + 1


def test_zero_prealarm_raises_both_at_once():
    home = Home(default_ms=H, prealarm_ms=0)
    home.at(0, SRC_MOTION)
    assert home.idle(H) == EV_PREALARM | EV_ALARM


def test_late_tick_still_gives_the_full_prealarm_window():
    home = Home(default_ms=H)
    home.at(0, SRC_MOTION)
    assert home.at(3 * H) == EV_PREALARM  # tick came late: pre-alarm only
    assert home.at(3 * H + 9 * M) == 0
    assert home.at(3 * H + 10 * M) == EV_ALARM


def test_movement_in_the_same_call_as_a_due_prealarm_just_clears_nothing():
    home = Home(default_ms=H)
    home.at(0, SRC_MOTION)
    assert home.at(2 * H, SRC_MOTION) == 0


def test_press_clears_and_door_or_away_do_not():
    home = Home(default_ms=H)
    home.at(0, SRC_MOTION)
    home.idle(H + 10 * M)
    assert home.det.state == ST_ALARM
    assert home.at(home.t + M, SRC_DOOR) == 0
    assert home.at(home.t + M, SRC_AWAY) == 0
    assert home.det.state == ST_ALARM
    assert home.at(home.t + M, SRC_PRESS) == EV_CLEARED


def test_floor_and_ceiling_clamp_the_threshold():
    # a home that is never still for long: learned threshold rises no lower than the floor
    home = Home(floor_ms=45 * M, min_days=1)
    t = 0
    while t < 2 * DAY:
        home.at(t, SRC_MOTION)
        t += 5 * M
    assert home.det.threshold_ms == 45 * M
    # a home learned as still for days: the threshold stops at the ceiling
    home = Home(ceiling_ms=3 * H, default_ms=H, min_days=1, days=3)
    home.at(0, SRC_MOTION)
    home.at(40 * H, SRC_MOTION)  # 40 h, cleared long after the alarm
    home.at(40 * H + M, SRC_PRESS)
    assert home.det.threshold_ms <= 3 * H
    # the default is clamped too
    assert Home(ceiling_ms=3 * H).det.threshold_ms == 3 * H
    assert Home(floor_ms=20 * H, default_ms=H).det.threshold_ms == 20 * H
