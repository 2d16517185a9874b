"""A card's shares, value and P&L come from its transactions; available cash for new cards."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from system_databse import card_calculations as calc
from system_databse import system_db_manager as ledger_db


def test_a_card_that_bought_50_shares_at_100_shows_plus_250_at_105(ledger):
    card = ledger_db.create_algorithm("AAPL", "sma_crossover", 10000, conn=ledger)
    ledger_db.record_buy(card, 50, 100.0, conn=ledger)
    assert calc.calculate_position(card, conn=ledger) == 50
    assert calc.calculate_trade_count(card, conn=ledger) == 1
    assert calc.calculate_invested_amount(card, conn=ledger) == 5000.0
    assert calc.calculate_current_value(card, 105.0, 10000, conn=ledger) == 10250.0
    assert calc.calculate_pnl(10250.0, 10000) == 250.0
    view = calc.get_algorithm_with_calculations(card, 105.0, conn=ledger)
    assert (view["current_shares"], view["current_value"], view["pnl"], view["current_price"]) == (50, 10250.0, 250.0, 105.0)


def test_the_spec_example_card_of_125_shares_is_worth_10581_25_at_152(ledger):
    """It spent more than its $10,000; the ledger records what filled and still computes exactly."""
    card = ledger_db.create_algorithm("NVDA", "sma_crossover", 10000, conn=ledger)
    ledger_db.record_buy(card, 100, 150.50, conn=ledger)
    ledger_db.record_buy(card, 50, 145.25, conn=ledger)
    ledger_db.record_sell(card, 25, 155.75, conn=ledger)
    view = calc.get_algorithm_with_calculations(card, 152.00, conn=ledger)
    assert view["current_shares"] == 125
    assert view["trade_count"] == 3
    assert view["current_value"] == 10581.25
    assert view["pnl"] == 581.25
    assert set(view) >= {"id", "display_name", "algorithm_type", "ticker", "initial_capital", "status",
                         "created_at", "stopped_at", "current_shares", "trade_count", "current_value",
                         "pnl", "current_price"}


def test_a_card_without_trades_is_worth_its_allocation(ledger):
    card = ledger_db.create_algorithm("AAPL", "x", 2500, conn=ledger)
    view = calc.get_algorithm_with_calculations(card, 180.0, conn=ledger)
    assert (view["current_shares"], view["trade_count"], view["current_value"], view["pnl"]) == (0, 0, 2500.0, 0.0)


def test_a_card_without_any_price_yet_shows_zero_pnl_instead_of_a_fake_loss(ledger):
    card = ledger_db.create_algorithm("AAPL", "x", 2500, conn=ledger)
    ledger_db.record_buy(card, 10, 100.0, conn=ledger)
    view = calc.get_algorithm_with_calculations(card, None, conn=ledger)
    assert (view["current_value"], view["pnl"], view["current_price"]) == (2500.0, 0.0, None)


def test_unknown_card_has_no_calculations(ledger):
    assert calc.get_algorithm_with_calculations(42, 10.0, conn=ledger) is None


def test_a_round_trip_at_a_loss_shows_a_negative_pnl_in_cents(ledger):
    card = ledger_db.create_algorithm("AAPL", "x", 1000, conn=ledger)
    ledger_db.record_buy(card, 3, 10.01, conn=ledger)
    ledger_db.record_sell(card, 3, 9.99, conn=ledger)
    view = calc.get_algorithm_with_calculations(card, 50.0, conn=ledger)
    assert (view["current_shares"], view["current_value"], view["pnl"]) == (0, 999.94, -0.06)


# --------------------------------------------------------------------------- available cash


def test_available_cash_equals_the_spec_formula_while_nothing_is_invested(ledger):
    ledger_db.create_algorithm("AAPL", "x", 10000, conn=ledger)
    ledger_db.create_algorithm("NVDA", "x", 20000, conn=ledger)
    cash = calc.available_cash(50000.0, conn=ledger)
    assert cash == {"alpaca_cash": 50000.0, "reserved": 30000.0, "available_cash": 20000.0}


def test_invested_money_is_not_counted_twice(ledger):
    """$50k account, $10k card buys $6k of stock: the broker now holds $44k cash, and the card
    still reserves only its $4k of uninvested cash, leaving $40k for new cards."""
    card = ledger_db.create_algorithm("AAPL", "x", 10000, conn=ledger)
    ledger_db.record_buy(card, 60, 100.0, conn=ledger)
    cash = calc.available_cash(44000.0, conn=ledger)
    assert cash == {"alpaca_cash": 44000.0, "reserved": 4000.0, "available_cash": 40000.0}


def test_a_profitable_sale_returns_its_cash_to_the_card_not_to_new_cards(ledger):
    card = ledger_db.create_algorithm("AAPL", "x", 10000, conn=ledger)
    ledger_db.record_buy(card, 60, 100.0, conn=ledger)
    ledger_db.record_sell(card, 60, 110.0, conn=ledger)  # +$600, all back in the broker's cash
    cash = calc.available_cash(50600.0, conn=ledger)
    assert cash == {"alpaca_cash": 50600.0, "reserved": 10600.0, "available_cash": 40000.0}


def test_stopped_cards_reserve_nothing_and_overspent_cards_reserve_zero(ledger):
    stopped = ledger_db.create_algorithm("AAPL", "x", 10000, conn=ledger)
    ledger_db.stop_algorithm(stopped, conn=ledger)
    overspent = ledger_db.create_algorithm("NVDA", "x", 10000, conn=ledger)
    ledger_db.record_buy(overspent, 100, 150.50, conn=ledger)  # $15,050 > $10,000
    cash = calc.available_cash(30000.0, conn=ledger)
    assert cash == {"alpaca_cash": 30000.0, "reserved": 0.0, "available_cash": 30000.0}


@pytest.mark.parametrize("bad", [math.nan, math.inf, "100", None])
def test_available_cash_refuses_a_nonsense_broker_balance(ledger, bad):
    with pytest.raises(ValueError):
        calc.available_cash(bad, conn=ledger)


# --------------------------------------------------------------------------- properties

trade = st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 500),
                  st.decimals(min_value="0.01", max_value="5000", places=2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trades=st.lists(trade, max_size=40), price=st.decimals(min_value="0.01", max_value="5000", places=2),
       capital=st.integers(1, 1_000_000))
def test_value_and_pnl_identities_hold_after_any_trade_sequence(ledger, trades, price, capital):
    card = ledger_db.create_algorithm("AAPL", "x", capital, conn=ledger)
    held, cost_cents = 0, 0
    for side, shares, px in trades:
        if side == "sell":
            shares = min(shares, held)
            if shares == 0:
                continue
        (ledger_db.record_buy if side == "buy" else ledger_db.record_sell)(card, shares, float(px), conn=ledger)
        held += shares if side == "buy" else -shares
        cost_cents += (1 if side == "buy" else -1) * shares * int(px * 100)

    view = calc.get_algorithm_with_calculations(card, float(price), conn=ledger)
    exact_value_cents = held * int(price * 100) + capital * 100 - cost_cents
    assert view["current_shares"] == held
    assert view["current_value"] == exact_value_cents / 100            # no drift, to the cent
    assert view["pnl"] == (exact_value_cents - capital * 100) / 100
    assert view["uninvested_cash"] == (capital * 100 - cost_cents) / 100
    assert round(view["current_value"] - view["initial_capital"], 2) == view["pnl"]
