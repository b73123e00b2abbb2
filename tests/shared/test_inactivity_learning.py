"""shared/inactivity.py learning the home's stillness: a synthetic routine learned, nights
quiet, a daytime collapse alarmed; what is and is not learned from still periods."""

import random

import pytest
from inactivity_testing import DAY, H, Home, M, history, routine_day, slot, threshold_at

from shared.inactivity import EV_ALARM, EV_CLEARED, EV_PREALARM, SRC_MOTION, SRC_PRESS, ST_ALARM
from shared.inactivity_profile import NO_DATA


@pytest.mark.parametrize("seed", [1, 2])
def test_learned_routine_nights_quiet_and_daytime_collapse_alarms(seed):
    rng = random.Random(seed)
    home = Home()
    for day in range(8):
        routine_day(home, day, rng)
    assert home.events == [], "a regular week raised events"
    assert home.det.learned_days >= 3
    # the night is learned as long stillness, the day as short
    assert threshold_at(home, 8 * DAY + 3 * H) > 5 * H
    assert threshold_at(home, 8 * DAY + 10 * H) < 2 * H
    last = routine_day(home, 8, rng, collapse=10 * 60)
    pre = home.first(EV_PREALARM)
    alarm = home.first(EV_ALARM)
    assert pre is not None and alarm is not None
    assert pre >= 8 * DAY + 10 * H
    assert alarm == pre + 10 * M
    assert alarm - (8 * DAY + last * M) <= 2 * H + 10 * M  # within ~2 h of the last movement
    assert alarm - (8 * DAY + 10 * H) <= 3 * H


def test_lie_in_an_hour_later_than_ever_does_not_alarm():
    rng = random.Random(3)
    home = Home()
    for day in range(8):
        routine_day(home, day, rng)
    routine_day(home, 8, rng, late=60)  # up at about 8:00 instead of 6:40-7:20
    assert home.events == []


def test_default_threshold_until_min_days_then_learned():
    home = Home(default_ms=12 * H, min_days=3)
    home.at(0)
    assert home.det.threshold_ms == 12 * H and home.det.learned_days == 0
    rng = random.Random(4)
    routine_day(home, 0, rng)
    routine_day(home, 1, rng)
    assert threshold_at(home, 2 * DAY + 12 * H) == 12 * H  # two days: not yet
    routine_day(home, 2, rng)
    assert threshold_at(home, 3 * DAY + 12 * H) < 3 * H


def test_in_progress_stillness_is_never_learned():
    rng = random.Random(5)
    home = Home()
    for day in range(4):
        routine_day(home, day, rng)
    before = history(home.det)
    t = home.t
    end = t + 30 * H
    while t < end:  # still for 30 h from midnight, through an alarm
        t += M
        home.at(t)
        h, day = history(home.det)
        if day == before[1]:
            assert h == before[0], "history changed during a still period"
        before = (h, day)
    assert home.det.state == ST_ALARM


def test_answered_prealarm_is_learned_in_full():
    home = Home(floor_ms=M, default_ms=2 * H, min_days=1, neighbours=0, buffer_ms=0)
    home.at(0)  # installed at midnight, nothing learned yet
    home.idle(2 * H + 5 * M)
    assert home.first(EV_PREALARM) == 2 * H
    assert home.at(2 * H + 6 * M, SRC_PRESS) == EV_CLEARED
    assert home.det.ended_still_ms == 2 * H + 6 * M
    assert slot(home.det, 0, 4) == 126  # bin 02:00-02:30 learned 2 h 06 min


def test_alarmed_period_is_learned_only_up_to_the_alarm():
    home = Home(floor_ms=M, default_ms=2 * H, min_days=1, neighbours=0, buffer_ms=0)
    home.at(0)
    home.idle(9 * H)  # nobody answers: alarm at 2 h 10, help comes at 9 h
    assert home.det.state == ST_ALARM
    assert home.at(9 * H, SRC_MOTION) == EV_CLEARED
    assert home.det.ended_still_ms == 9 * H
    assert slot(home.det, 0, 2) == 90  # 01:00-01:30: still 1.5 h by its end
    assert slot(home.det, 0, 3) == 120
    assert slot(home.det, 0, 4) == 130  # 02:00-02:30: capped at the alarm (2 h 10)
    for b in range(5, 19):  # 02:30-09:30: the emergency itself is not learned
        assert slot(home.det, 0, b) == NO_DATA


def test_learning_spans_midnight_into_the_previous_day():
    home = Home(days=3)
    home.at(22 * H, SRC_MOTION)
    home.at(DAY + 7 * H, SRC_MOTION)  # one 9 h night, in one gap
    assert history(home.det)[1] == 1
    assert slot(home.det, 0, 44) == 30  # 22:00-22:30 yesterday: 30 min
    assert slot(home.det, 0, 47) == 120
    assert slot(home.det, 1, 0) == 150  # 00:00-00:30 today
    assert slot(home.det, 1, 14) == 540  # 07:00 bin: the whole 9 h night
    assert slot(home.det, 1, 15) == NO_DATA
