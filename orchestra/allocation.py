"""Pure arithmetic of one ticker's minute: net the cards' decisions into one broker order, cross the
shares that cancel out between cards, and split a (partial) fill across the cards on its side.

Decisions are whole shares, except that a sell of everything a card holds carries its fraction
(a reverse split's remainder). Whole shares net and cross between cards; a fraction never crosses
(no card is handed a fraction it did not ask for): it rides the minute's order when that order
is a sell (or when nothing else goes to the broker), and otherwise waits for a later minute
(``TickerPlan.held_back``). Quantities are exact (``shared.shares``: nano-shares inside).

No I/O: the same decisions always give the same plan, and the same fill the same split, so a
restarted daemon that re-reads the journal allocates exactly as the first run did.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, Mapping, Optional, Tuple, TypeVar

from shared.shares import NANO, Quantity, from_nano, to_nano

K = TypeVar("K")


def largest_remainder(total: int, weights: Mapping[K, int]) -> Dict[K, int]:
    """Split ``total`` whole shares in proportion to ``weights`` (largest remainder method).

    Every part is between 0 and its weight, the parts add up to ``total``, and the leftover
    shares go to the largest fractional remainders, ties to the larger weight, then the smaller key.
    """
    whole = sum(weights.values())
    if any(w < 0 for w in weights.values()) or not 0 <= total <= whole:
        raise ValueError(f"cannot split {total} shares over weights {dict(weights)}")
    if whole == 0:
        return {key: 0 for key in weights}
    parts = {key: total * w // whole for key, w in weights.items()}
    leftover = total - sum(parts.values())
    order = sorted(weights, key=lambda key: (-(total * weights[key] % whole), -weights[key], key))
    for key in order[:leftover]:
        parts[key] += 1
    return parts


@dataclass(frozen=True)
class Intent:
    """What one card wants to do with its ticker this minute (a checked decision, or a liquidation)."""

    card_id: int
    side: str  # 'buy' | 'sell'
    shares: Quantity  # whole, or a sell of everything the card holds (its fraction included)
    reason: str = ""
    liquidation: bool = False  # a stopped card closing its position: the only trade a stopped card makes


@dataclass(frozen=True)
class TickerPlan:
    """One ticker's minute: internal crosses per card, and the single net order with its parts."""

    ticker: str
    intents: Tuple[Intent, ...]
    side: Optional[str]                 # side of the net order; None when everything crosses
    net_shares: Quantity                # 0 when everything crosses
    crossed: Dict[int, int] = field(default_factory=dict)          # card -> whole shares filled internally
    order_parts: Dict[int, Quantity] = field(default_factory=dict)  # card -> shares it has in the net order
    held_back: Dict[int, Quantity] = field(default_factory=dict)    # card -> a sell's fraction not sent this minute

    def intent(self, card_id: int) -> Intent:
        return next(i for i in self.intents if i.card_id == card_id)


def net_ticker(ticker: str, intents: Iterable[Intent]) -> TickerPlan:
    """Buys minus sells in whole shares: the smaller side crosses completely, the larger side
    crosses pro rata and sends the rest as one order; sells' fractions join a net sell (or make
    one), else are held back."""
    chosen = tuple(sorted((i for i in intents if to_nano(i.shares) > 0), key=lambda i: i.card_id))
    if len({i.card_id for i in chosen}) != len(chosen):
        raise ValueError(f"{ticker}: a card may make one decision per minute")
    if any(i.side == "buy" and to_nano(i.shares) % NANO for i in chosen):
        raise ValueError(f"{ticker}: a buy is for whole shares")
    buys = {i.card_id: to_nano(i.shares) // NANO for i in chosen if i.side == "buy"}
    sells = {i.card_id: to_nano(i.shares) // NANO for i in chosen if i.side == "sell"}
    fractions = {i.card_id: to_nano(i.shares) % NANO for i in chosen if i.side == "sell" and to_nano(i.shares) % NANO}
    bought, sold = sum(buys.values()), sum(sells.values())
    big, small, side = (buys, sells, "buy") if bought >= sold else (sells, buys, "sell")
    crossing = sum(small.values())
    big_crossed = largest_remainder(crossing, big)
    crossed = {card: shares for card, shares in {**small, **big_crossed}.items() if shares}
    parts = {card: (shares - big_crossed[card]) * NANO for card, shares in big.items() if shares - big_crossed[card]}
    held_back: Dict[int, Quantity] = {}
    if fractions and (side == "sell" or not parts):
        side = "sell"
        for card, fraction in fractions.items():
            parts[card] = parts.get(card, 0) + fraction
    else:
        held_back = {card: from_nano(fraction) for card, fraction in fractions.items()}
    net = sum(parts.values())
    return TickerPlan(ticker, chosen, side if net else None, from_nano(net), crossed,
                      {card: from_nano(nano) for card, nano in sorted(parts.items())}, held_back)


def allocate_fill(filled: Quantity, plan_parts: Mapping[int, Quantity]) -> Dict[int, Quantity]:
    """The net order's fill per card: everything when it filled completely, pro rata when partial
    (largest remainder, in whole shares when the order and the fill are whole, else in nano-shares)."""
    nano = {card: to_nano(shares) for card, shares in plan_parts.items()}
    total = to_nano(filled)
    if total % NANO == 0 and all(part % NANO == 0 for part in nano.values()):
        return {card: int(shares) for card, shares in
                largest_remainder(total // NANO, {card: part // NANO for card, part in nano.items()}).items()}
    return {card: from_nano(part) for card, part in largest_remainder(total, nano).items()}
