"""Share quantities as Alpaca takes and shows them: whole shares as an int, a fraction (up to 9
decimals: a fractional DAY order, a reverse split's remainder) as the Decimal it is."""
from __future__ import annotations

from decimal import Decimal

NINE_PLACES = Decimal("0.000000001")


class QuantityError(ValueError):
    """A quantity Alpaca would refuse with a 422 (the message is Alpaca's)."""


def order_quantity(raw) -> int | Decimal:
    """An order's ``qty`` (sent as a string or a number)."""
    if raw is None:
        raise QuantityError("qty is required")
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        raise QuantityError(f"invalid qty: {raw}") from None
    if not value.is_finite() or value <= 0:
        raise QuantityError("qty must be > 0")
    if value != value.quantize(NINE_PLACES):
        raise QuantityError("qty must have at most 9 decimal places")
    return whole_if_possible(value)


def whole_if_possible(qty: int | Decimal) -> int | Decimal:
    """Whole shares as an int; a fraction as the Decimal it is (``2.5`` stays "2.5", as Alpaca shows it)."""
    return int(qty) if qty == int(qty) else qty
