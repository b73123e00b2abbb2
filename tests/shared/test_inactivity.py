"""shared/inactivity.py: learned whole-home inactivity, pre-alarm, alarm, away, persistence."""

import random
import zlib

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shared import inactivity as ina
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
    ST_PREALARM,
    Inactivity,
)
from shared.inactivity_profile import MAX_MIN, NO_DATA
from shared.ticks import MAX_DIFF, PERIOD, wrap

M = 60_000
H = 3_600_000
DAY = 86_400_000
HDR = 29  # to_bytes() header length (format version 1)


class Home:
    """Drives a detector on an absolute timeline t (ms since day 0, 00:00)."""

    def __init__(self, det=None, base=0, **cfg):
        self.det = det if det is not None else Inactivity(**cfg)
        self.cfg = cfg
        self.base = base  # ticks at t = 0
        self.t = 0
        self.events = []  # (t, ev)

    def at(self, t, source=None):
        self.t = t
        now = wrap(self.base + t)
        if source is None:
            ev = self.det.tick(now, t % DAY)
        else:
            ev = self.det.activity(now, t % DAY, source)
        if ev:
            self.events.append((t, ev))
        return ev

    def idle(self, until, step=M):
        """Tick every `step` ms until t reaches `until`; returns the OR of events."""
        acc = 0
        t = self.t + step
        while t <= until:
            acc |= self.at(t)
            t += step
        return acc

    def first(self, bit, since=0):
        for t, ev in self.events:
            if ev & bit and t >= since:
                return t
        return None


def routine_day(home, day, rng, collapse=None, wake=7 * 60, late=0):
    """A regular day at 1-min steps: up at 7:00 (+-20 min, plus `late`), moving about
    with gaps of 1-60 min, in bed from 22:00 (+-20 min). `collapse` = minute of the day
    after which nothing moves any more. Returns the minute of the last movement."""
    up = wake + rng.randint(-20, 20) + late
    bed = 22 * 60 + rng.randint(-20, 20)
    moves = set()
    m = up
    while m < bed:
        moves.add(m)
        m += rng.randint(1, 60)
    last = -1
    for minute in range(1440):
        moving = minute in moves and (collapse is None or minute < collapse)
        home.at(day * DAY + minute * M, SRC_MOTION if moving else None)
        if moving:
            last = minute
    return last


def threshold_at(home, t):
    """The threshold a copy of home's detector would have at a later time t."""
    copy = Inactivity.from_bytes(home.det.to_bytes(), 0, **home.cfg)
    copy.tick(t - home.t, t % DAY)
    return copy.threshold_ms


def history(det):
    data = det.to_bytes()
    return data[HDR:-4], data[4]


def slot(det, day, b):
    h, _ = history(det)
    i = (day * 48 + b) * 2
    return h[i] | (h[i + 1] << 8)


# -- learning on a synthetic routine ----------------------------------------------------


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


# -- pre-alarm, alarm, clearing --------------------------------------------------------


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


# -- away ---------------------------------------------------------------------------------


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


# -- time handling -----------------------------------------------------------------------


def test_day_rolls_over_at_midnight_not_on_small_clock_steps():
    det = Inactivity()
    det.tick(0, 23 * H)
    det.tick(M, 23 * H + M)
    assert history(det)[1] == 0
    det.tick(2 * M, 22 * H + 2 * M)  # clock set back an hour (DST): same day
    assert history(det)[1] == 0
    det.tick(3 * M, 23 * H + 59 * M)
    det.tick(4 * M, 0)  # midnight
    assert history(det)[1] == 1
    det.tick(5 * M, 11 * H)  # clock jumps forward 11 h: same day
    assert history(det)[1] == 1
    det.tick(6 * M, 13 * M)  # and back again (11 h): same day
    assert history(det)[1] == 1
    det.tick(7 * M + 2 * DAY + H, H + 14 * M)  # hub silent for two days and an hour
    assert history(det)[1] == 3
    for i, tod in enumerate((9 * H, 16 * H, 23 * H)):  # clock jumps forward 7 h at a time
        det.tick((9 + i) * M, tod)
    assert history(det)[1] == 3
    det.tick(12 * M, 6 * H)  # and once more, past midnight: a new day
    assert history(det)[1] == 4


