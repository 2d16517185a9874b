"""Decision checking shared by live trading, dry runs and backtests.

An algorithm's answer is validated here before anything can act on it: the action must be
buy/sell/hold, shares a positive integer (hold: 0), a sell may not exceed the card's position and
a buy may not cost more than the card's uninvested cash at the current price. The one exception
to whole shares: a sell of exactly what the card holds (``self.position(history)``) when that is
a fraction (7.5 after a 3:2 split) sells everything, the fraction included. Position and shares
compare exactly, to the ninth decimal (``shared.shares``). A refused decision
becomes a hold with the reason; it is never resized into something the algorithm did not ask for.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from algorithms._shares import quantity, to_nano

ACTIONS = ("buy", "sell", "hold")
CASH_TOLERANCE = 0.005  # half a cent: float sums of cent prices must not refuse an exact fit


class CheckedDecision(NamedTuple):
    """What may be executed. ``accepted`` False means refused: action is then 'hold', shares 0.

    ``requested_action``/``requested_shares`` keep what the algorithm asked for (for logs);
    ``reason`` is one human-readable sentence (the algorithm's own note, if it gave one, first).
    Immutable and cheap to build (a named tuple: a backtest makes one per minute).
    """

    action: str
    shares: int | float  # whole, or a sell of everything held when that is a fraction
    accepted: bool
    reason: str
    requested_action: Any = None
    requested_shares: Any = None

    @property
    def is_trade(self) -> bool:
        return self.accepted and self.action in ("buy", "sell")

    def to_dict(self) -> dict:
        return self._asdict()


def _money(amount: float) -> str:
    return f"${amount:,.2f}"


def _split(decision: Any) -> tuple[Any, Any, str]:
    """(action, shares, note) from ``(action, shares)`` or ``(action, shares, note)``."""
    if isinstance(decision, (tuple, list)) and len(decision) in (2, 3):
        note = decision[2] if len(decision) == 3 else ""
        return decision[0], decision[1], note if isinstance(note, str) else repr(note)
    raise ValueError(f"algorithm returned {decision!r}; expected (action, shares), e.g. ('buy', 10) or ('hold', 0)")


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so reasons read naturally and the result is JSON-able."""
    return value.item() if isinstance(value, np.generic) else value


def _shares_value(shares: Any, action: Any = None, position: Any = 0) -> int | float:
    if isinstance(shares, (bool, np.bool_)):
        raise ValueError(f"shares must be a whole number (int), got {_plain(shares)!r} ({type(shares).__name__})")
    if isinstance(shares, (int, np.integer)):
        return int(shares)
    if action == "sell" and isinstance(shares, (float, np.floating)) and math.isfinite(shares) \
            and to_nano(float(shares)) == to_nano(position) > 0:
        return quantity(position)  # sell everything: the fraction goes too
    held = f"; only a sell of everything the card holds ({position}) may carry a fraction" if action == "sell" else ""
    raise ValueError(f"shares must be a whole number (int), got {_plain(shares)!r} ({type(shares).__name__}){held}")


def _refuse(reason: str, action: Any, shares: Any) -> CheckedDecision:
    return CheckedDecision("hold", 0, False, reason, _plain(action), _plain(shares))


HOLD = CheckedDecision("hold", 0, True, "hold", "hold", 0)
MAX_CACHED_HOLDS = 1024
_HOLDS: dict = {}  # reason -> its accepted hold (immutable, so shared)


def plain_hold(decision: Any) -> CheckedDecision | None:
    """The accepted hold for a plain ``("hold", 0)`` or ``("hold", 0, "why")``, else None.

    The answer of most minutes, so it skips the general path; an algorithm's few hold reasons
    repeat minute after minute, so their checked holds are kept.
    """
    if decision.__class__ is not tuple:
        return None
    size = len(decision)
    if size == 3:
        reason = decision[2]
        if decision[0] == "hold" and decision[1].__class__ is int and decision[1] == 0 and reason.__class__ is str:
            checked = _HOLDS.get(reason)
            if checked is None:
                checked = CheckedDecision("hold", 0, True, reason or "hold", "hold", 0)
                if len(_HOLDS) < MAX_CACHED_HOLDS:
                    _HOLDS[reason] = checked
            return checked
    elif size == 2 and decision[0] == "hold" and decision[1].__class__ is int and decision[1] == 0:
        return HOLD
    return None


def check_decision(decision: Any, *, position: int | float, uninvested_cash: float, price: float) -> CheckedDecision:
    """Validate one decision against the card's position, uninvested cash and the current price."""
    checked = plain_hold(decision)
    if checked is not None:
        return checked
    try:
        action, raw_shares, note = _split(decision)
    except ValueError as exc:
        return _refuse(f"refused: {exc}", decision, None)
    prefix = f"{note}; " if note else ""
    if not isinstance(action, str) or action not in ACTIONS:
        return _refuse(f"{prefix}refused: action must be 'buy', 'sell' or 'hold', got {action!r}", action, raw_shares)
    try:
        shares = _shares_value(raw_shares, action, position)
    except ValueError as exc:
        return _refuse(f"{prefix}refused: {exc}", action, raw_shares)
    if action == "hold":
        if shares != 0:
            return _refuse(f"{prefix}refused: a hold must come with 0 shares, got {shares}", action, shares)
        return CheckedDecision("hold", 0, True, note or "hold", action, shares)
    if shares <= 0:
        return _refuse(f"{prefix}refused: {action} needs a positive number of shares, got {shares}", action, shares)
    if action == "sell":
        if to_nano(shares) > to_nano(position):
            return _refuse(f"{prefix}refused: sell {shares} shares but the card holds {position}", action, shares)
        return CheckedDecision("sell", shares, True, f"{prefix}sell {shares} of {position} shares", action, shares)
    if not isinstance(price, (int, float, np.floating)) or not math.isfinite(price) or price <= 0:
        return _refuse(f"{prefix}refused: buy {shares} shares without a valid current price ({price!r})",
                       action, shares)
    cost = shares * float(price)
    if cost > uninvested_cash + CASH_TOLERANCE:
        return _refuse(f"{prefix}refused: buy {shares} shares at ~{_money(price)} costs {_money(cost)}, "
                       f"more than the card's uninvested cash {_money(uninvested_cash)}", action, shares)
    return CheckedDecision("buy", shares, True, f"{prefix}buy {shares} shares at ~{_money(price)} = {_money(cost)} "
                           f"of {_money(uninvested_cash)} uninvested", action, shares)
