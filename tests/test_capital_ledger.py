"""The ledger's side of deposits and withdrawals: one definition of a card's capital, exact cents,
refusals that write nothing, and P&L (and the daily P&L) that money moved in or out never changes."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from system_databse import card_calculations as calc
from system_databse import positions, system_db_manager as ledger_db
from system_databse.daily_pnl import account_daily_pnl
from tests.fixtures.api import table_rows


def position(ledger, card):
    return positions.positions(conn=ledger)[card]


def test_a_deposit_and_a_withdrawal_move_capital_cash_and_the_cards_claim_by_the_amount(ledger):
    card = ledger_db.create_algorithm("AAPL", "x", 10_000, conn=ledger)
    ledger_db.record_buy(card, 60, 100.0, conn=ledger)
    assert calc.available_cash(44_000.0, conn=ledger)["available_cash"] == 40_000.0

    ledger_db.deposit(card, 5_000, at="2026-11-23T15:00:00Z", conn=ledger)
    held = position(ledger, card)
    assert (held.initial_capital, held.capital, held.uninvested_cash, held.invested) == (10_000, 15_000, 9_000, 6_000)
    assert calc.available_cash(44_000.0, conn=ledger)["available_cash"] == 35_000.0

    ledger_db.withdraw(card, 2_000.25, at="2026-11-23T15:01:00Z", conn=ledger)
    held = position(ledger, card)
    assert (held.capital, held.uninvested_cash, held.withdrawable()) == (12_999.75, 6_999.75, 6_999.75)
    assert calc.available_cash(44_000.0, conn=ledger)["available_cash"] == 37_000.25
    assert [(m["kind"], m["amount"], m["timestamp"]) for m in ledger_db.get_capital_moves(card, conn=ledger)] == [
        ("deposit", 5_000.0, "2026-11-23T15:00:00Z"), ("withdrawal", 2_000.25, "2026-11-23T15:01:00Z")]


def test_the_pnl_at_any_price_is_the_same_before_and_after_a_deposit(ledger):
    card = ledger_db.create_algorithm("AAPL", "x", 10_000, conn=ledger)
    ledger_db.record_buy(card, 50, 100.0, conn=ledger)
    before = calc.get_algorithm_with_calculations(card, 105.0, conn=ledger)
    ledger_db.deposit(card, 5_000, conn=ledger)
    after = calc.get_algorithm_with_calculations(card, 105.0, conn=ledger)
    assert (after["current_value"] - before["current_value"], after["pnl"], before["pnl"]) == (5_000.0, 250.0, 250.0)
    assert (after["capital"], after["initial_capital"], after["pnl_percent"]) == (15_000.0, 10_000, round(250 / 150, 2))


def test_fifo_realized_and_unrealized_do_not_see_capital_moves(ledger):
    from system_databse import fifo

    card = ledger_db.create_algorithm("AAPL", "x", 10_000, conn=ledger)
    ledger_db.record_buy(card, 50, 100.0, timestamp="2026-11-23T14:31:00Z", conn=ledger)
    ledger_db.deposit(card, 5_000, at="2026-11-23T14:32:00Z", conn=ledger)
    ledger_db.record_sell(card, 20, 110.0, timestamp="2026-11-23T14:33:00Z", conn=ledger)
    ledger_db.withdraw(card, 1_000, at="2026-11-23T14:34:00Z", conn=ledger)
    matched = fifo.match(ledger_db.get_transactions_between(card, conn=ledger), [])
    view = calc.get_algorithm_with_calculations(card, 120.0, conn=ledger)
    summary = fifo.summary(matched, 120.0)
    assert (summary["realized_pnl"], summary["unrealized_pnl"]) == (200.0, 600.0)
    assert summary["realized_pnl"] + summary["unrealized_pnl"] == view["pnl"] == 800.0


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("amount,words", [
    (0, "positive"), (-1, "positive"), (math.nan, "positive"), (math.inf, "positive"), (-math.inf, "positive"),
    ("100", "number of dollars"), (True, "number of dollars"), (None, "number of dollars"),
    (10.001, "two decimals"), (0.005, "two decimals"), (1e16, "too large"),
])
@pytest.mark.parametrize("kind", ["deposit", "withdraw"])
def test_an_amount_that_is_not_dollars_and_cents_is_refused_and_nothing_is_written(ledger, system_db, kind, amount,
                                                                                   words):
    card = ledger_db.create_algorithm("AAPL", "x", 10_000, conn=ledger)
    before = table_rows(system_db)
    with pytest.raises(ledger_db.LedgerError, match=words):
        getattr(ledger_db, kind)(card, amount, conn=ledger)
    assert table_rows(system_db) == before


@pytest.mark.parametrize("amount,cents", [(0.01, 1), (0.1, 10), (19.99, 1999), (5000, 500_000), (1234.5, 123_450)])
def test_dollars_and_cents_are_stored_exactly(amount, cents):
    assert ledger_db.amount_cents(amount) == cents


def test_a_withdrawal_above_the_uninvested_cash_is_refused_and_one_to_the_cent_is_not(ledger, system_db):
    card = ledger_db.create_algorithm("AAPL", "x", 10_000, conn=ledger)
    ledger_db.record_buy(card, 3, 33.33, conn=ledger)  # 9,900.01 left, as a float sum
    before = table_rows(system_db)
    with pytest.raises(ledger_db.WithdrawalTooLarge, match="9,900.01") as refused:
        ledger_db.withdraw(card, 9_900.02, conn=ledger)
    assert refused.value.withdrawable == 9_900.01
    assert table_rows(system_db) == before
    ledger_db.withdraw(card, 9_900.01, conn=ledger)
    assert round(position(ledger, card).uninvested_cash, 6) == 0.0


@pytest.mark.parametrize("kind", ["deposit", "withdraw"])
def test_a_stopped_or_unknown_card_is_refused(ledger, system_db, kind):
    card = ledger_db.create_algorithm("AAPL", "x", 10_000, conn=ledger)
    ledger_db.stop_algorithm(card, conn=ledger)
    before = table_rows(system_db)
    with pytest.raises(ledger_db.LedgerError, match="is stopped"):
        getattr(ledger_db, kind)(card, 10, conn=ledger)
    with pytest.raises(ledger_db.LedgerError, match="does not exist"):
        getattr(ledger_db, kind)(card + 1, 10, conn=ledger)
    assert table_rows(system_db) == before
    assert position(ledger, card).withdrawable() == 0.0


@pytest.mark.parametrize("bad", ["2026-11-23 15:00:00", "2026-11-23T15:00:00+00:00", 1_763_910_000])
def test_a_stamp_that_is_not_a_utc_time_is_refused(ledger, bad):
    card = ledger_db.create_algorithm("AAPL", "x", 10_000, conn=ledger)
    with pytest.raises(ledger_db.LedgerError, match="YYYY-MM-DDTHH:MM:SSZ"):
        ledger_db.deposit(card, 10, at=bad, conn=ledger)


def test_the_database_itself_refuses_a_move_that_is_not_positive_whole_cents(ledger):
    import sqlite3

    card = ledger_db.create_algorithm("AAPL", "x", 10_000, conn=ledger)
    for kind, cents in (("deposit", 0), ("deposit", 12.5), ("gift", 100)):
        with pytest.raises(sqlite3.IntegrityError):
            ledger.execute("INSERT INTO capital_moves (algorithm_id, kind, amount_cents, timestamp)"
                           " VALUES (?, ?, ?, '2026-11-23T15:00:00Z')", (card, kind, cents))


# --------------------------------------------------------------------------- one definition, read cheaply


def count_statements(conn, work):
    seen = []
    conn.set_trace_callback(seen.append)
    try:
        work()
    finally:
        conn.set_trace_callback(None)
    return len([s for s in seen if s.lstrip().upper().startswith("SELECT")])


def test_positions_read_a_fixed_number_of_queries_whatever_the_number_of_cards(ledger):
    def cards(n):
        for i in range(n):
            card = ledger_db.create_algorithm("AAPL", "x", 1_000, conn=ledger)
            ledger_db.record_buy(card, 1, 10.0, conn=ledger)
            ledger_db.deposit(card, 10 + i, conn=ledger)

    cards(1)
    one = count_statements(ledger, lambda: positions.positions(conn=ledger))
    cards(29)
    thirty = count_statements(ledger, lambda: positions.positions(conn=ledger))
    assert one == thirty == 5  # the cards, their fills, corporate actions, capital moves, open orders
    assert sum(p.deposits for p in positions.positions(conn=ledger).values()) == 10 + sum(10 + i for i in range(29))


def test_a_position_before_a_moment_counts_only_the_moves_before_it(ledger):
    from system_databse.transactions import holdings

    card = ledger_db.create_algorithm("AAPL", "x", 1_000, conn=ledger)
    ledger_db.deposit(card, 100, at="2026-11-23T15:00:00Z", conn=ledger)
    ledger_db.withdraw(card, 30, at="2026-11-23T15:05:00Z", conn=ledger)
    assert holdings(ledger, [card], before="2026-11-23T15:01:00Z")[card]["deposits"] == 100.0
    assert holdings(ledger, [card], before="2026-11-23T15:01:00Z")[card]["withdrawals"] == 0.0
    assert holdings(ledger, [card])[card]["withdrawals"] == 30.0


# --------------------------------------------------------------------------- a deposit day is not a profit day


def test_the_daily_pnl_of_a_deposit_day_is_the_market_not_the_deposit(ledger):
    card = ledger_db.create_algorithm("AAPL", "x", 10_000, conn=ledger)
    ledger.execute("UPDATE algorithm_instances SET created_at = '2026-11-23T14:30:00Z' WHERE id = ?", (card,))
    ledger_db.record_buy(card, 10, 100.0, timestamp="2026-11-23T15:00:00Z", conn=ledger)
    ledger_db.deposit(card, 5_000, at="2026-11-24T15:00:00Z", conn=ledger)
    ledger_db.withdraw(card, 3_000, at="2026-11-25T15:00:00Z", conn=ledger)
    closes = {"2026-11-23": 101.0, "2026-11-24": 103.0, "2026-11-25": 102.0}
    days = account_daily_pnl(ledger, sessions=lambda first, last: sorted(closes),
                             daily_closes=lambda ticker, first, last: closes,
                             last_bar=lambda ticker: "2026-11-25T20:59:00Z")
    assert [(d["date"], d["pnl"]) for d in days] == [("2026-11-23", 10.0), ("2026-11-24", 20.0), ("2026-11-25", -10.0)]
    assert days[-1]["cumulative"] == calc.get_algorithm_with_calculations(card, 102.0, conn=ledger)["pnl"] == 20.0


# --------------------------------------------------------------------------- property

move = st.tuples(st.sampled_from(["deposit", "withdraw", "buy"]), st.integers(1, 5_000_00))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=st.lists(move, max_size=30), price=st.integers(1, 500_00))
def test_moves_change_capital_cash_and_value_by_their_amounts_and_never_the_pnl(ledger, moves, price):
    card = ledger_db.create_algorithm("AAPL", "x", 10_000, conn=ledger)
    capital_cents, spent_cents, shares = 1_000_000, 0, 0
    for kind, cents in moves:
        pnl_before = calc.get_algorithm_with_calculations(card, price / 100, conn=ledger)["pnl"]
        if kind == "buy":
            if spent_cents + cents > capital_cents:
                continue
            ledger_db.record_buy(card, 1, cents / 100, conn=ledger)
            spent_cents, shares = spent_cents + cents, shares + 1
            continue
        if kind == "withdraw" and cents > capital_cents - spent_cents:
            with pytest.raises(ledger_db.WithdrawalTooLarge):
                ledger_db.withdraw(card, cents / 100, conn=ledger)
            continue
        getattr(ledger_db, kind)(card, cents / 100, conn=ledger)
        capital_cents += cents if kind == "deposit" else -cents
        assert calc.get_algorithm_with_calculations(card, price / 100, conn=ledger)["pnl"] == pnl_before
    view = calc.get_algorithm_with_calculations(card, price / 100, conn=ledger)
    assert view["capital"] == capital_cents / 100
    assert view["uninvested_cash"] == (capital_cents - spent_cents) / 100
    assert view["current_value"] == (shares * price + capital_cents - spent_cents) / 100
    assert view["pnl"] == (shares * price - spent_cents) / 100
