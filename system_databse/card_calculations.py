"""A card's shares, value and P&L, always derived from its transaction history.

shares          = sum(buy shares) - sum(sell shares) + shares added or removed by splits (whole)
fractional      = the rest of what is held (a reverse split's remainder, until a sell-all sells it)
invested        = sum(buy cost) - sum(sell proceeds) - dividends received
capital         = initial_capital + deposits - withdrawals (the allocation now)
uninvested cash = capital - invested
current value   = (shares + fractional) * current_price + uninvested cash
pnl             = current value - capital
pnl %           = pnl / (initial_capital + deposits)      (on all the capital the card was given)

(the definition of a position: ``system_databse.positions``)

A deposit or a withdrawal moves capital, uninvested cash and value by the same amount, so the
P&L does not move: money put in is never a gain. P&L % is taken on every dollar the card has
been given, so a withdrawal (money given back) cannot make the same gain look bigger.

A split multiplies the shares and leaves the money alone, so at the same market value the P&L is
unchanged; a dividend is cash the card's shares paid back to it (``corporate_action_effects``).

Aggregates come from SQL (``system_db_manager.get_position_totals``), so a card with 100,000
transactions costs one indexed query. Money is reported rounded to cents.
"""
from __future__ import annotations

import math
import sqlite3
from typing import Any, Dict, Iterable, Optional

from shared.shares import quantity
from system_databse import positions, system_db_manager


NO_TRADES = {"shares": 0, "trade_count": 0, "invested": 0.0, "fractional_shares": 0.0, "held": 0, "dividends": 0.0,
             "deposits": 0.0, "withdrawals": 0.0}  # totals of a card without transactions


def to_cents(amount: float) -> float:
    """Round money for reporting; sums are kept unrounded until here so nothing drifts."""
    return round(amount + 0.0, 2)


def calculate_position(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> int:
    """Shares the card holds now."""
    return system_db_manager.get_position_totals(algo_id, conn=conn)["shares"]


def calculate_trade_count(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> int:
    return system_db_manager.get_position_totals(algo_id, conn=conn)["trade_count"]


def calculate_invested_amount(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> float:
    """Net cash the card has put into shares (buy costs minus sell proceeds)."""
    return to_cents(system_db_manager.get_position_totals(algo_id, conn=conn)["invested"])


def uninvested_cash(initial_capital: float, invested: float) -> float:
    """The part of a card's allocation not currently in shares."""
    return initial_capital - invested


def value_from_totals(shares: int, invested: float, current_price: float, initial_capital: float) -> float:
    """Current value from aggregates: the one formula every caller shares."""
    return shares * current_price + uninvested_cash(initial_capital, invested)


def calculate_current_value(algo_id: int, current_price: float, initial_capital: float, *,
                            conn: Optional[sqlite3.Connection] = None) -> float:
    totals = system_db_manager.get_position_totals(algo_id, conn=conn)
    return to_cents(value_from_totals(held_shares(totals), totals["invested"], current_price, initial_capital))


def held_shares(totals: Dict[str, Any]) -> float:
    """Whole shares plus the fraction: what the card owns at the broker."""
    return totals.get("held", totals["shares"])


def calculate_pnl(current_value: float, initial_capital: float) -> float:
    return to_cents(current_value - initial_capital)


def pnl_percent(pnl: float, contributed: float) -> float:
    """P&L as a percentage of all the capital a card has been given (initial capital + deposits)."""
    return round(pnl / contributed * 100 + 0.0, 2) if contributed else 0.0


def card_from_totals(algo: Dict[str, Any], totals: Dict[str, Any], current_price: Optional[float]) -> Dict[str, Any]:
    """The spec's card dict: the algorithm row plus derived fields (``capital``: the allocation
    now, after deposits and withdrawals; ``initial_capital`` stays what the card was created with).

    Without a price (no bar stored yet) the shares are valued at their net cost, which keeps
    P&L at zero rather than inventing a loss.
    """
    shares, invested = totals["shares"], totals["invested"]
    deposits, withdrawals = totals.get("deposits", 0.0), totals.get("withdrawals", 0.0)
    capital = positions.capital_of(algo["initial_capital"], deposits, withdrawals)
    if current_price is None:
        value = capital
    else:
        value = value_from_totals(held_shares(totals), invested, current_price, capital)
    return {
        **algo,
        "current_shares": shares,
        "fractional_shares": totals.get("fractional_shares", 0.0),
        "dividends": to_cents(totals.get("dividends", 0.0)),
        "trade_count": totals["trade_count"],
        "capital": to_cents(capital),
        "deposits": to_cents(deposits),
        "withdrawals": to_cents(withdrawals),
        "uninvested_cash": to_cents(uninvested_cash(capital, invested)),
        "current_value": to_cents(value),
        "pnl": calculate_pnl(value, capital),
        "pnl_percent": pnl_percent(calculate_pnl(value, capital), float(algo["initial_capital"]) + deposits),
        "current_price": current_price,
    }


def get_algorithm_with_calculations(algo_id: int, current_price: Optional[float], *,
                                    conn: Optional[sqlite3.Connection] = None) -> Optional[Dict[str, Any]]:
    """One card with ``current_shares``, ``trade_count``, ``current_value``, ``pnl``, ``current_price``."""
    algo = system_db_manager.get_algorithm(algo_id, conn=conn)
    if algo is None:
        return None
    totals = system_db_manager.get_position_totals(algo_id, conn=conn)
    return card_from_totals(algo, totals, current_price)


def available_cash(alpaca_cash: float, *, conn: Optional[sqlite3.Connection] = None) -> Dict[str, float]:
    """Cash free for a new card: broker cash minus every card's claim on it (its uninvested cash,
    and what its open orders will still move: ``positions.Position.claim_on_broker_cash``)."""
    return positions.available_cash(alpaca_cash, positions.positions(conn=conn).values())


def corporate_action_label(effect: Dict[str, Any]) -> str:
    """How the wall marks an action on a card: "10:1 split", "1:3 reverse split", "dividend $25.00"."""
    if effect["kind"] == "cash_dividend":
        return f"dividend ${effect.get('cash', 0.0):,.2f}"
    ratio = f"{effect['new_rate']:g}:{effect['old_rate']:g}"
    return f"{ratio} split" if effect["kind"] == "forward_split" else f"{ratio} reverse split"


def split_adjusted(transactions: Iterable[Dict[str, Any]], effects: Iterable[Dict[str, Any]]) -> list[Dict[str, Any]]:
    """A card's history (oldest first) restated in today's share units, for timelines over split-adjusted bars.

    A trade before a split counts its shares times the split ratio at the price divided by it (same
    money); each dividend becomes a ``{"type": "dividend", "cash": ...}`` row at its ex-date open.
    Replaying these rows gives the card's shares and invested cash at any moment, so the value line
    over adjusted prices has no cliff at a split and steps up by the dividend.
    """
    effects = list(effects)
    splits = [(e["effective_at"], e["new_rate"] / e["old_rate"]) for e in effects if e["kind"] != "cash_dividend"]
    rows = []
    for t in transactions:
        factor = math.prod(ratio for at, ratio in splits if at > t["timestamp"])
        rows.append(t if factor == 1 else {**t, "shares": quantity(t["shares"] * factor),
                                           "price": t["price"] / factor})
    rows += [{"id": None, "type": "dividend", "timestamp": e["effective_at"], "shares": 0, "price": 0.0,
              "cash": e["cash"]} for e in effects if e["kind"] == "cash_dividend"]
    return sorted(rows, key=lambda r: r["timestamp"])

