"""The trader against the real paper exchange: journal -> submit -> wait -> record, and reconciliation.

Each story is one order path a crash or a broker can produce; the exchange's own order book is
the witness that nothing was sent twice and every fill is recorded exactly once.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from database import historical_pull
from orchestra.alpaca_wrapper import AlpacaWrapper
from orchestra.card_runner import CardRunner
from orchestra.config import AlpacaSettings
from orchestra.cycle import Cycle
from orchestra.heartbeat import ErrorLog
from orchestra.trader import Trader, card_positions_by_ticker, client_order_id, position_mismatches
from system_databse import system_db_manager as manager
from tests.fixtures.exchange import start_paper_exchange
from tests.fixtures.orchestrator import wait_until, write_test_algorithms

_minutes = itertools.count()
CALM = {"fill_delay_seconds": 0, "partial_fill_ratio": None, "reject_orders": 0, "fail_requests": 0,
        "fail_after_processing": False}


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    exchange = start_paper_exchange(tmp_path_factory.mktemp("trading-exchange"), start="2026-11-23T15:00:00Z",
                                    speed=1)
    yield exchange
    exchange.stop()


@pytest.fixture
def broker(exchange):
    exchange.control(**CALM)
    yield AlpacaWrapper(AlpacaSettings.from_env(exchange.env), sleep=lambda s: None)
    exchange.control(**CALM)


def fresh_minute() -> datetime:
    """A cycle minute no other test uses, so client order ids never collide on the shared exchange."""
    return datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc) + timedelta(minutes=next(_minutes))


@pytest.fixture
def minute():
    return fresh_minute()


def _exchange_orders(exchange, coid):
    return [o for o in exchange.state()["orders"] if o["client_order_id"] == coid]


def test_a_filled_buy_is_journaled_before_and_recorded_with_the_fill(exchange, broker, ledger, minute):
    card = ledger_card(ledger, "AAPL")
    outcome = Trader(broker, ledger).execute(card, "buy", 3, minute, "test buy", 250.0)
    coid = client_order_id(card["id"], minute, "buy")
    assert coid == f"at-{card['id']}-{minute:%Y%m%d%H%M}-buy"
    [order] = _exchange_orders(exchange, coid)
    [entry] = ledger_orders(ledger, card)
    [tx] = system_db_transactions(ledger, card)
    assert outcome.status == "filled" and outcome.transaction_id == tx["id"]
    assert (entry["status"], entry["reason"], entry["transaction_id"]) == ("filled", "test buy", tx["id"])
    assert (tx["type"], tx["shares"]) == ("buy", 3) and order["status"] == "filled"
    assert tx["price"] == pytest.approx(float(order["filled_avg_price"]))


def test_a_decision_made_twice_in_one_minute_is_sent_once(exchange, broker, ledger, minute):
    card = ledger_card(ledger, "AAPL")
    trader = Trader(broker, ledger)
    assert trader.execute(card, "buy", 2, minute, "first", None).status == "filled"
    assert trader.execute(card, "buy", 2, minute, "again", None).status == "duplicate"
    assert len(_exchange_orders(exchange, client_order_id(card["id"], minute, "buy"))) == 1
    assert len(system_db_transactions(ledger, card)) == 1


def test_an_order_refused_at_submit_is_marked_failed_and_records_nothing(exchange, broker, ledger, minute):
    card = ledger_card(ledger, "AAPL")
    outcome = Trader(broker, ledger).execute(card, "buy", 10_000_000, minute, "too big", 250.0)
    assert outcome.status == "failed" and "insufficient buying power" in outcome.error
    [entry] = ledger_orders(ledger, card)
    assert entry["status"] == "failed" and entry["error"].startswith("rejected:")
    assert system_db_transactions(ledger, card) == []


def test_an_order_rejected_after_acceptance_records_nothing(exchange, broker, ledger, minute):
    card = ledger_card(ledger, "MSFT")
    exchange.control(reject_orders=1)
    outcome = Trader(broker, ledger).execute(card, "buy", 1, minute, "will be rejected", None)
    assert outcome.status == "failed"
    assert _exchange_orders(exchange, client_order_id(card["id"], minute, "buy"))[0]["status"] == "rejected"
    assert ledger_orders(ledger, card)[0]["status"] == "failed"
    assert system_db_transactions(ledger, card) == []


def test_a_lost_submit_answer_is_settled_by_client_order_id_and_recorded_once(exchange, broker, ledger, minute,
                                                                               caplog):
    card = ledger_card(ledger, "MSFT")
    exchange.control(fail_requests=1, fail_after_processing=True)  # the order is booked, the answer is a 500
    outcome = Trader(broker, ledger).execute(card, "buy", 2, minute, "answer lost", None)
    coid = client_order_id(card["id"], minute, "buy")
    assert f"answer to order {coid} lost" in caplog.text
    assert outcome.status == "filled"
    assert len(_exchange_orders(exchange, coid)) == 1
    assert [(t["type"], t["shares"]) for t in system_db_transactions(ledger, card)] == [("buy", 2)]


def test_a_partial_fill_records_only_the_shares_that_filled(exchange, broker, ledger, minute):
    card = ledger_card(ledger, "MSFT")
    exchange.control(partial_fill_ratio=0.5, partial_fill_hold_seconds=0.3)
    outcome = Trader(broker, ledger, fill_timeout=30).execute(card, "buy", 10, minute, "half", None)
    assert (outcome.status, outcome.filled_shares) == ("filled", 5)
    [tx] = system_db_transactions(ledger, card)
    assert tx["shares"] == 5
    assert ledger_orders(ledger, card)[0]["filled_shares"] == 5


def test_reconcile_marks_an_order_the_broker_never_received_as_failed(exchange, broker, ledger, minute):
    card = ledger_card(ledger, "AAPL")
    coid = client_order_id(card["id"], minute, "sell")
    manager.journal_intent(card["id"], coid, "sell", 1, "crashed before submit", conn=ledger)
    [outcome] = Trader(broker, ledger).reconcile()
    assert (outcome.client_order_id, outcome.status) == (coid, "failed")
    assert manager.get_open_orders(conn=ledger) == []
    assert ledger_orders(ledger, card)[0]["error"] == "the broker never received this order"
    assert _exchange_orders(exchange, coid) == []


def test_reconcile_leaves_an_open_order_open_then_records_its_fill_once(exchange, broker, ledger, minute):
    card = ledger_card(ledger, "AAPL")
    exchange.control(fill_delay_seconds=2.0)
    trader = Trader(broker, ledger, fill_timeout=0.2)
    assert trader.execute(card, "buy", 4, minute, "slow fill", None).status == "open"
    assert trader.open_order_cards() == {card["id"]}
    coid = client_order_id(card["id"], minute, "buy")
    wait_until(lambda: _exchange_orders(exchange, coid)[0]["status"] == "filled", 30, "the delayed fill")
    assert [o.status for o in trader.reconcile()] == ["filled"]
    assert trader.reconcile() == []
    assert [(t["type"], t["shares"]) for t in system_db_transactions(ledger, card)] == [("buy", 4)]
    assert len(_exchange_orders(exchange, coid)) == 1


def test_a_position_mismatch_is_reported_and_never_traded(exchange, broker, ledger, minute):
    card = ledger_card(ledger, "NVDA")
    manager.record_buy(card["id"], 5, 100.0, conn=ledger)  # a fill the broker never made
    before = len(exchange.state()["orders"])
    mismatches = position_mismatches(broker.get_positions(), card_positions_by_ticker(ledger))
    held = broker.get_positions().get("NVDA", 0)
    assert {"ticker": "NVDA", "broker": held, "cards": 5} in mismatches
    assert len(exchange.state()["orders"]) == before


def test_a_broker_rejection_is_confined_to_its_card_for_that_minute(exchange, broker, ledger, market, tmp_path, minute):
    now = exchange.state()["clock"]["now"][:19] + "Z"
    for ticker in ("AAPL", "MSFT"):
        historical_pull.backfill(market, ticker, now=now, settings=AlpacaSettings.from_env(exchange.env))
    first, second = ledger_card(ledger, "AAPL"), ledger_card(ledger, "MSFT")
    errors = ErrorLog()
    trader = Trader(broker, ledger, on_error=errors.record)
    cycle = Cycle(ledger_conn=ledger, market_conn=market, broker=broker, trader=trader, errors=errors,
                  runner=CardRunner(market, ledger, directory=write_test_algorithms(tmp_path / "a", ["buy_and_hold"])))
    exchange.control(reject_orders=1)  # the next order the exchange accepts is then rejected
    report = cycle.run(minute)
    assert [(t.card_id, t.status) for t in report.trades] == [(first["id"], "failed"), (second["id"], "filled")]
    assert errors.last_hour() == 1
    again = cycle.run(fresh_minute())  # the next minute the card simply tries again
    assert [(t.card_id, t.status) for t in again.trades] == [(first["id"], "filled")]
    assert [t["shares"] for t in system_db_transactions(ledger, first)] == [7]


# --------------------------------------------------------------------------- helpers


def ledger_card(conn, ticker: str) -> dict:
    return manager.get_algorithm(manager.create_algorithm(ticker, "buy_and_hold", 1_000_000.0, conn=conn), conn=conn)


def ledger_orders(conn, card) -> list:
    return manager.get_orders(card["id"], conn=conn)


def system_db_transactions(conn, card) -> list:
    return manager.get_transactions(card["id"], conn=conn)
