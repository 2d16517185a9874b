"""Pure arithmetic of one ticker's minute: net the cards' decisions into one broker order, cross the
shares that cancel out between cards, and split a (partial) fill across the cards on its side.

No I/O: the same decisions always give the same plan, and the same fill the same split, so a
restarted daemon that re-reads the journal allocates exactly as the first run did.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, Mapping, Optional, Tuple, TypeVar

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
    shares: int
    reason: str = ""
    liquidation: bool = False  # a stopped card closing its position: the only trade a stopped card makes


@dataclass(frozen=True)
class TickerPlan:
    """One ticker's minute: internal crosses per card, and the single net order with its parts."""

    ticker: str
    intents: Tuple[Intent, ...]
    side: Optional[str]                 # side of the net order; None when everything crosses
    net_shares: int                     # 0 when everything crosses
    crossed: Dict[int, int] = field(default_factory=dict)      # card -> shares filled internally
    order_parts: Dict[int, int] = field(default_factory=dict)  # card -> shares it has in the net order

    def intent(self, card_id: int) -> Intent:
        return next(i for i in self.intents if i.card_id == card_id)


def net_ticker(ticker: str, intents: Iterable[Intent]) -> TickerPlan:
    """Buys minus sells: the smaller side crosses completely, the larger side crosses pro rata and
    sends the rest as one order."""
    chosen = tuple(sorted((i for i in intents if i.shares > 0), key=lambda i: i.card_id))
    if len({i.card_id for i in chosen}) != len(chosen):
        raise ValueError(f"{ticker}: a card may make one decision per minute")
    buys = {i.card_id: i.shares for i in chosen if i.side == "buy"}
    sells = {i.card_id: i.shares for i in chosen if i.side == "sell"}
    bought, sold = sum(buys.values()), sum(sells.values())
    big, small, side = (buys, sells, "buy") if bought >= sold else (sells, buys, "sell")
    crossing = sum(small.values())
    big_crossed = largest_remainder(crossing, big)
    crossed = {card: shares for card, shares in {**small, **big_crossed}.items() if shares}
    parts = {card: shares - big_crossed[card] for card, shares in big.items() if shares - big_crossed[card]}
    net = sum(parts.values())
    return TickerPlan(ticker, chosen, side if net else None, net, crossed, parts)


def allocate_fill(filled: int, plan_parts: Mapping[int, int]) -> Dict[int, int]:
    """The net order's fill per card: everything when it filled completely, pro rata when partial."""
    return {card: shares for card, shares in largest_remainder(filled, plan_parts).items()}