def test_stillness_saturates_and_negative_steps_count_as_zero():
    det = Inactivity()
    det.activity(0, 0, SRC_AWAY)
    now = 0
    for _ in range(4):
        now = wrap(now + MAX_DIFF)
        det.tick(now, 0)
    assert det.still_ms == MAX_DIFF
    det = Inactivity()
    det.tick(1000, 0)
    det.tick(500, 0)
    assert det.still_ms == 0


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,value",
    [
        ("floor_ms", 0),
        ("floor_ms", 51 * H),
        ("ceiling_ms", 10 * M),  # below the floor
        ("ceiling_ms", 51 * H),
        ("default_ms", 0),
        ("prealarm_ms", -1),
        ("prealarm_ms", 31 * M),
        ("away_after_ms", 0),
        ("away_after_ms", 3 * H),
        ("away_max_ms", H - 1),
        ("away_max_ms", 144 * H + 1),
        ("door_away", 1),
        ("days", 0),
        ("days", 57),
        ("min_days", 15),
        ("rank", 4),
        ("rank", 0),
        ("neighbours", 5),
        ("margin_pct", 99),
        ("margin_pct", 401),
        ("buffer_ms", -1),
        ("floor_ms", 1_800_000.0),  # no floats
        ("days", True),
    ],
)
def test_bad_config_names_the_argument(name, value):
    with pytest.raises(ValueError, match=name):
        Inactivity(**{name: value})


def test_rank_cannot_exceed_min_days():
    with pytest.raises(ValueError, match="rank"):
        Inactivity(min_days=1, rank=2)


def test_unknown_source_is_rejected():
    with pytest.raises(ValueError, match="source"):
        Inactivity().activity(0, 0, 4)


# -- persistence --------------------------------------------------------------------------


def learned_home():
    rng = random.Random(6)
    home = Home(days=3)
    for day in range(3):
        routine_day(home, day, rng)
    return home


def test_round_trip_and_checksum():
    home = learned_home()
    data = home.det.to_bytes()
    assert len(data) == HDR + 3 * 96 + 4 and data[0] == ina.VERSION
    a, b = zlib.adler32(data[:-4]) & 0xFFFF, zlib.adler32(data[:-4]) >> 16
    assert data[-4:] == bytes([a & 0xFF, a >> 8, b & 0xFF, b >> 8])
    again = Inactivity.from_bytes(data, 12345, days=3)
    assert again.to_bytes() == data
    for attr in ("state", "still_ms", "threshold_ms", "learned_days", "ended_still_ms"):
        assert getattr(again, attr) == getattr(home.det, attr)
    fresh = Inactivity()
    assert Inactivity.from_bytes(fresh.to_bytes(), 7).to_bytes() == fresh.to_bytes()


def test_restore_rejects_bad_data_naming_what_is_wrong():
    data = learned_home().det.to_bytes()
    with pytest.raises(ValueError, match="version"):
        Inactivity.from_bytes(b"\x02" + data[1:], 0, days=3)
    with pytest.raises(ValueError, match="version"):
        Inactivity.from_bytes(b"", 0, days=3)
    with pytest.raises(ValueError, match="days"):
        Inactivity.from_bytes(data, 0, days=4)
    with pytest.raises(ValueError, match="length"):
        Inactivity.from_bytes(data[:-1], 0, days=3)
    with pytest.raises(ValueError, match="checksum"):
        Inactivity.from_bytes(data[:-1] + bytes([data[-1] ^ 1]), 0, days=3)
    with pytest.raises(ValueError, match="margin_pct"):
        Inactivity.from_bytes(data, 0, days=3, margin_pct=1)


