"""The stale-price rule, checked the same way in live trading, dry runs and backtests.

A thin ticker can go minutes without a trade, so the newest bar of a card's window may be old.
A buy sized on an old price can cost far more than the algorithm meant, so a buy is refused
(it becomes a hold with the reason) when the newest bar is more than ``max_age`` market minutes
older than the minute just closed, or from an earlier session: at the open, yesterday's close
never sizes a buy. Sells still go through: getting out never waits for a fresh price. Every trade
that passes carries the price it was sized on and that price's age in its reason, so the order's
log line shows them.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

from algorithms._checker import CheckedDecision

DEFAULT_MAX_PRICE_AGE = 5  # market minutes


class PriceAge(NamedTuple):
    """How old the price of a decision is: the newest bar's start, in market minutes before the
    decision's minute, and whether it is from the same session."""

    bar: str  # the newest bar's start, "YYYY-MM-DDTHH:MM:SSZ"
    minutes: int  # market minutes from that bar to the minute just closed (0: it is that minute)
    same_session: bool

    def describe(self) -> str:
        if not self.same_session:
            return f"the {self.bar} bar, from an earlier session"
        return f"the {self.bar} bar, {self.minutes} market minute{'s' if self.minutes != 1 else ''} old"


def check_price_age(decision: CheckedDecision, age: Optional[PriceAge], price: float,
                    max_age: int = DEFAULT_MAX_PRICE_AGE) -> CheckedDecision:
    """``decision`` with the stale-price rule applied (unchanged when ``age`` is unknown or a hold)."""
    if age is None or not decision.is_trade:
        return decision
    sized_on = f"price ${price:,.2f} from {age.describe()}"
    if decision.action == "buy" and (not age.same_session or age.minutes > max_age):
        return CheckedDecision(
            "hold", 0, False,
            f"{decision.reason}; refused: stale price: {sized_on}, older than the {max_age}-minute limit "
            f"(a thin ticker may simply not have traded; the buy waits for a fresh bar)",
            "buy", decision.shares)
    return decision._replace(reason=f"{decision.reason} ({sized_on})")
