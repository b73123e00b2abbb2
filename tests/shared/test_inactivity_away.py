"""shared/inactivity.py away: from the door or an explicit source, suppressing alarms for at
most away_max, never alarming sooner than home would, ended by a return."""

import random

from inactivity_testing import DAY, H, Home, M, history, routine_day, threshold_at

from shared.inactivity import (
    EV_ALARM,
    EV_AWAY,
    EV_CLEARED,
    EV_HOME,
    EV_PREALARM,
    SRC_AWAY,
    SRC_DOOR,
    SRC_MOTION,
    SRC_PRESS,
    ST_ALARM,
    ST_AWAY,
    ST_IDLE,
)
from shared.inactivity_profile import NO_DATA


def test_door_after_movement_then_quiet_goes_away_and_suppresses():
    home = Home(days=3, away_max_ms=144 * H)
    home.at(10 * H, SRC_MOTION)
    home.at(10 * H + M, SRC_DOOR)  # opened
    home.at(10 * H + 2 * M, SRC_DOOR)  # closed: restarts the wait
    assert home.idle(10 * H + 11 * M) == 0
    assert home.at(10 * H + 12 * M) == EV_AWAY
    assert home.det.state == ST_AWAY
    assert home.idle(3 * DAY, step=5 * M) == 0  # three days out: nothing
    assert home.at(3 * DAY + M, SRC_MOTION) == EV_HOME
    assert home.det.state == ST_IDLE and home.det.still_ms == 0
    h, _ = history(home.det)
    assert all(b == 0xFF for b in h[: 2 * 96])  # the away days were not learned


def test_away_never_silences_for_longer_than_away_max():
    # a collapse just after the door looks like leaving: the alarm still comes, at
    # away_max_ms of stillness (default 24 h), and the away time is never learned
    home = Home(days=3)
    home.at(10 * H, SRC_MOTION)
    home.at(10 * H + M, SRC_DOOR)
    home.idle(10 * H + 12 * M)
    assert home.det.state == ST_AWAY
    home.idle(DAY + 11 * H, step=M)
    assert home.first(EV_PREALARM) == DAY + 10 * H
    assert home.first(EV_ALARM) == DAY + 10 * H + 10 * M
    assert home.at(DAY + 11 * H + M, SRC_MOTION) == EV_CLEARED
    h, _ = history(home.det)
    slots = [h[i] | h[i + 1] << 8 for i in range(0, len(h), 2)]
    assert max(v for v in slots if v != NO_DATA) <= 600  # only the 10 h before the door
    # with a bracelet (explicit away) too: a flat battery must not silence forever
    home = Home(door_away=False, away_max_ms=2 * H, default_ms=H)
    home.at(0, SRC_MOTION)
    home.at(M, SRC_AWAY)
    home.idle(3 * H)
    assert home.first(EV_PREALARM) == 2 * H and home.det.state == ST_ALARM


def test_away_never_alarms_sooner_than_home_would():
    # the platform set a short away limit, but the home's own line is longer: being "away"
    # must not turn a normal still spell into an alarm
    home = Home(door_away=False, away_max_ms=H, default_ms=12 * H)
    home.at(0, SRC_MOTION)
    home.at(M, SRC_AWAY)
    home.idle(13 * H)
    assert home.first(EV_PREALARM) == 12 * H


def test_movement_after_the_door_cancels_away():
    home = Home()
    home.at(H, SRC_MOTION)
    home.at(H + M, SRC_DOOR)
    home.at(H + 5 * M, SRC_MOTION)
    assert home.idle(3 * H) == 0
    assert home.det.state == ST_IDLE


def test_door_on_a_still_home_is_not_leaving():
    # collapsed at 10:00; a visitor opens the door at 12:00 and leaves: still alarms
    home = Home(default_ms=3 * H)
    home.at(10 * H, SRC_MOTION)
    home.idle(12 * H)
    home.at(12 * H + 1, SRC_DOOR)
    home.at(12 * H + 2 * M, SRC_DOOR)
    home.idle(14 * H)
    assert home.first(EV_AWAY) is None
    assert home.first(EV_ALARM) == 13 * H + 10 * M


def test_door_while_away_is_a_return_and_a_collapse_behind_it_alarms():
    home = Home(default_ms=3 * H)
    home.at(0, SRC_MOTION)
    home.at(M, SRC_AWAY)
    assert home.det.state == ST_AWAY
    assert home.at(5 * H, SRC_DOOR) == EV_HOME  # comes back in ...
    home.at(5 * H + M, SRC_DOOR)  # ... closes the door: no sign of life, no away
    home.idle(9 * H)
    assert home.first(EV_AWAY, since=2 * M) is None
    assert home.first(EV_PREALARM) == 8 * H


def test_away_source_is_immediate_and_door_away_can_be_disabled():
    home = Home(door_away=False)
    home.at(H, SRC_MOTION)
    home.at(H + M, SRC_DOOR)
    home.idle(2 * H)
    assert home.det.state == ST_IDLE
    assert home.at(2 * H + 1, SRC_AWAY) == EV_AWAY
    assert home.at(2 * H + 2, SRC_AWAY) == 0
    assert home.at(3 * H, SRC_PRESS) == EV_HOME


def test_going_out_with_the_longest_away_after_allowed_never_alarms():
    # Review finding: the pre-alarm pre-empted the away check while it waited, so going out
    # alarmed whenever the stillness before the door plus away_after reached the threshold
    # (here 120 min, the bound the platform may set, against a threshold of about 98 min)
    rng = random.Random(1)
    home = Home(away_after_ms=120 * M)
    for day in range(8):
        routine_day(home, day, rng)
    assert home.events == []
    t0 = 8 * DAY + 10 * H
    assert threshold_at(home, t0) < 120 * M
    home.at(t0, SRC_MOTION)  # walks to the door
    home.at(t0 + M, SRC_DOOR)  # goes out
    home.at(t0 + 2 * M, SRC_DOOR)
    home.idle(t0 + 4 * H)  # out for 4 h
    assert home.first(EV_PREALARM, since=t0) is None and home.first(EV_ALARM, since=t0) is None
    assert home.first(EV_AWAY, since=t0) is not None
