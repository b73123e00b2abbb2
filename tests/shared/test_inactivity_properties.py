"""shared/inactivity.py property tests: never crashes, invariants hold, a restored state and one
shifted across the tick wrap behave exactly as the original; history stays storable."""

from hypothesis import HealthCheck, given, settings, strategies as st
from inactivity_testing import DAY, H, Home, M, history

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
