"""Wash sales: a loss the broker disallows because some card bought the same stock within 30 days.

The stories an owner reconciling a 1099-B meets, then the rule's bounds for every history
(hypothesis): never more disallowed than lost, no replacement share used twice.
"""
from __future__ import annotations

import itertools
from datetime import date, timedelta

from hypothesis import given, settings, strategies as st

from system_databse import fifo, wash_sales

DAY_ONE = date(2026, 3, 2)
_ids = itertools.count(1)


def fill(side: str, shares: int, price: float, day: int, hour: str = "15:00") -> dict:
    """A fill on trading day ``day`` (day 1 = 2026-03-02), at ``hour`` UTC (15:00 = 10:00 in New York)."""
    stamp = f"{(DAY_ONE + timedelta(days=day - 1)).isoformat()}T{hour}:00Z"
    return {"id": next(_ids), "type": side, "shares": shares, "price": price, "timestamp": stamp}


def card(card_id: int, *fills: dict, ticker: str = "XYZ") -> dict:
    return {"id": card_id, "ticker": ticker, "transactions": list(fills)}


def summary(washes) -> list[tuple]:
    return [(w.card_id, fifo.quantity(w.shares), fifo.cents(w.disallowed), w.replacement_card_id,
             wash_sales.trade_date(w.replacement_at).isoformat()) for w in washes]


def test_card_b_buying_after_card_a_sold_at_a_loss_disallows_the_loss_on_as_many_shares():
    """A buys 100 @ 50, sells 100 @ 40 on day 10 (-1,000); B buys 60 @ 41 on day 25: 60 x 10 = 600 disallowed."""
    a = card(1, fill("buy", 100, 50.0, 1), fill("sell", 100, 40.0, 10))
    b = card(2, fill("buy", 60, 41.0, 25))
    washes = wash_sales.find([a, b])
    assert summary(washes) == [(1, 60, 600.0, 2, "2026-03-26")]
    assert wash_sales.trade_date(washes[0].sold_at) == date(2026, 3, 11)
    assert (fifo.cents(washes[0].proceeds), fifo.cents(washes[0].cost)) == (2400.0, 3000.0)


def test_a_purchase_31_days_after_the_sale_is_no_replacement_but_30_days_is():
    a = card(1, fill("buy", 100, 50.0, 1), fill("sell", 100, 40.0, 10))
    assert wash_sales.find([a, card(2, fill("buy", 60, 41.0, 41))]) == []
    assert summary(wash_sales.find([a, card(2, fill("buy", 60, 41.0, 40))])) == [(1, 60, 600.0, 2, "2026-04-10")]


def test_a_purchase_before_the_sale_still_held_is_a_replacement():
    a = card(1, fill("buy", 100, 50.0, 1), fill("sell", 100, 40.0, 10))
    b = card(2, fill("buy", 60, 45.0, 5))
    assert summary(wash_sales.find([a, b])) == [(1, 60, 600.0, 2, "2026-03-06")]


def test_a_purchase_before_the_sale_already_sold_again_replaced_nothing():
    a = card(1, fill("buy", 100, 50.0, 1), fill("sell", 100, 40.0, 10))
    b = card(2, fill("buy", 60, 45.0, 5), fill("sell", 60, 46.0, 8))
    assert wash_sales.find([a, b]) == []
    half = card(2, fill("buy", 60, 45.0, 5), fill("sell", 20, 46.0, 8))  # 40 still held on day 10
    assert summary(wash_sales.find([a, half])) == [(1, 40, 400.0, 2, "2026-03-06")]


def test_the_same_card_buying_again_washes_its_own_loss():
    a = card(1, fill("buy", 100, 50.0, 1), fill("sell", 100, 40.0, 10), fill("buy", 100, 41.0, 20))
    assert summary(wash_sales.find([a])) == [(1, 100, 1000.0, 1, "2026-03-21")]


def test_the_lot_being_sold_is_not_its_own_replacement():
    """Bought on day 1, 40 of the 100 sold at a loss on day 5: the rest of that purchase replaces nothing."""
    a = card(1, fill("buy", 100, 50.0, 1), fill("sell", 40, 40.0, 5))
    assert wash_sales.find([a]) == []


def test_a_sale_at_a_gain_is_never_flagged():
    a = card(1, fill("buy", 100, 50.0, 1), fill("sell", 100, 60.0, 10))
    b = card(2, fill("buy", 60, 41.0, 12))
    assert wash_sales.find([a, b]) == []


