"""Share quantities for algorithms and the decision check, exact to the broker's nine decimals.

The same rule as the rest of the system's (``shared/shares.py``; algorithms import none of the
system, so they keep this copy, and ``tests/test_shares.py`` checks the two agree): a quantity is
an integer number of nano-shares inside, shown as an ``int`` when whole, else a ``float`` rounded
to 9 decimals (half-even).
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

NANO = 1_000_000_000


def to_nano(quantity: Any) -> int:
    """``quantity`` in nano-shares (ValueError for what is not a finite number)."""
    if isinstance(quantity, bool):
        raise ValueError(f"not a quantity of shares: {quantity!r}")
    if isinstance(quantity, int):
        return quantity * NANO
    try:
        exact = quantity if isinstance(quantity, Decimal) else Decimal(str(quantity))
        return int((exact * NANO).to_integral_value(rounding=ROUND_HALF_EVEN))
    except (ArithmeticError, TypeError, ValueError):
        raise ValueError(f"not a quantity of shares: {quantity!r}") from None


def from_nano(nano: int) -> int | float:
    nano = int(nano)
    return nano // NANO if nano % NANO == 0 else float(Decimal(nano) / NANO)


def quantity(value: Any) -> int | float:
    """``value`` rounded to the ninth decimal: an int when whole, else a float."""
    return from_nano(to_nano(value))
