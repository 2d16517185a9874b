"""Splits and dividends in the ledger: shares, cash, value and P&L stay right, and nothing applies twice."""
from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings, strategies as st

from system_databse import card_calculations as calc
from system_databse import system_db_manager as ledger_db

EX_OPEN = "2026-11-24T14:30:00Z"


def split(new: float, old: float, action_id: str = "split-1", symbol: str = "NVDA", at: str = EX_OPEN) -> dict:
    kind = "forward_split" if new > old else "reverse_split"
    return {"id": action_id, "symbol": symbol, "kind": kind, "ex_date": at[:10], "effective_at": at,
            "new_rate": new, "old_rate": old}


def dividend(rate: float, action_id: str = "div-1", symbol: str = "KO", at: str = EX_OPEN) -> dict:
    return {"id": action_id, "symbol": symbol, "kind": "cash_dividend", "ex_date": at[:10], "effective_at": at,
            "rate": rate}


def test_119_shares_through_a_10_for_1_split_become_1190_with_the_same_pnl(ledger):
    card = ledger_db.create_algorithm("NVDA", "sma_crossover", 20_000, conn=ledger)
    ledger_db.record_buy(card, 119, 140.00, timestamp="2026-11-23T15:00:00Z", conn=ledger)
    before = calc.get_algorithm_with_calculations(card, 142.50, conn=ledger)

    written = ledger_db.record_corporate_action(split(10, 1), conn=ledger)

    after = calc.get_algorithm_with_calculations(card, 14.25, conn=ledger)
    assert [row["share_change"] for row in written] == [1071]
    assert after["current_shares"] == 1190
    assert after["uninvested_cash"] == before["uninvested_cash"] == 3340.00
    assert after["current_value"] == before["current_value"] == 20_297.50
    assert after["pnl"] == before["pnl"] == 297.50


def test_the_split_shares_can_be_sold_afterwards(ledger):
    card = ledger_db.create_algorithm("NVDA", "x", 20_000, conn=ledger)
    ledger_db.record_buy(card, 119, 140.00, timestamp="2026-11-23T15:00:00Z", conn=ledger)
    ledger_db.record_corporate_action(split(10, 1), conn=ledger)
    ledger_db.record_sell(card, 1190, 14.10, timestamp="2026-11-24T15:00:00Z", conn=ledger)
    view = calc.get_algorithm_with_calculations(card, 14.00, conn=ledger)
    assert view["current_shares"] == 0
    assert view["current_value"] == 20_000 - 119 * 140.00 + 1190 * 14.10 == 20_119.00


def test_a_1_for_3_reverse_split_of_10_shares_keeps_the_fractional_remainder_as_the_broker_does(ledger):
    card = ledger_db.create_algorithm("F", "x", 1_000, conn=ledger)
    ledger_db.record_buy(card, 10, 11.00, timestamp="2026-11-23T15:00:00Z", conn=ledger)

    ledger_db.record_corporate_action(split(1, 3, symbol="F"), conn=ledger)

    view = calc.get_algorithm_with_calculations(card, 33.00, conn=ledger)
    assert view["current_shares"] == 3
    assert view["fractional_shares"] == 0.333333333
    assert view["current_value"] == 1_000.00  # 3.333333333 x $33.00 = $110.00 (to the cent), cash $890
    assert view["pnl"] == 0.00


def test_a_25_cent_dividend_on_100_shares_adds_25_dollars_to_that_card_only(ledger):
    holder = ledger_db.create_algorithm("KO", "x", 10_000, conn=ledger)
    other = ledger_db.create_algorithm("KO", "x", 10_000, conn=ledger)
    ledger_db.record_buy(holder, 100, 62.00, timestamp="2026-11-23T15:00:00Z", conn=ledger)
    ledger_db.record_buy(other, 50, 62.10, timestamp="2026-11-24T15:00:00Z", conn=ledger)  # bought after the ex-date
    cash_before = calc.available_cash(80_000.00, conn=ledger)

    ledger_db.record_corporate_action(dividend(0.25), conn=ledger)

    held = calc.get_algorithm_with_calculations(holder, 62.00, conn=ledger)
    late = calc.get_algorithm_with_calculations(other, 62.00, conn=ledger)
    assert held["current_value"] == 10_025.00 and held["pnl"] == 25.00 and held["dividends"] == 25.00
    assert late["dividends"] == 0.00 and late["pnl"] == -5.00
    broker_cash_after = 80_000.00 + 25.00  # the broker credited the dividend to the account
    cash_after = calc.available_cash(broker_cash_after, conn=ledger)
    assert cash_after["available_cash"] == cash_before["available_cash"]