def test_a_sale_is_matched_to_the_earliest_replacements_first_and_each_share_serves_once():
    a = card(1, fill("buy", 100, 50.0, 1), fill("sell", 100, 40.0, 10))
    c = card(3, fill("buy", 100, 30.0, -30), fill("sell", 100, 25.0, 12))  # a second loss, 2 days later
    b = card(2, fill("buy", 30, 41.0, 15))
    d = card(4, fill("buy", 50, 42.0, 20), fill("buy", 90, 43.0, 22))
    assert summary(wash_sales.find([a, b, c, d])) == [
        (1, 30, 300.0, 2, "2026-03-16"),   # A's 100: B's 30 first (earliest) ...
        (1, 50, 500.0, 4, "2026-03-21"),   # ... then D's 50 ...
        (1, 20, 200.0, 4, "2026-03-23"),   # ... then 20 of D's 90
        (3, 70, 350.0, 4, "2026-03-23")]   # C's 100 @ -5: only the 70 shares A left unused


def test_other_tickers_are_not_substantially_identical():
    a = card(1, fill("buy", 100, 50.0, 1), fill("sell", 100, 40.0, 10))
    assert wash_sales.find([a, card(2, fill("buy", 60, 41.0, 12), ticker="ABC")]) == []


def test_disallowed_losses_count_in_the_year_of_the_sale_on_the_exchange():
    """20:30 UTC on Dec 31 and 02:00 UTC on Jan 1 are both Dec 31 in New York: the 2025 tax year."""
    late = {"id": 901, "type": "sell", "shares": 10, "price": 40.0, "timestamp": "2026-01-01T02:00:00Z"}
    a = card(1, {"id": 900, "type": "buy", "shares": 20, "price": 50.0, "timestamp": "2025-12-01T15:00:00Z"},
             {"id": 902, "type": "sell", "shares": 10, "price": 45.0, "timestamp": "2025-12-31T20:30:00Z"}, late,
             {"id": 903, "type": "buy", "shares": 30, "price": 41.0, "timestamp": "2026-01-05T15:00:00Z"},
             {"id": 904, "type": "sell", "shares": 30, "price": 39.0, "timestamp": "2026-01-20T15:00:00Z"},
             {"id": 905, "type": "buy", "shares": 5, "price": 38.0, "timestamp": "2026-02-02T15:00:00Z"})
    washes = wash_sales.find([a])
    assert [(w.year, fifo.quantity(w.shares), fifo.cents(w.disallowed)) for w in washes] == [
        (2025, 10, 50.0), (2025, 10, 100.0), (2026, 5, 10.0)]
    assert wash_sales.disallowed_by_year(washes) == {2025: 150.0, 2026: 10.0}


# --------------------------------------------------------------------------- every history


@st.composite
def account(draw):
    """Up to four cards trading one ticker over 90 days, never selling more than they hold."""
    cards = []
    for card_id in range(1, draw(st.integers(1, 4)) + 1):
        fills, held, day = [], 0, 0
        for _ in range(draw(st.integers(0, 10))):
            day += draw(st.integers(0, 12))
            price = draw(st.integers(100, 200)) / 2
            if held and draw(st.booleans()):
                shares = draw(st.integers(1, held))
                held -= shares
                fills.append(fill("sell", shares, price, day + 1, f"{14 + card_id}:{len(fills):02d}"))
            else:
                shares = draw(st.integers(1, 50))
                held += shares
                fills.append(fill("buy", shares, price, day + 1, f"{14 + card_id}:{len(fills):02d}"))
        cards.append(card(card_id, *fills))
    return cards


@settings(max_examples=300, deadline=None)
@given(account())
def test_never_more_disallowed_than_lost_and_no_replacement_share_used_twice(cards):
    washes = wash_sales.find(cards)
    losses, bought, lots_sold, when = {}, {}, {}, {}
    for c in cards:
        for piece in fifo.match(c["transactions"]).closed:
            losses[piece.sale_id] = losses.get(piece.sale_id, 0.0) + max(0.0, -piece.pnl)
            lots_sold.setdefault(piece.sale_id, set()).add(piece.lot_id)
        for t in c["transactions"]:
            when[t["id"]] = wash_sales.trade_date(t["timestamp"])
            if t["type"] == "buy":
                bought[t["id"]] = t["shares"]
    disallowed, used = {}, {}
    for w in washes:
        assert w.disallowed > 0 and w.shares > 0
        assert abs((when[w.replacement_id] - when[w.sale_id]).days) <= 30
        assert w.replacement_id not in lots_sold[w.sale_id]
        disallowed[w.sale_id] = disallowed.get(w.sale_id, 0.0) + w.disallowed
        used[w.replacement_id] = used.get(w.replacement_id, 0.0) + w.shares
    for sale, amount in disallowed.items():
        assert amount <= losses[sale] + 1e-6  # a gain sale (no loss) can never appear here
    for purchase, shares in used.items():
        assert shares <= bought[purchase] + 1e-9
    by_year = wash_sales.disallowed_by_year(washes)
    assert abs(sum(by_year.values()) - sum(w.disallowed for w in washes)) <= 0.005 * len(by_year) + 1e-9
