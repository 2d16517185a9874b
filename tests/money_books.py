"""What the ledger must hold, kept by the money model in exact arithmetic (the oracle's books).

Per card: shares held (nano-shares), uninvested cash (``Decimal``: capital - buys + sells +
dividends) and every transaction it must have, as a multiset of (side, nano-shares, price).
Per journaled order: the parts the cards have in it, so the model can say what each card must get
of whatever the broker filled (``allocation.allocate_fill``: largest remainder), and what an
order not yet settled already means at the broker. Nothing here reads the database.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Dict, Iterable, Optional, Tuple

from orchestra.allocation import allocate_fill
from shared.shares import NANO, from_nano, to_nano

STATS: Counter = Counter()  # what the runs did, for the benchmark's summary


def money(nano: int, price: float) -> Decimal:
    """nano-shares x price, exactly (the price as the float the ledger stores)."""
    return Decimal(nano) * Decimal(repr(float(price))) / NANO


@dataclass
class Card:
    card_id: int
    ticker: str
    capital: Decimal
    held: int = 0
    cash: Decimal = Decimal(0)
    transactions: Counter = field(default_factory=Counter)

    def move_capital(self, amount: Decimal) -> None:
        """A deposit (or, negative, a withdrawal): capital and uninvested cash move together."""
        self.capital += amount
        self.cash += amount

    def record(self, side: str, nano: int, price: float) -> None:
        sign = 1 if side == "buy" else -1
        self.held += sign * nano
        self.cash -= sign * money(nano, price)
        self.transactions[(side, nano, float(price))] += 1


@dataclass
class Seen:
    """A journaled order as the model saw it: its ticker, side, price and the cards' parts."""

    client_order_id: str
    ticker: str
    side: Optional[str]
    price: Optional[float]
    parts: Dict[int, int]          # card -> nano-shares in the broker order
    open: bool = True

    def allocation(self, filled: int) -> Dict[int, int]:
        """Each card's nano-shares of ``filled`` (what the ledger must record when it ends)."""
        if not filled:
            return {card: 0 for card in self.parts}
        split = allocate_fill(from_nano(filled), {card: from_nano(nano) for card, nano in self.parts.items()})
        return {card: to_nano(shares) for card, shares in split.items()}


class Books:
    def __init__(self) -> None:
        self.cards: Dict[int, Card] = {}
        self.orders: Dict[str, Seen] = {}

    def open_card(self, card_id: int, ticker: str, capital: float) -> None:
        self.cards[card_id] = Card(card_id, ticker, Decimal(repr(float(capital))), cash=Decimal(repr(float(capital))))

    def held_by_ticker(self) -> Dict[str, int]:
        sums: Dict[str, int] = {}
        for card in self.cards.values():
            sums[card.ticker] = sums.get(card.ticker, 0) + card.held
        return sums

    def open_orders(self, ticker: Optional[str] = None) -> Iterable[Seen]:
        return [o for o in self.orders.values() if o.open and ticker in (None, o.ticker)]

    def unsettled(self, filled_at_broker) -> Tuple[Dict[str, int], Dict[int, int], Dict[int, Decimal],
                                                    Dict[int, Decimal]]:
        """What the broker has done of orders the ledger has not settled yet: per ticker the shares
        (signed), per card its shares (signed) and cash (signed), and per card what its open buys
        will still cost (the part not filled yet, at the order's price)."""
        by_ticker: Dict[str, int] = {}
        shares: Dict[int, int] = {}
        cash: Dict[int, Decimal] = {}
        to_pay: Dict[int, Decimal] = {}
        for order in self.open_orders():
            filled = filled_at_broker(order.client_order_id)
            sign = 1 if order.side == "buy" else -1
            by_ticker[order.ticker] = by_ticker.get(order.ticker, 0) + sign * filled
            for card, nano in order.allocation(filled).items():
                shares[card] = shares.get(card, 0) + sign * nano
                cash[card] = cash.get(card, Decimal(0)) - sign * money(nano, order.price)
                if order.side == "buy":
                    to_pay[card] = to_pay.get(card, Decimal(0)) + money(order.parts[card] - nano, order.price)
        return by_ticker, shares, cash, to_pay