def test_every_single_byte_corruption_is_rejected():
    data = learned_home().det.to_bytes()
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] ^= flip
            with pytest.raises(ValueError):
                Inactivity.from_bytes(bytes(bad), 0, days=3)


def test_settings_may_change_across_a_restart_and_keep_the_history():
    home = learned_home()
    data = home.det.to_bytes()
    wider = Inactivity.from_bytes(data, 0, days=3, margin_pct=200)
    assert wider.threshold_ms > home.det.threshold_ms
    assert wider.to_bytes()[HDR:-4] == data[HDR:-4]


# -- properties ---------------------------------------------------------------------------

SOURCES = (SRC_MOTION, SRC_DOOR, SRC_AWAY, SRC_PRESS)


@st.composite
def configs(draw):
    days = draw(st.integers(1, 4))
    min_days = draw(st.integers(1, days))
    floor = draw(st.sampled_from([M, 5 * M, 30 * M]))
    return {
        "floor_ms": floor,
        "ceiling_ms": floor + draw(st.sampled_from([0, H, 50 * H - floor])),
        "default_ms": draw(st.sampled_from([M, 20 * M, 12 * H])),
        "prealarm_ms": draw(st.sampled_from([0, M, 10 * M])),
        "away_after_ms": draw(st.sampled_from([M, 10 * M])),
        "away_max_ms": draw(st.sampled_from([H, 24 * H, 144 * H])),
        "door_away": draw(st.booleans()),
        "days": days,
        "min_days": min_days,
        "rank": draw(st.integers(1, min(3, min_days))),
        "neighbours": draw(st.sampled_from([0, 1, 2, 4])),
        "margin_pct": draw(st.sampled_from([100, 120, 400])),
        "buffer_ms": draw(st.sampled_from([0, 30 * M])),
    }


# one input: (source or -1 for a tick, ms since the previous input, clock step of tod)
step_in_contract = st.tuples(
    st.sampled_from((-1, -1, -1) + SOURCES),
    st.one_of(st.integers(0, 10 * M), st.integers(0, 6 * H), st.integers(0, MAX_DIFF)),
    st.one_of(st.just(0), st.just(0), st.integers(-2 * DAY, 2 * DAY)),
)


def replay(det, steps, base, start_tod=0):
    """Feed steps to det; returns the list of (index, events, state, still, threshold)."""
    out = []
    now = base
    tod = start_tod
    for i, (src, dt, jump) in enumerate(steps):
        now = wrap(now + dt)
        tod = tod + dt + jump
        ev = det.tick(now, tod) if src < 0 else det.activity(now, tod, src)
        out.append((i, ev, det.state, det.still_ms, det.threshold_ms, det.learned_days))
    return out, now


def check_invariants(det, cfg, ev, seen_prealarm):
    assert 0 <= ev < 32
    assert det.state in (ST_IDLE, ST_PREALARM, ST_ALARM, ST_AWAY)
    assert 0 <= det.still_ms <= MAX_DIFF
    assert cfg["floor_ms"] <= det.threshold_ms <= cfg["ceiling_ms"]
    assert 0 <= det.learned_days <= cfg["days"]
    if ev & EV_ALARM:
        assert det.state == ST_ALARM and (ev & EV_PREALARM or seen_prealarm)
    if ev & (EV_CLEARED | EV_HOME):
        assert det.state == ST_IDLE and det.still_ms == 0
    if ev & EV_AWAY:
        assert det.state == ST_AWAY


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    cfg=configs(),
    steps=st.lists(
        st.tuples(
            st.sampled_from((-1,) + SOURCES),
            st.integers(-(2**40), 2**40),  # any now, also outside the tick range
            st.integers(-(2**40), 2**40),  # any tod
        ),
        max_size=40,
    ),
)
def test_never_crashes_on_any_input(cfg, steps):
    det = Inactivity(**cfg)
    seen_prealarm = False
    for src, now, tod in steps:
        ev = det.tick(now, tod) if src < 0 else det.activity(now, tod, src)
        check_invariants(det, cfg, ev, seen_prealarm)
        seen_prealarm = det.state in (ST_PREALARM, ST_ALARM)
    assert Inactivity.from_bytes(det.to_bytes(), 0, **cfg).to_bytes() == det.to_bytes()


