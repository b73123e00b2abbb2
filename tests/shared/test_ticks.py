"""Tick arithmetic agrees with the plain modular definition everywhere."""

from hypothesis import given, strategies as st

from shared.ticks import PERIOD, ticks_add, ticks_diff, ticks_reached

ticks = st.integers(0, PERIOD - 1)
deltas = st.integers(-(PERIOD // 2), PERIOD // 2 - 1)


@given(ticks, deltas)
def test_add_is_modular(t, d):
    assert ticks_add(t, d) == (t + d) % PERIOD


@given(ticks, ticks)
def test_diff_is_the_short_signed_distance(a, b):
    d = ticks_diff(a, b)
    assert -(PERIOD // 2) <= d < PERIOD // 2
    assert (b + d) % PERIOD == a
    assert ticks_reached(a, b) == (d >= 0)


@given(st.integers(-(2**40), 2**40), st.integers(-(2**40), 2**40))
def test_out_of_contract_inputs_still_give_modular_answers(a, b):
    assert ticks_add(a, b) == (a + b) % PERIOD
    assert (ticks_diff(a, b) - (a - b)) % PERIOD == 0
