"""Share quantities, exact to the broker's nine decimals.

Alpaca reports and accepts quantities with up to 9 decimals (a reverse split's remainder, a
fractional sell). Inside the money path a quantity is an integer number of **nano-shares**, so
sums never drift and two quantities are equal exactly when they are the same number of
billionths; outside (the ledger's rows, the algorithms' history, JSON) it is shown as an ``int``
when whole, else a ``float`` rounded to 9 decimals. This is the project's one rounding rule for
shares: there is no other tolerance. (Algorithms import none of the system: they keep the same
three functions in ``algorithms/_shares.py``; ``tests/test_shares.py`` checks the two agree.)
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Union

NANO = 1_000_000_000  # nano-shares in a share
Quantity = Union[int, float]


def to_nano(quantity: Any) -> int:
    """``quantity`` (int, float, Decimal or a decimal string) in nano-shares, rounded half-even
    at the ninth decimal. Raises ValueError for anything that is not a finite number."""
    if isinstance(quantity, bool):
        raise ValueError(f"not a quantity of shares: {quantity!r}")
    if isinstance(quantity, int):
        return quantity * NANO
    try:
        exact = quantity if isinstance(quantity, Decimal) else Decimal(str(quantity))
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"not a quantity of shares: {quantity!r}") from None
    if not exact.is_finite():
        raise ValueError(f"not a quantity of shares: {quantity!r}")
    return int((exact * NANO).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_nano(nano: int) -> Quantity:
    """Nano-shares as shown everywhere: an int when whole, else a float of 9 decimals at most
    (exact below a million shares, where a float still holds 15 significant digits)."""
    nano = int(nano)
    if nano % NANO == 0:
        return nano // NANO
    return float(Decimal(nano) / NANO)


def quantity(value: Any) -> Quantity:
    """``value`` rounded to the ninth decimal and shown as ``from_nano`` shows it."""
    return from_nano(to_nano(value))


def whole_part(nano: int) -> int:
    """Whole shares in ``nano`` (never negative for a held quantity)."""
    return int(nano) // NANO


def is_whole(value: Any) -> bool:
    return to_nano(value) % NANO == 0
