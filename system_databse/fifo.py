"""Open lots and realized P&L of a card, first in first out, from its transaction history.

Each buy opens a lot; each sell closes the oldest lots first (a partly sold lot keeps its entry
price for the shares left). With

    open cost  = sum(shares x entry price) over the open lots
    realized   = sum((sell price - entry price) x shares) over every closed piece of a lot
    unrealized = shares x current price - open cost

these identities hold for every history (and are property-tested):

    sum(lot shares)       = shares (sum bought - sum sold)
    open cost - realized  = invested (sum buy cost - sum sell proceeds)
    unrealized + realized = P&L (current value - initial capital)

so the detail view's lots and realized P&L always agree with the card's value and P&L.
Pure functions over plain rows (oldest first); money is rounded only when reported.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional

import pandas as pd

TAX_ZONE = "America/New_York"  # a sale's year is its trade date's year on the exchange


@dataclass
class Lot:
    shares: int
    price: float
    timestamp: str
    transaction_id: Any = None


@dataclass
class Closed:
    """Part of a lot sold: its P&L is realized at the sale."""

    shares: int
    entry_price: float
    exit_price: float
    opened: str
    closed: str

    @property
    def pnl(self) -> float:
        return (self.exit_price - self.entry_price) * self.shares

    @property
    def cost(self) -> float:
        return self.entry_price * self.shares

    @property
    def proceeds(self) -> float:
        return self.exit_price * self.shares


@dataclass
class Fifo:
    lots: List[Lot] = field(default_factory=list)
    closed: List[Closed] = field(default_factory=list)
    dividends: float = 0.0  # cash the shares paid: realized when received

    @property
    def shares(self) -> int:
        return sum(lot.shares for lot in self.lots)

    @property
    def open_cost(self) -> float:
        return sum(lot.shares * lot.price for lot in self.lots)

    @property
    def realized(self) -> float:
        return sum(piece.pnl for piece in self.closed) + self.dividends


def match(transactions: Iterable[Mapping[str, Any]]) -> Fifo:
    """Replay ``transactions`` (oldest first); a sell beyond the open lots raises ValueError.

    Rows may be ``card_calculations.split_adjusted`` ones: shares in today's units (a reverse split
    leaves a fractional lot) and ``dividend`` rows, whose cash is realized P&L.
    """
    lots: deque[Lot] = deque()
    closed: List[Closed] = []
    dividends = 0.0
    for t in transactions:
        if t["type"] == "dividend":
            dividends += float(t["cash"])
            continue
        shares, price = t["shares"], float(t["price"])
        if t["type"] == "buy":
            lots.append(Lot(shares, price, t["timestamp"], t.get("id")))
            continue
        left = shares
        while left > 0:
            if not lots and left < 1e-9:
                break
            if not lots:
                raise ValueError(f"sell of {shares} shares at {t['timestamp']} exceeds the open lots")
            lot = lots[0]
            taken = min(left, lot.shares)
            closed.append(Closed(taken, lot.price, price, lot.timestamp, t["timestamp"]))
            lot.shares -= taken
            left -= taken
            if abs(lot.shares) < 1e-9:
                lots.popleft()
    return Fifo(list(lots), closed, dividends)


def cents(amount: float) -> float:
    return round(amount + 0.0, 2)


def lots_report(fifo: Fifo, current_price: Optional[float]) -> List[Dict[str, Any]]:
    """Open lots, oldest first, each with its unrealized P&L at ``current_price`` (None without a price)."""
    rows = []
    for lot in fifo.lots:
        unrealized = None if current_price is None else cents((current_price - lot.price) * lot.shares)
        rows.append({"shares": lot.shares, "entry_price": lot.price, "opened": lot.timestamp,
                     "transaction_id": lot.transaction_id, "cost": cents(lot.shares * lot.price),
                     "unrealized_pnl": unrealized})
    return rows


def summary(fifo: Fifo, current_price: Optional[float]) -> Dict[str, Any]:
    """Realized and unrealized P&L of a card, plus its open lots."""
    unrealized = None if current_price is None else cents(fifo.shares * current_price - fifo.open_cost)
    return {"realized_pnl": cents(fifo.realized), "unrealized_pnl": unrealized,
            "open_cost": cents(fifo.open_cost), "lots": lots_report(fifo, current_price)}


def sale_year(timestamp: str) -> int:
    return pd.Timestamp(timestamp).tz_convert(TAX_ZONE).year


def realized_by_year(fifo: Fifo) -> Dict[int, Dict[str, Any]]:
    """Per tax year of the sale: proceeds, cost basis (FIFO), realized P&L and shares sold."""
    years: Dict[int, Dict[str, float]] = {}
    for piece in fifo.closed:
        year = years.setdefault(sale_year(piece.closed), {"shares": 0, "proceeds": 0.0, "cost": 0.0, "pnl": 0.0})
        year["shares"] += piece.shares
        year["proceeds"] += piece.proceeds
        year["cost"] += piece.cost
        year["pnl"] += piece.pnl
    return {y: {"shares": int(v["shares"]), "proceeds": cents(v["proceeds"]), "cost": cents(v["cost"]),
                "realized_pnl": cents(v["pnl"])} for y, v in sorted(years.items())}
