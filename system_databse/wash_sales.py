"""Wash sales: the losses a broker disallows on Form 1099-B because the stock was bought again.

The IRS rule as the broker applies it to one account (Publication 550, "Wash Sales"): a sale at
a loss is a wash sale when substantially identical stock (here: the same ticker, bought by any
card, the same or another, running or stopped) is bought within 30 calendar days before or
after the sale (trade dates in New York). Then

- the loss is matched share for share against the replacement shares bought in that window,
  the earliest purchase first; a loss on more shares than were replaced is disallowed only
  pro rata (for as many shares as were replaced);
- a replacement share serves at most one loss sale (loss sales are taken in time order);
- the purchase whose shares the sale itself sells is not its replacement, and a purchase made
  before the sale counts only for the shares still held after it (shares bought and sold again
  before the loss sale replaced nothing);
- a sale at a gain is never a wash sale.

The disallowed loss is not lost: the broker adds it to the replacement shares' cost, so it comes
back when those are sold. This module reports what is disallowed and by which purchase; each
card's own realized P&L (``fifo``) is left as the card earned it.

Limits, kept simple on purpose: losses are the cards' FIFO losses (the broker pairs sales with
the account's lots, and sees only the net orders; shares crossed between cards never reach it),
the basis added to replacement shares is not carried into their later sales, and share counts
across a split inside the window are compared as recorded. The 1099-B stays the authority.

Pure functions over the cards' fills and corporate actions (each fill with its ledger ``id``);
the exports do the I/O.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Dict, Iterable, List, Mapping, Tuple
from zoneinfo import ZoneInfo

from system_databse import fifo

WINDOW_DAYS = 30
NEW_YORK = ZoneInfo(fifo.TAX_ZONE)


def trade_date(timestamp: str) -> date:
    """The exchange's calendar date of a UTC ``YYYY-MM-DDTHH:MM:SSZ`` stamp."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(NEW_YORK).date()


@dataclass(frozen=True)
class WashSale:
    """The part of one loss sale disallowed because of one replacement purchase."""

    card_id: Any
    ticker: str
    sale_id: Any
    sold_at: str  # UTC
    shares: float  # sold shares matched to replacement shares, one for one
    proceeds: float  # of those shares
    cost: float  # of those shares (the card's FIFO cost)
    replacement_card_id: Any
    replacement_id: Any
    replacement_at: str  # UTC

    @property
    def disallowed(self) -> float:
        return self.cost - self.proceeds

    @property
    def year(self) -> int:
        return trade_date(self.sold_at).year


@dataclass
class _Purchase:
    """A buy of some card, with the times its shares were sold (in the buy's own shares)."""

    key: Tuple[str, Any]
    day: date
    card_id: Any
    shares: float
    price: float
    sold: List[Tuple[Tuple[str, Any], float]] = field(default_factory=list)
    used: float = 0.0

    def available(self, sale_key: Tuple[str, Any]) -> float:
        """Shares still free to replace a loss sold at ``sale_key``."""
        if self.key < sale_key:  # bought before: only what is still held after the sale
            held = self.shares - sum(shares for key, shares in self.sold if key <= sale_key)
        else:
            held = self.shares
        return held - self.used


@dataclass
class _Loss:
    card_id: Any
    ticker: str
    piece: fifo.Closed
    sale_lots: frozenset

    @property
    def key(self) -> Tuple[str, Any]:
        return self.piece.closed, self.piece.sale_id


class _Book:
    """One ticker's purchases in time order. A purchase with no share left to give is skipped from
    then on (``retire``): what it can give never grows as later sales are matched, so each loss
    looks only at purchases that can still replace it, and a long history stays linear."""

    def __init__(self, purchases: List[_Purchase]):
        self.purchases = sorted(purchases, key=lambda p: p.key)
        self.days = [p.day for p in self.purchases]
        self._next = list(range(len(self.purchases) + 1))  # the next purchase not retired, from here

    def alive_from(self, index: int) -> int:
        root = index
        while self._next[root] != root:
            root = self._next[root]
        while self._next[index] != root:  # path compression
            self._next[index], index = root, self._next[index]
        return root

    def retire(self, index: int) -> None:
        self._next[index] = index + 1

    def window(self, day: date) -> Tuple[int, int]:
        """Indexes of the purchases with trade dates within 30 days of ``day``."""
        return (bisect.bisect_left(self.days, day - timedelta(days=WINDOW_DAYS)),
                bisect.bisect_right(self.days, day + timedelta(days=WINDOW_DAYS)))


