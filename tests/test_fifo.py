"""FIFO lots and realized P&L: the stories an owner checks, and the identities for every history."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from system_databse import card_calculations, daily_pnl, fifo


def tx(kind, shares, price, stamp="2026-11-23T15:00:00Z", tx_id=None):
    return {"id": tx_id, "type": kind, "shares": shares, "price": price, "timestamp": stamp}


def test_two_buys_then_a_sell_close_the_oldest_lot_first():
    matched = fifo.match([tx("buy", 10, 100.0, "2026-11-23T15:00:00Z"), tx("buy", 10, 110.0, "2026-11-23T16:00:00Z"),
                          tx("sell", 15, 120.0, "2026-11-24T15:00:00Z")])
    # 10 @ 100 and 5 @ 110 are sold at 120: (20 x 10) + (10 x 5) = 250 realized
    assert fifo.cents(matched.realized) == 250.0
    summary = fifo.summary(matched, 105.0)
    assert summary["lots"] == [{"shares": 5, "entry_price": 110.0, "opened": "2026-11-23T16:00:00Z",
                                "transaction_id": None, "cost": 550.0, "unrealized_pnl": -25.0}]
    assert (summary["realized_pnl"], summary["unrealized_pnl"], summary["open_cost"]) == (250.0, -25.0, 550.0)


def test_a_card_without_a_price_has_no_unrealized_figure():
    summary = fifo.summary(fifo.match([tx("buy", 3, 50.0)]), None)
    assert summary["unrealized_pnl"] is None and summary["lots"][0]["unrealized_pnl"] is None


def test_realized_pnl_is_reported_per_tax_year_of_the_sale_on_the_exchange():
    matched = fifo.match([tx("buy", 10, 100.0, "2025-06-02T15:00:00Z"),
                          tx("sell", 4, 90.0, "2025-12-31T20:59:00Z"),      # 15:59 ET on Dec 31: 2025
                          tx("sell", 6, 130.0, "2026-01-02T14:31:00Z")])
    assert fifo.realized_by_year(matched) == {
        2025: {"shares": 4, "proceeds": 360.0, "cost": 400.0, "realized_pnl": -40.0, "dividends": 0.0},
        2026: {"shares": 6, "proceeds": 780.0, "cost": 600.0, "realized_pnl": 180.0, "dividends": 0.0},
    }


def test_a_split_doubles_the_lots_at_half_the_price_and_a_dividend_is_realized():
    split = {"kind": "forward_split", "old_rate": 1, "new_rate": 2, "effective_at": "2026-11-24T14:30:00Z",
             "ex_date": "2026-11-24", "cash": 0.0}
    dividend = {"kind": "cash_dividend", "rate": 0.5, "cash": 10.0, "effective_at": "2026-11-25T14:30:00Z",
                "ex_date": "2026-11-25"}
    matched = fifo.match([tx("buy", 10, 100.0, "2026-11-23T15:00:00Z"), tx("sell", 5, 60.0, "2026-11-25T15:00:00Z")],
                         [dividend, split])
    # 10 @ 100 become 20 @ 50; 5 sold @ 60 gain 50; the 20 shares paid 10.00 of dividends
    assert [(lot.shares, lot.price) for lot in matched.lots] == [(15, 50.0)]
    assert (fifo.cents(matched.realized), matched.dividend_cash) == (60.0, 10.0)
    assert fifo.realized_by_year(matched)[2026] == {"shares": 5, "proceeds": 300.0, "cost": 250.0,
                                                    "realized_pnl": 50.0, "dividends": 10.0}


@st.composite
def histories(draw):
    """Valid card histories: never selling more than held, prices with cents."""
    rows, held = [], 0
    for i in range(draw(st.integers(0, 25))):
        if held and draw(st.booleans()):
            shares = draw(st.integers(1, held))
            held -= shares
            kind = "sell"
        else:
            shares = draw(st.integers(1, 500))
            held += shares
            kind = "buy"
        price = draw(st.integers(1, 100_000)) / 100
        rows.append(tx(kind, shares, price, f"2026-11-{2 + i // 10:02d}T15:{i % 60:02d}:00Z"))
    return rows


@settings(max_examples=300, deadline=None)
@given(histories(), st.integers(1, 100_000))
def test_lots_and_realized_pnl_agree_with_the_cards_shares_invested_and_pnl(rows, price_cents):
    price = price_cents / 100
    capital = 1_000_000.0
    matched = fifo.match(rows)
    shares = sum(t["shares"] if t["type"] == "buy" else -t["shares"] for t in rows)
    invested = sum((1 if t["type"] == "buy" else -1) * t["shares"] * t["price"] for t in rows)
    assert matched.shares == shares
    assert all(lot.shares > 0 for lot in matched.lots)
    assert abs((matched.open_cost - matched.realized) - invested) < 1e-6
    value = card_calculations.value_from_totals(shares, invested, price, capital)
    unrealized = shares * price - matched.open_cost
    assert abs((unrealized + matched.realized) - (value - capital)) < 1e-6
    by_year = fifo.realized_by_year(matched)
    assert abs(sum(y["realized_pnl"] for y in by_year.values()) - matched.realized) < 0.01 * max(1, len(by_year))


@st.composite
def histories_with_actions(draw):
    """Fills, splits (forward and reverse) and dividends; sells never exceed the whole shares held."""
    rows, actions, held = [], [], 0.0
    for i in range(draw(st.integers(0, 25))):
        stamp = f"2026-11-{2 + i // 10:02d}T15:{i % 60:02d}:00Z"
        kind = draw(st.sampled_from(["buy", "sell", "split", "dividend"]))
        if kind == "split" and held > 0:
            old, new = draw(st.sampled_from([(1, 2), (1, 3), (2, 1), (10, 1), (3, 2)]))
            actions.append({"kind": "forward_split" if new > old else "reverse_split", "old_rate": old, "new_rate": new,
                            "effective_at": stamp.replace(":00Z", ":00Z"), "ex_date": stamp[:10], "cash": 0.0})
            held = held * new / old
        elif kind == "dividend" and held > 0:
            cash = round(held * draw(st.integers(1, 200)) / 100, 2)
            actions.append({"kind": "cash_dividend", "effective_at": stamp, "ex_date": stamp[:10], "cash": cash})
        elif kind == "sell" and int(held + 1e-9) >= 1:
            shares = draw(st.integers(1, int(held + 1e-9)))
            held -= shares
            rows.append(tx("sell", shares, draw(st.integers(1, 100_000)) / 100, stamp))
        else:
            shares = draw(st.integers(1, 500))
            held += shares
            rows.append(tx("buy", shares, draw(st.integers(1, 100_000)) / 100, stamp))
    return rows, actions, held


@settings(max_examples=300, deadline=None)
@given(histories_with_actions(), st.integers(1, 100_000))
def test_the_identities_hold_through_splits_and_dividends(history, price_cents):
    rows, actions, held = history
    price = price_cents / 100
    matched = fifo.match(rows, actions)
    dividends = sum(a["cash"] for a in actions if a["kind"] == "cash_dividend")
    invested = sum((1 if t["type"] == "buy" else -1) * t["shares"] * t["price"] for t in rows) - dividends
    assert abs(matched.shares - held) < 1e-6
    assert abs((matched.open_cost - matched.realized) - invested) < 1e-6
    pnl = held * price - invested   # value - capital
    assert abs((held * price - matched.open_cost) + matched.realized - pnl) < 1e-6


@settings(max_examples=200, deadline=None)
@given(histories(), st.lists(st.integers(1, 100_000), min_size=5, max_size=5))
def test_daily_pnl_bars_add_up_to_the_cards_pnl_at_the_last_close(rows, closes_cents):
    days = ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06"]
    closes = {d: c / 100 for d, c in zip(days, closes_cents)}
    result = daily_pnl.daily_pnl({1: rows}, {1: "AAA"}, {"AAA": closes}, days)
    last = closes[days[-1]]
    shares = sum(t["shares"] if t["type"] == "buy" else -t["shares"] for t in rows)
    invested = sum((1 if t["type"] == "buy" else -1) * t["shares"] * t["price"] for t in rows)
    assert abs(sum(d["pnl"] for d in result) - (shares * last - invested)) < 0.01 * len(days)
    assert abs(result[-1]["cumulative"] - (shares * last - invested)) < 0.01


def test_a_day_without_a_bar_keeps_the_previous_close():
    rows = [tx("buy", 10, 100.0, "2026-11-02T15:00:00Z")]
    result = daily_pnl.daily_pnl({7: rows}, {7: "AAA"}, {"AAA": {"2026-11-02": 101.0, "2026-11-04": 103.0}},
                                 ["2026-11-02", "2026-11-03", "2026-11-04"])
    assert [d["pnl"] for d in result] == [10.0, 0.0, 20.0]
    assert [d["cumulative"] for d in result] == [10.0, 10.0, 30.0]
