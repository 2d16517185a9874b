"""Issue #23's model-based proof of the money core, bounded for CI, and the sequences it found.

``MoneyMachine`` (``tests/money_model.py``) drives the daemon's real parts against a small broker
model through random sequences of minutes, partial, late and lost fills, stops, splits,
dividends, hand sales, accepted counts and crashes, checking after every step that the cards add
up to the broker, nobody goes short of shares or cash, every fill is recorded once on the right
cards and available cash keeps what the cards own. Here it runs a fixed, derandomized set of
examples; ``bench/bench_money_model.py`` runs it long (see ``bench/README.md``).

Each defect it found is kept below as a plain story, shrunk to what matters.
"""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, settings

from database import db_manager
from orchestra.allocation import Intent, net_ticker
from shared.clock import stamp
from orchestra.trader import Trader
from scripts import reconcile
from system_databse import system_db_manager as ledger_db
from system_databse.positions import cards_by_ticker, mismatches, positions
from tests.money_broker import ModelBroker
from tests.money_daemon import templates
from tests.money_model import MoneyMachine

MoneyMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=60, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
TestMoneyModel = MoneyMachine.TestCase

MINUTE = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)
EX_OPEN = "2026-11-24T14:30:00Z"


def _two_cards_buy_one_share_each(ledger, ticker: str, price: float):
    """Two cards of ``ticker`` buy 1 share each in one net order, filled at the model broker."""
    broker = ModelBroker(Decimal(10_000), lambda: MINUTE)
    broker.prices = {ticker: price}
    first, second = (ledger_db.create_algorithm(ticker, "x", 1_000, conn=ledger) for _ in range(2))
    trader = Trader(broker, ledger, now=lambda: MINUTE, workers=1)
    trader.trade([net_ticker(ticker, [Intent(first, "buy", 1), Intent(second, "buy", 1)])], MINUTE, {ticker: price})
    assert broker.get_positions() == {ticker: 2} == cards_by_ticker(conn=ledger)
    return broker, first, second


def test_two_cards_holding_one_f_each_through_a_1_for_3_split_hold_what_the_broker_holds(ledger):
    """Found by the model: each card's share became 0.333333333 on its own, 0.666666666 together,
    while the broker's 2 shares became 0.666666667, so F stayed frozen until the owner accepted
    the broker's count. The broker's total is shared over the cards (largest remainder)."""
    broker, first, second = _two_cards_buy_one_share_each(ledger, "F", 10.0)
    broker.split("F", 1, 3)

    ledger_db.record_corporate_action({"id": "f-1-3", "symbol": "F", "kind": "reverse_split", "ex_date": EX_OPEN[:10],
                                       "effective_at": EX_OPEN, "new_rate": 1.0, "old_rate": 3.0}, conn=ledger)

    held = positions(conn=ledger)
    assert (held[first].shares, held[second].shares) == (0.333333334, 0.333333333)
    assert mismatches(broker.get_positions(), cards_by_ticker(conn=ledger)) == []


def test_two_cards_holding_one_share_each_get_the_25_cents_the_broker_paid_for_a_12_5_cent_dividend(ledger):
    """Found by the model: each card's 12.5 cents were rounded up on their own (26 cents in all)
    while the broker paid 25: a cent the account never had. The payment is shared instead."""
    broker, first, second = _two_cards_buy_one_share_each(ledger, "AAPL", 200.0)
    paid = broker.dividend("AAPL", Decimal("0.125"))

    ledger_db.record_corporate_action({"id": "aapl-div", "symbol": "AAPL", "kind": "cash_dividend",
                                       "ex_date": EX_OPEN[:10], "effective_at": EX_OPEN, "rate": 0.125}, conn=ledger)

    held = positions(conn=ledger)
    assert paid == Decimal("0.25")
    assert (held[first].dividends, held[second].dividends) == (0.13, 0.12)


def test_accepting_the_count_while_a_buy_still_works_records_the_fill_its_cancel_finds_once(ledger, tmp_path):
    """Found by the model: a card's buy of 2 AAPL was still working at the broker (its cancel had
    failed) when the owner accepted the broker's count. Settling it first cancelled it and the
    cancel found it filled: the card got its 2 shares, then the count read before (0) was
    recorded as a sale of those 2, while the broker held them. The count is read after settling."""
    broker = ModelBroker(Decimal(10_000), lambda: MINUTE)
    broker.prices, broker.moods = {"AAPL": 200.0}, {"AAPL": "slow"}
    card = ledger_db.create_algorithm("AAPL", "x", 1_000, conn=ledger)
    Trader(broker, ledger, now=lambda: MINUTE, workers=1).trade(
        [net_ticker("AAPL", [Intent(card, "buy", 2)])], MINUTE, {"AAPL": 200.0})
    assert [o["status"] for o in ledger_db.get_open_orders(conn=ledger)] == ["submitted"]
    shutil.copyfile(templates()["stocks"], tmp_path / "stocks.db")
    market = db_manager.get_connection(tmp_path / "stocks.db")
    db_manager.upsert_bars(market, [{"ticker": "AAPL", "timestamp": stamp(MINUTE), "open": 200.0, "high": 200.0,
                                     "low": 200.0, "close": 200.0, "volume": 100}])
    later = MINUTE + timedelta(minutes=2)

    said = reconcile.accept(ledger, market, "AAPL", card, trader=Trader(broker, ledger, now=lambda: later, workers=1),
                            now=lambda: later)

    assert said == "AAPL: the cards already add up to the broker's 2 shares; nothing recorded"
    assert [(t["type"], t["shares"]) for t in ledger_db.get_transactions(card, conn=ledger)] == [("buy", 2)]
    assert broker.get_positions() == {"AAPL": 2} == cards_by_ticker(conn=ledger)
    market.close()
