"""A card's position: the one definition every part of the system uses.

    held             = Σ bought - Σ sold + what splits added or removed    (exact, in nano-shares)
    whole / fraction = held split at the decimal point (a fraction: a reverse split's remainder,
                       or the rest of a sell that could not take it yet)
    invested         = Σ buy cost - Σ sell proceeds - dividends received
    capital          = initial capital + Σ deposits - Σ withdrawals       (its allocation now)
    uninvested cash  = capital - invested                                 (the only cash it may spend)
    reserved         = what its open orders have promised: shares to open sells, and the proceeds
                       of open sells and the cost of open buys at the minute's price
    withdrawable     = uninvested cash - the cost of its open buys        (what the owner may take back)

A deposit or a withdrawal (``system_databse.capital``) moves only capital and uninvested cash:
shares, invested money and P&L (value - capital) do not move with them.

The decision checker, the wall, the broker guard, corporate actions, the exports and
``scripts.reconcile`` read positions from here (``positions``), built on the ledger's one
aggregate (``transactions.holdings``); quantities compare in nano-shares (``shared.shares``), so
there is no tolerance anywhere. Reads only; nothing here writes.
"""
from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional

from shared.shares import NANO, Quantity, from_nano, to_nano, whole_part
from system_databse.cards import get_all_algorithms
from system_databse.connection import use_connection
from system_databse.orders import open_order_claims
from system_databse.transactions import EMPTY, holdings


@dataclass(frozen=True)
class Position:
    """One card's position now (see the module's definition)."""

    card_id: int
    ticker: str
    running: bool
    initial_capital: float               # as the card was created
    held_nano: int = 0
    invested: float = 0.0                # buys - sells - dividends
    dividends: float = 0.0
    trade_count: int = 0
    selling_nano: int = 0                # shares promised to open sell orders
    buying_cost: float = 0.0             # cash promised to open buys (at the minute's price)
    selling_proceeds: float = 0.0        # cash open sells will bring (at the minute's price)
    deposits: float = 0.0                # capital the owner added since its creation
    withdrawals: float = 0.0             # capital the owner took back

    @property
    def capital(self) -> float:
        """The card's allocation now: what it was created with, plus deposits, minus withdrawals."""
        return capital_of(self.initial_capital, self.deposits, self.withdrawals)

    @property
    def shares(self) -> Quantity:
        """Everything held, the fraction included (an int when whole)."""
        return from_nano(self.held_nano)

    @property
    def whole(self) -> int:
        return whole_part(self.held_nano)

    @property
    def fraction(self) -> float:
        return float(from_nano(self.held_nano - self.whole * NANO))

    @property
    def uninvested_cash(self) -> float:
        return self.capital - self.invested

    @property
    def has_shares(self) -> bool:
        return self.held_nano > 0

    def withdrawable(self) -> float:
        """What the owner may take back now: uninvested cash its open buys have not promised (a
        withdrawal never sells; a stopped card has nothing to withdraw)."""
        if not self.running:
            return 0.0
        return max(0.0, self.uninvested_cash - self.buying_cost)

    def claim_on_broker_cash(self) -> float:
        """What of the broker's cash belongs to this card, so a new card may not take it.

        A running card owns its uninvested cash (its open buys are paid from it) and the proceeds
        of its open sells (the broker may have paid them before the ledger settled the order). A
        stopped card owns nothing, but its open buys will still take their cost from the cash."""
        if self.running:
            return max(0.0, self.uninvested_cash) + self.selling_proceeds
        return self.buying_cost


def capital_of(initial_capital: float, deposits: float = 0.0, withdrawals: float = 0.0) -> float:
    """A card's capital: its initial capital plus what the owner deposited minus what was withdrawn."""
    return float(initial_capital) + deposits - withdrawals


