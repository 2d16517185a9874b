"""Open lots and realized P&L of a card, first in first out, from its transaction history.

Each buy opens a lot; each sell closes the oldest lots first (a partly sold lot keeps its entry
price for the shares left). With

    open cost  = sum(shares x entry price) over the open lots
    realized   = sum((sell price - entry price) x shares) over every closed piece of a lot
    unrealized = shares x current price - open cost

these identities hold for every history (and are property-tested):

    sum(lot shares)       = shares (sum bought - sum sold, through splits; a fraction included)
    open cost - realized  = invested (sum buy cost - sum sell proceeds - dividends)
    unrealized + realized = P&L (current value - initial capital)

Corporate actions (``corporate_action_effects`` rows) act at their ``effective_at``, before any
fill of that minute: a split multiplies every open lot's shares by new/old and divides its entry
price by the same (its cost is unchanged); a dividend is realized at once (reported apart, since
a tax return asks for it apart from gains).

so the detail view's lots and realized P&L always agree with the card's value and P&L.
Pure functions over plain rows (oldest first); money is rounded only when reported.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional
from zoneinfo import ZoneInfo

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
    lot_id: Any = None  # the buy's transaction id (the lot), and the sell's: wash sales need both
    sale_id: Any = None

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
class Dividend:
    cash: float
    ex_date: str


@dataclass
class Fifo:
    lots: List[Lot] = field(default_factory=list)
    closed: List[Closed] = field(default_factory=list)
    dividends: List[Dividend] = field(default_factory=list)

    @property
    def shares(self) -> float:
        return sum(lot.shares for lot in self.lots)

    @property
    def open_cost(self) -> float:
        return sum(lot.shares * lot.price for lot in self.lots)

    @property
    def realized(self) -> float:
        """Gains of the shares sold plus dividends received."""
        return sum(piece.pnl for piece in self.closed) + self.dividend_cash

    @property
    def dividend_cash(self) -> float:
        return sum(d.cash for d in self.dividends)


EPSILON = 1e-9  # a lot left with less than this (float rounding after a split) is closed


def _events(transactions: Iterable[Mapping[str, Any]], actions: Iterable[Mapping[str, Any]]) -> list:
    """Fills and corporate actions in time order; an action goes first within its minute."""
    merged = [(a["effective_at"], 0, i, a) for i, a in enumerate(actions)]
    merged += [(t["timestamp"], 1, i, t) for i, t in enumerate(transactions)]
    return [event for *_, event in sorted(merged, key=lambda e: e[:3])]


def _apply_action(action: Mapping[str, Any], lots: deque, dividends: List[Dividend]) -> None:
    if action["kind"] == "cash_dividend":
        dividends.append(Dividend(float(action["cash"]), action["ex_date"]))
        return
    ratio = float(action["new_rate"]) / float(action["old_rate"])
    for lot in lots:
        lot.shares *= ratio
        lot.price /= ratio


def match(transactions: Iterable[Mapping[str, Any]], actions: Iterable[Mapping[str, Any]] = ()) -> Fifo:
    """Replay fills (and corporate actions); a sell beyond the open lots raises ValueError."""
    lots: deque[Lot] = deque()
    closed: List[Closed] = []
    dividends: List[Dividend] = []
    for t in _events(transactions, actions):
        if "effective_at" in t and "kind" in t:
            _apply_action(t, lots, dividends)
            continue
        shares, price = t["shares"], float(t["price"])  # a fractional sell (a liquidated remainder) too
        if t["type"] == "buy":
            lots.append(Lot(shares, price, t["timestamp"], t.get("id")))
            continue
        left = float(shares)
        while left > EPSILON:
            if not lots:
                raise ValueError(f"sell of {shares} shares at {t['timestamp']} exceeds the open lots")
            lot = lots[0]
            taken = min(left, lot.shares)
            closed.append(Closed(taken, lot.price, price, lot.timestamp, t["timestamp"], lot.transaction_id,
                                 t.get("id")))
            lot.shares -= taken
            left -= taken
            if lot.shares <= EPSILON:
                lots.popleft()
    return Fifo(list(lots), closed, dividends)


def quantity(shares: float) -> float | int:
    """Whole shares as an int; a split's fraction to the broker's 9 decimals."""
    rounded = round(shares, 9)
    return int(rounded) if rounded == int(rounded) else rounded


def cents(amount: float) -> float:
    return round(amount + 0.0, 2)


def lots_report(fifo: Fifo, current_price: Optional[float]) -> List[Dict[str, Any]]:
    """Open lots, oldest first, each with its unrealized P&L at ``current_price`` (None without a price)."""
    rows = []
    for lot in fifo.lots:
        unrealized = None if current_price is None else cents((current_price - lot.price) * lot.shares)
        rows.append({"shares": quantity(lot.shares), "entry_price": round(lot.price, 6), "opened": lot.timestamp,
                     "transaction_id": lot.transaction_id, "cost": cents(lot.shares * lot.price),
                     "unrealized_pnl": unrealized})
    return rows


def summary(fifo: Fifo, current_price: Optional[float]) -> Dict[str, Any]:
    """Realized and unrealized P&L of a card, plus its open lots."""
    unrealized = None if current_price is None else cents(fifo.shares * current_price - fifo.open_cost)
    return {"realized_pnl": cents(fifo.realized), "dividends": cents(fifo.dividend_cash), "unrealized_pnl": unrealized,
            "open_cost": cents(fifo.open_cost), "lots": lots_report(fifo, current_price)}


def sale_year(timestamp: str) -> int:
    """The year of a ``YYYY-MM-DDTHH:MM:SSZ`` sale on the exchange's calendar (stdlib: the ledger needs no pandas)."""
    utc = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return utc.astimezone(ZoneInfo(TAX_ZONE)).year


def realized_by_year(fifo: Fifo) -> Dict[int, Dict[str, Any]]:
    """Per tax year of the sale: shares sold, proceeds, cost basis (FIFO), gain; and dividends by ex-date year."""
    years: Dict[int, Dict[str, float]] = {}

    def year_of(y: int) -> Dict[str, float]:
        return years.setdefault(y, {"shares": 0.0, "proceeds": 0.0, "cost": 0.0, "pnl": 0.0, "dividends": 0.0})

    for piece in fifo.closed:
        year = year_of(sale_year(piece.closed))
        year["shares"] += piece.shares
        year["proceeds"] += piece.proceeds
        year["cost"] += piece.cost
        year["pnl"] += piece.pnl
    for dividend in fifo.dividends:
        year_of(int(dividend.ex_date[:4]))["dividends"] += dividend.cash
    return {y: {"shares": quantity(v["shares"]), "proceeds": cents(v["proceeds"]), "cost": cents(v["cost"]),
                "realized_pnl": cents(v["pnl"]), "dividends": cents(v["dividends"])} for y, v in sorted(years.items())}
