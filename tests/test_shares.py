"""Share quantities: one rounding rule (nine decimals, exact), the same for the system and for algorithms."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from algorithms import _shares as algorithm_shares
from shared import shares

quantities = st.one_of(st.integers(-10**9, 10**9),
                       st.decimals(min_value=-10**6, max_value=10**6, places=12, allow_nan=False),
                       st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))


@given(quantities)
def test_the_algorithms_copy_rounds_every_quantity_as_the_system_does(value):
    assert algorithm_shares.to_nano(value) == shares.to_nano(value)
    assert algorithm_shares.quantity(value) == shares.quantity(value)


@given(st.one_of(st.integers(0, 10**15), st.integers(0, 10**9).map(lambda n: n * 10**9)))
def test_nano_shares_come_back_exactly(nano):
    """Up to a million shares a fraction survives its float (15 significant digits); whole ones are ints."""
    shown = shares.from_nano(nano)
    assert shares.to_nano(shown) == nano and isinstance(shown, int) == (nano % shares.NANO == 0)


def test_a_reverse_splits_remainder_and_float_noise_are_the_same_nine_decimals():
    assert shares.quantity(3.333333333) == 3.333333333
    assert shares.quantity(0.1 + 0.2) == 0.3                      # float noise is not a different quantity
    assert shares.quantity(Decimal("7.50")) == 7.5 and shares.quantity(10.0) == 10
    assert shares.to_nano("3.3333333335") == 3333333334           # half-even at the ninth decimal


@pytest.mark.parametrize("bad", [True, "ten", float("nan"), float("inf"), None])
def test_what_is_not_a_quantity_is_refused(bad):
    with pytest.raises(ValueError):
        shares.to_nano(bad)
    with pytest.raises(ValueError):
        algorithm_shares.to_nano(bad)