def _replay(cards: Iterable[Mapping[str, Any]]) -> Tuple[Dict[str, _Book], List[_Loss]]:
    """Every card's purchases (a book per ticker) and loss pieces (FIFO), linked by lot."""
    purchases: Dict[str, List[_Purchase]] = {}
    losses: List[_Loss] = []
    for card in cards:
        history = list(card["transactions"])
        matched = fifo.match(history, card.get("actions", ()))
        own = {t["id"]: _Purchase((t["timestamp"], t["id"]), trade_date(t["timestamp"]), card["id"],
                                  float(t["shares"]), float(t["price"]))
               for t in history if t["type"] == "buy"}
        purchases.setdefault(card["ticker"], []).extend(own.values())
        lots_of_sale: Dict[Any, set] = {}
        for piece in matched.closed:
            lot = own[piece.lot_id]
            # a split changed the shares and the price, never the cost: back in the buy's own shares
            lot.sold.append(((piece.closed, piece.sale_id), piece.shares * piece.entry_price / lot.price))
            lots_of_sale.setdefault(piece.sale_id, set()).add(piece.lot_id)
        losses += [_Loss(card["id"], card["ticker"], piece, frozenset(lots_of_sale[piece.sale_id]))
                   for piece in matched.closed if piece.pnl < -fifo.EPSILON]
    return {ticker: _Book(bought) for ticker, bought in purchases.items()}, losses


def find(cards: Iterable[Mapping[str, Any]]) -> List[WashSale]:
    """The wash sales among the cards' fills, in the order of the loss sales.

    ``cards``: mappings with ``id``, ``ticker``, ``transactions`` (the card's fills, oldest first,
    each with ``id``, ``type``, ``shares``, ``price``, ``timestamp``) and optional ``actions``
    (its corporate-action effects, as ``fifo.match`` takes them).
    """
    books, losses = _replay(cards)
    found: Dict[Tuple[Any, Any, Any], WashSale] = {}
    for loss in sorted(losses, key=lambda item: item.key):
        book = books[loss.ticker]
        first, last = book.window(trade_date(loss.piece.closed))
        left = float(loss.piece.shares)
        index = book.alive_from(first)
        while index < last and left > fifo.EPSILON:
            purchase = book.purchases[index]
            if purchase.key[1] not in loss.sale_lots:  # the lot being sold is not its own replacement
                taken = min(left, purchase.available(loss.key))
                if taken > fifo.EPSILON:
                    purchase.used += taken
                    left -= taken
                    _add(found, loss, purchase, taken)
                if purchase.available(loss.key) <= fifo.EPSILON:
                    book.retire(index)
            index = book.alive_from(index + 1)
    return list(found.values())


def _add(found: Dict[Tuple[Any, Any, Any], WashSale], loss: _Loss, purchase: _Purchase, shares: float) -> None:
    """One row per loss sale and replacement purchase (a sale may close several lots)."""
    piece = loss.piece
    key = (loss.card_id, piece.sale_id, purchase.key[1])
    before = found.get(key)
    found[key] = WashSale(
        loss.card_id, loss.ticker, piece.sale_id, piece.closed,
        shares + (before.shares if before else 0.0),
        shares * piece.exit_price + (before.proceeds if before else 0.0),
        shares * piece.entry_price + (before.cost if before else 0.0),
        purchase.card_id, purchase.key[1], purchase.key[0])


def disallowed_by_year(washes: Iterable[WashSale]) -> Dict[int, float]:
    """Disallowed losses per tax year of the loss sale (its trade date in New York), in cents."""
    years: Dict[int, float] = {}
    for wash in washes:
        years[wash.year] = years.get(wash.year, 0.0) + wash.disallowed
    return {year: fifo.cents(amount) for year, amount in sorted(years.items())}