def positions(*, conn: Optional[sqlite3.Connection] = None, cards: Optional[List[Mapping[str, Any]]] = None,
              open_orders: bool = True) -> Dict[int, Position]:
    """Every card's ``Position`` (``cards``: the card rows already read, to save a query), in
    four grouped queries whatever the number of cards (fills, corporate actions, capital moves,
    open orders); ``open_orders=False`` skips the reservations."""
    with use_connection(conn) as c:
        rows = cards if cards is not None else get_all_algorithms(conn=c)
        held = holdings(c, (card["id"] for card in rows)) if cards is not None else holdings(c)
        claims = claims_by_card(open_order_claims(conn=c)) if open_orders else {}
    return {int(card["id"]): _position(card, held.get(card["id"], EMPTY), claims.get(int(card["id"]), {}))
            for card in rows}


def _position(card: Mapping[str, Any], held: Mapping[str, Any], claims: Mapping[str, Any]) -> Position:
    return Position(int(card["id"]), card["ticker"], card["status"] == "running", float(card["initial_capital"]),
                    held["nano"], held["invested"] - held["dividends"], held["dividends"], held["trade_count"],
                    claims.get("selling_nano", 0), claims.get("buying_cost", 0.0), claims.get("selling_proceeds", 0.0),
                    held["deposits"], held["withdrawals"])


def claims_by_card(claims: Iterable[Dict[str, Any]]) -> Dict[int, Dict[str, Any]]:
    """``open_order_claims`` summed per card: shares promised to open sells (nano), the cost of open
    buys and the proceeds of open sells at the minute's price (0 when no price was known)."""
    out: Dict[int, Dict[str, Any]] = {}
    for claim in claims:
        card = out.setdefault(int(claim["algorithm_id"]), {"selling_nano": 0, "buying_cost": 0.0, "selling_proceeds": 0.0})
        amount = float(claim["shares"]) * float(claim["price"] or 0.0)
        if claim["side"] == "sell":
            card["selling_nano"] += to_nano(claim["shares"])
            card["selling_proceeds"] += amount
        else:
            card["buying_cost"] += amount
    return out


def by_ticker(cards: Iterable[Position]) -> Dict[str, Quantity]:
    """Σ every card's shares (running and stopped, fractions included) per ticker it holds."""
    sums: Dict[str, int] = {}
    for position in cards:
        if position.held_nano:
            sums[position.ticker] = sums.get(position.ticker, 0) + position.held_nano
    return {ticker: from_nano(nano) for ticker, nano in sums.items()}


def cards_by_ticker(*, conn: Optional[sqlite3.Connection] = None) -> Dict[str, Quantity]:
    """``by_ticker`` of every card in the ledger: what the broker should hold per ticker."""
    return by_ticker(positions(conn=conn, open_orders=False).values())


def mismatches(broker_positions: Mapping[str, Any], card_positions: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Tickers where the broker holds a different quantity than the cards add up to (exactly, to
    the ninth decimal), with both quantities."""
    tickers = sorted(set(broker_positions) | set(card_positions))
    return [{"ticker": t, "broker": from_nano(to_nano(broker_positions.get(t, 0))),
             "cards": from_nano(to_nano(card_positions.get(t, 0)))}
            for t in tickers if to_nano(broker_positions.get(t, 0)) != to_nano(card_positions.get(t, 0))]


def available_cash(broker_cash: float, cards: Iterable[Position]) -> Dict[str, float]:
    """Cash free for a new card: the broker's cash minus every card's claim on it
    (``Position.claim_on_broker_cash``). Invested money has already left the broker's cash, so a
    running card reserves only its uninvested part."""
    if isinstance(broker_cash, bool) or not isinstance(broker_cash, (int, float)) or not math.isfinite(broker_cash):
        raise ValueError(f"broker cash must be a finite number, got {broker_cash!r}")
    reserved = sum(position.claim_on_broker_cash() for position in cards)
    return {"alpaca_cash": round(broker_cash + 0.0, 2), "reserved": round(reserved + 0.0, 2),
            "available_cash": round(broker_cash - reserved + 0.0, 2)}