@FAST
@given(cfg=configs(), steps=st.lists(step_in_contract, max_size=80))
def test_invariants_within_the_contract(cfg, steps):
    det = Inactivity(**cfg)
    now = 0
    tod = 0
    seen_prealarm = False
    for src, dt, jump in steps:
        now = wrap(now + dt)
        tod = (tod + dt + jump) % DAY
        ev = det.tick(now, tod) if src < 0 else det.activity(now, tod, src)
        check_invariants(det, cfg, ev, seen_prealarm)
        seen_prealarm = det.state in (ST_PREALARM, ST_ALARM)
        if det.state in (ST_IDLE, ST_PREALARM) and det.still_ms < det.threshold_ms:
            assert det.state == ST_IDLE or ev & EV_PREALARM == 0


@FAST
@given(
    cfg=configs(),
    steps=st.lists(step_in_contract, max_size=80),
    split=st.integers(0, 80),
    base=st.integers(0, PERIOD - 1),
)
def test_restored_state_behaves_exactly_as_the_original(cfg, steps, split, base):
    split = min(split, len(steps))
    original = Inactivity(**cfg)
    expected, _ = replay(original, steps, base)
    first = Inactivity(**cfg)
    head, now = replay(first, steps[:split], base)
    start_tod = sum(dt + jump for _, dt, jump in steps[:split])
    restored = Inactivity.from_bytes(first.to_bytes(), now, **cfg)
    tail, _ = replay(restored, steps[split:], now, start_tod)
    got = head + [(i + split, *rest) for i, *rest in tail]
    assert got == expected
    assert restored.to_bytes() == original.to_bytes()


@FAST
@given(
    cfg=configs(),
    steps=st.lists(step_in_contract, max_size=80),
    shift=st.integers(1, PERIOD - 1),
)
def test_shifting_across_the_tick_wrap_gives_the_same_events(cfg, steps, shift):
    a, b = Inactivity(**cfg), Inactivity(**cfg)
    ra, _ = replay(a, steps, 0)
    rb, _ = replay(b, steps, PERIOD - shift)  # crosses the wrap somewhere
    assert ra == rb
    assert a.to_bytes() == b.to_bytes()


def test_history_values_stay_storable():
    home = Home(days=1, min_days=1)
    home.at(0, SRC_MOTION)
    now = 0
    for _ in range(3):
        now += MAX_DIFF
        home.at(now)
    home.at(now + 1, SRC_MOTION)
    h, _ = history(home.det)
    values = [h[i] | (h[i + 1] << 8) for i in range(0, len(h), 2)]
    assert max(v for v in values if v != NO_DATA) <= MAX_MIN


# -- cross-runtime -------------------------------------------------------------------------


def test_no_allocation_per_call_on_micropython(micropython):
    code = """
import gc
from shared.inactivity import Inactivity
d = Inactivity(days=3, default_ms=2 * 3600000)
now = 1000000000  # wraps at step ~1229; kept below 2**30 without an overflow
def step(i):
    global now
    now = now + 60000 if now < 1073681824 else now - 1073681824
    tod = (i * 60000) % 86400000
    day = i // 1440
    r = i % 97
    if day % 3 == 0 and r == 5:
        return d.activity(now, tod, 1)
    if day % 3 == 0 and r == 40:
        return d.activity(now, tod, 2)
    if day % 3 != 2 and r % 7 == 0:
        return d.activity(now, tod, 0 if r % 2 else 3)
    return d.tick(now, tod)
a = 0
evs = 0  # every global exists before measuring (a new one may grow the dict)
for i in range(2000):
    step(i)
gc.disable()
a = gc.mem_alloc()
for i in range(2000, 7000):
    evs |= step(i)
print(gc.mem_alloc() - a, evs)
"""
    assert micropython(code).split() == ["0", "31"]