def test_recording_the_same_action_again_changes_nothing(ledger):
    card = ledger_db.create_algorithm("NVDA", "x", 20_000, conn=ledger)
    ledger_db.record_buy(card, 119, 140.00, timestamp="2026-11-23T15:00:00Z", conn=ledger)
    assert len(ledger_db.record_corporate_action(split(10, 1), conn=ledger)) == 1
    ledger_db.record_buy(card, 10, 14.00, timestamp="2026-11-24T15:00:00Z", conn=ledger)  # traded since

    assert ledger_db.record_corporate_action(split(10, 1), conn=ledger) == []
    assert calc.calculate_position(card, conn=ledger) == 1200
    assert len(ledger_db.get_corporate_action_effects(card, conn=ledger)) == 1


def test_a_card_that_sold_out_before_the_ex_date_is_not_affected(ledger):
    card = ledger_db.create_algorithm("KO", "x", 10_000, conn=ledger)
    ledger_db.record_buy(card, 100, 62.00, timestamp="2026-11-20T15:00:00Z", conn=ledger)
    ledger_db.record_sell(card, 100, 62.50, timestamp="2026-11-23T20:59:00Z", conn=ledger)
    assert ledger_db.record_corporate_action(dividend(0.25), conn=ledger) == []
    assert calc.get_algorithm_with_calculations(card, 60.0, conn=ledger)["pnl"] == 50.00


def test_a_stopped_card_still_holding_shares_gets_its_split(ledger):
    card = ledger_db.create_algorithm("NVDA", "x", 20_000, conn=ledger)
    ledger_db.record_buy(card, 5, 140.00, timestamp="2026-11-23T15:00:00Z", conn=ledger)
    ledger_db.stop_algorithm(card, conn=ledger)
    ledger_db.record_corporate_action(split(10, 1), conn=ledger)
    assert ledger_db.get_all_position_totals(conn=ledger)[card]["shares"] == 50


# --------------------------------------------------------------------------- properties

event = st.one_of(
    st.tuples(st.just("buy"), st.integers(1, 300), st.decimals(min_value="0.01", max_value="2000", places=2)),
    st.tuples(st.just("sell"), st.integers(1, 300), st.decimals(min_value="0.01", max_value="2000", places=2)),
    st.tuples(st.just("split"), st.sampled_from([(2, 1), (3, 2), (4, 1), (10, 1), (1, 2), (1, 3), (1, 10), (2, 3)]),
              st.none()),
    st.tuples(st.just("dividend"), st.decimals(min_value="0.01", max_value="5", places=2), st.none()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event, max_size=30), price=st.decimals(min_value="0.01", max_value="5000", places=2),
       capital=st.integers(1, 1_000_000))
def test_value_and_pnl_identities_hold_through_any_history_of_trades_splits_and_dividends(ledger, events, price,
                                                                                         capital):
    # The examples share one ledger: each has a ticker of its own, as an action is shared over its holders.
    symbol = f"T{len(ledger_db.get_all_algorithms(conn=ledger))}"
    card = ledger_db.create_algorithm(symbol, "x", capital, conn=ledger)
    held, cash = Decimal(0), Decimal(capital)  # exact shares (with fraction) and exact cash of the card
    for day, (kind, first, second) in enumerate(events, start=1):
        at = f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T15:00:00Z"
        if kind in ("buy", "sell"):
            shares = first if kind == "buy" else min(first, int(held))
            if shares == 0:
                continue
            (ledger_db.record_buy if kind == "buy" else ledger_db.record_sell)(card, shares, float(second),
                                                                              timestamp=at, conn=ledger)
            held += shares if kind == "buy" else -shares
            cash += (-1 if kind == "buy" else 1) * shares * second
        elif kind == "split":
            new, old = first
            ledger_db.record_corporate_action({**split(new, old, f"s{day}", symbol, at)}, conn=ledger)
            held = (held * new / old).quantize(Decimal("0.000000001"))
        else:
            ledger_db.record_corporate_action(dividend(float(first), f"d{day}", symbol, at), conn=ledger)
            cash += (held * first).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")

    view = calc.get_algorithm_with_calculations(card, float(price), conn=ledger)
    exact_value = (held * price).quantize(Decimal("0.01"), rounding="ROUND_HALF_EVEN") + cash
    assert view["current_shares"] == int(held)
    assert abs(Decimal(repr(view["fractional_shares"])) - (held - int(held))) < Decimal("1e-9")
    if held == int(held):
        assert view["current_value"] == float(exact_value)             # whole shares: exact to the cent
    else:  # a fractional remainder's value is rounded once, to the nearest cent
        assert abs(Decimal(repr(view["current_value"])) - exact_value) <= Decimal("0.01")
    assert view["uninvested_cash"] == float(cash)                      # cash is exact to the cent
    assert round(view["current_value"] - view["initial_capital"], 2) == view["pnl"]
