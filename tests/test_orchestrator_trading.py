"""The trader against the real paper exchange, its Alpaca rules on: one net order per ticker,
journal -> submit -> fill (from the trade updates stream) -> record, and reconciliation.

Each story is one order path a crash or a broker can produce; the exchange's own order book is
the witness that nothing was sent twice, that no order was refused as a wash trade, and that
every fill is recorded exactly once on the right cards.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from database import historical_pull
from orchestra.allocation import Intent, net_ticker
from orchestra.alpaca_wrapper import AlpacaWrapper
from orchestra.card_runner import CardRunner
from shared.config import AlpacaSettings
from shared.clock import make_clock
from orchestra.cycle import Cycle
from orchestra.exceptions import OperationalError
from orchestra.heartbeat import ErrorLog
from orchestra.trade_updates import TradeUpdates, stream_url
from orchestra import net_order
from orchestra.trader import MISSED_LOOKUP_BOUND, Trader, client_order_id
from system_databse import positions
from system_databse import system_db_manager as manager
from system_databse.positions import cards_by_ticker, mismatches as position_mismatches
from tests.fixtures.exchange import start_paper_exchange
from tests.fixtures.orchestrator import wait_until, write_test_algorithms

ALPACA_LIKE = {"fill_delay_seconds": 0.3, "partial_fill_ratio": None, "reject_orders": 0, "fail_requests": 0,
               "fail_after_processing": False, "wash_trade_rejection": True, "rate_limit_per_minute": 200}


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    exchange = start_paper_exchange(tmp_path_factory.mktemp("trading-exchange"), start="2026-11-23T15:00:00Z",
                                    speed=1)
    yield exchange
    exchange.stop()


class CountingBroker(AlpacaWrapper):
    """The real wrapper, counting order look-ups (the stream should make them unnecessary)."""

    lookups = 0

    def get_order_by_client_id(self, client_order_id):
        self.lookups += 1
        return super().get_order_by_client_id(client_order_id)


@pytest.fixture(scope="module")
def updates(exchange):
    settings = AlpacaSettings.from_env(exchange.env)
    stream = TradeUpdates(stream_url(settings), settings.api_key, settings.secret)
    stream.start()
    assert stream.wait_connected(30)
    yield stream
    stream.stop()


@pytest.fixture
def broker(exchange):
    exchange.control(**ALPACA_LIKE)
    yield CountingBroker(AlpacaSettings.from_env(exchange.env), sleep=lambda s: None)
    exchange.control(**ALPACA_LIKE)


@pytest.fixture
def trader(broker, ledger, updates):
    return Trader(broker, ledger, now=exchange_clock(broker), updates=updates, fill_timeout=20)


def closed_minute(exchange) -> datetime:
    """The exchange's last closed minute: its bars are in, so no buy is refused on a stale price.
    (Each test has its own ledger, hence its own ledger id: order ids never collide on the exchange.)"""
    now = datetime.strptime(exchange.state()["clock"]["now"][:16], "%Y-%m-%dT%H:%M").replace(tzinfo=timezone.utc)
    return now - timedelta(minutes=1)


@pytest.fixture
def minute(exchange):
    return closed_minute(exchange)


def _exchange_orders(exchange, coid=None, ticker=None):
    return [o for o in exchange.state()["orders"]
            if (coid is None or o["client_order_id"] == coid) and (ticker is None or o["symbol"] == ticker)]


def test_a_filled_buy_is_journaled_before_and_recorded_from_the_trade_stream(exchange, broker, trader, ledger, minute):
    card = ledger_card(ledger, "AAPL")
    plan = net_ticker("AAPL", [Intent(card["id"], "buy", 3, "test buy")])
    [outcome] = trader.trade([plan], minute, {"AAPL": 250.0})
    coid = client_order_id("AAPL", minute, manager.get_ledger_id(conn=ledger))
    assert coid == f"at-AAPL-{minute:%Y%m%d%H%M}-{manager.get_ledger_id(conn=ledger)}"
    [order] = _exchange_orders(exchange, coid)
    [entry] = ledger_orders(ledger, card)
    [tx] = system_db_transactions(ledger, card)
    assert outcome.status == "filled" and outcome.transaction_id == tx["id"]
    assert (entry["status"], entry["reason"], entry["transaction_id"]) == ("filled", "test buy", tx["id"])
    assert (tx["type"], tx["shares"]) == ("buy", 3) and order["status"] == "filled"
    assert tx["price"] == pytest.approx(float(order["filled_avg_price"]))
    assert broker.lookups == 0, "the fill came from the trade updates stream, not from polling"


def test_three_cards_that_buy_sell_and_hold_send_one_order_for_the_net(exchange, broker, trader, ledger, market,
                                                                      tmp_path, minute):
    """The seller's 4 shares cross to the new buyer at the minute's price; only 3 go to the broker."""
    _backfill(exchange, market, "KO")
    seller, holder, buyer = ledger_card(ledger, "KO", "trim"), ledger_card(ledger, "KO", "holder"), None
    cycle = _cycle(ledger, market, broker, trader, tmp_path, ["trim", "holder", "buy_and_hold"])
    first = cycle.run(minute)  # the seller first buys its 7 shares
    assert [(t.card_id, t.filled_shares) for t in first.trades] == [(seller["id"], 7)]
    buyer = ledger_card(ledger, "KO", "buy_and_hold")
    second_minute = minute + timedelta(minutes=1)
    report = cycle.run(second_minute)
    coid = client_order_id("KO", second_minute, manager.get_ledger_id(conn=ledger))
    [order] = _exchange_orders(exchange, coid)
    assert (order["side"], order["qty"], order["status"]) == ("buy", "3", "filled")
    assert report.orders_sent == 1
    price = report.decisions[0].price
    sold, bought = system_db_transactions(ledger, seller)[0], system_db_transactions(ledger, buyer)
    assert (sold["type"], sold["shares"], sold["price"]) == ("sell", 4, price)
    assert sorted((t["shares"], t["price"]) for t in bought) == sorted([(4, price), (3, float(order["filled_avg_price"]))])
    assert system_db_transactions(ledger, holder) == []
    assert _exchange_orders(exchange, ticker="KO")[-1]["client_order_id"] == coid
    assert not any("wash" in (t.error or "") for t in report.trades)
    assert broker.get_positions()["KO"] == cards_by_ticker(conn=ledger)["KO"] == 10


def test_a_decision_made_twice_in_one_minute_is_sent_once(exchange, trader, ledger, minute):
    card = ledger_card(ledger, "AAPL")
    plan = net_ticker("AAPL", [Intent(card["id"], "buy", 2, "first")])
    assert [o.status for o in trader.trade([plan], minute, {})] == ["filled"]
    assert [o.status for o in trader.trade([plan], minute, {})] == ["duplicate"]
    assert len(_exchange_orders(exchange, client_order_id("AAPL", minute, trader.ledger_id))) == 1
    assert len(system_db_transactions(ledger, card)) == 1


def test_an_order_refused_at_submit_is_marked_failed_and_records_nothing(trader, ledger, minute):
    card = ledger_card(ledger, "AAPL")
    [outcome] = trader.trade([net_ticker("AAPL", [Intent(card["id"], "buy", 10_000_000, "too big")])], minute, {})
    assert outcome.status == "failed" and "insufficient buying power" in outcome.error
    [entry] = ledger_orders(ledger, card)
    assert entry["status"] == "failed" and entry["error"].startswith("rejected:")
    assert system_db_transactions(ledger, card) == []


def test_an_order_rejected_after_acceptance_records_nothing(exchange, trader, ledger, minute):
    card = ledger_card(ledger, "MSFT")
    exchange.control(reject_orders=1)
    [outcome] = trader.trade([net_ticker("MSFT", [Intent(card["id"], "buy", 1)])], minute, {})
    assert outcome.status == "failed"
    assert _exchange_orders(exchange, outcome.client_order_id)[0]["status"] == "rejected"
    assert ledger_orders(ledger, card)[0]["status"] == "failed"
    assert system_db_transactions(ledger, card) == []


def test_a_lost_submit_answer_is_settled_by_client_order_id_and_recorded_once(exchange, trader, ledger, minute,
                                                                               caplog):
    card = ledger_card(ledger, "MSFT")
    exchange.control(fail_requests=1, fail_after_processing=True)  # the order is booked, the answer is a 500
    [outcome] = trader.trade([net_ticker("MSFT", [Intent(card["id"], "buy", 2)])], minute, {})
    assert f"answer to order {outcome.client_order_id} lost" in caplog.text
    assert outcome.status == "filled"
    assert len(_exchange_orders(exchange, outcome.client_order_id)) == 1
    assert [(t["type"], t["shares"]) for t in system_db_transactions(ledger, card)] == [("buy", 2)]


def test_a_partial_fill_of_the_net_is_allocated_pro_rata_in_whole_shares(exchange, trader, ledger, minute):
    cards = [ledger_card(ledger, "MSFT") for _ in range(3)]
    exchange.control(partial_fill_ratio=0.7, partial_fill_hold_seconds=0.3)
    plan = net_ticker("MSFT", [Intent(c["id"], "buy", n) for c, n in zip(cards, (5, 3, 2))])
    outcomes = trader.trade([plan], minute, {})
    [order] = _exchange_orders(exchange, outcomes[0].client_order_id)
    assert (order["qty"], order["filled_qty"], order["status"]) == ("10", "7", "canceled")
    assert [o.filled_shares for o in outcomes] == [4, 2, 1]  # quotas 3.5, 2.1, 1.4
    assert [[t["shares"] for t in system_db_transactions(ledger, c)] for c in cards] == [[4], [2], [1]]


def test_an_order_still_open_after_the_fill_timeout_is_cancelled_and_its_partial_fill_recorded(
        exchange, broker, ledger, updates, minute):
    card = ledger_card(ledger, "AMD")
    exchange.control(partial_fill_ratio=0.5, partial_fill_hold_seconds=600)  # stays partially filled
    trader = Trader(broker, ledger, now=exchange_clock(broker), updates=updates, fill_timeout=1.5)
    [outcome] = trader.trade([net_ticker("AMD", [Intent(card["id"], "buy", 8)])], minute, {})
    [order] = _exchange_orders(exchange, outcome.client_order_id)
    assert (order["status"], order["filled_qty"]) == ("canceled", "4")
    assert (outcome.status, outcome.filled_shares) == ("filled", 4)
    assert [t["shares"] for t in system_db_transactions(ledger, card)] == [4]
    assert trader.open_order_tickers() == set()


def test_a_card_stopped_while_its_cycle_runs_sends_nothing(exchange, broker, trader, ledger, system_db, market, tmp_path,
                                                          minute):
    _backfill(exchange, market, "JPM")
    card = ledger_card(ledger, "JPM")
    cycle = _cycle(ledger, market, broker, trader, tmp_path, ["buy_and_hold"])
    real_decide_all = cycle.runner.decide_all

    def decide_then_stop(cards, at):
        made = real_decide_all(cards, at)
        wall = manager.get_connection(system_db)  # the wall stops the card while the cycle runs
        manager.stop_algorithm(card["id"], conn=wall)
        wall.close()
        return made

    cycle.runner.decide_all = decide_then_stop
    report = cycle.run(minute)
    assert [(t.card_id, t.status, t.error) for t in report.trades] == [
        (card["id"], "failed", "stopped before its order was sent")]
    assert _exchange_orders(exchange, ticker="JPM") == []
    assert system_db_transactions(ledger, card) == []


def test_cash_withdrawn_while_the_cycle_runs_is_never_spent(exchange, broker, trader, ledger, system_db, market,
                                                            tmp_path, minute):
    """The owner takes back most of a card's cash after it decided to buy with all of it: the buy
    is not sent (the card would have spent money it no longer has), the withdrawal stands."""
    _backfill(exchange, market, "JPM")
    card = ledger_card(ledger, "JPM")
    cycle = _cycle(ledger, market, broker, trader, tmp_path, ["buy_and_hold"])
    real_decide_all = cycle.runner.decide_all

    def decide_then_withdraw(cards, at):
        made = real_decide_all(cards, at)
        wall = manager.get_connection(system_db)
        manager.withdraw(card["id"], 999_900, at="2026-11-23T15:00:00Z", conn=wall)
        wall.close()
        return made

    cycle.runner.decide_all = decide_then_withdraw
    report = cycle.run(minute)
    [(card_id, status, error)] = [(t.card_id, t.status, t.error) for t in report.trades]
    assert (card_id, status) == (card["id"], "failed") and "withdrawn since it decided" in error
    assert _exchange_orders(exchange, ticker="JPM") == []
    assert system_db_transactions(ledger, card) == []
    assert positions.positions(conn=ledger)[card["id"]].uninvested_cash == pytest.approx(100.0)


def test_reconcile_marks_an_order_the_broker_never_received_as_failed(exchange, trader, ledger, minute):
    card = ledger_card(ledger, "AAPL")
    coid = client_order_id("AAPL", minute, trader.ledger_id)
    _journal(ledger, coid, card)
    [outcome] = trader.reconcile()
    assert (outcome.client_order_id, outcome.status) == (coid, "failed")
    assert manager.get_open_orders(conn=ledger) == []
    assert ledger_orders(ledger, card)[0]["error"] == "the broker never received this order"
    assert _exchange_orders(exchange, coid) == []


def test_an_acknowledged_order_is_never_failed_on_a_missing_look_up(exchange, trader, ledger, minute):
    card = ledger_card(ledger, "AAPL")
    coid = client_order_id("AAPL", minute, trader.ledger_id)
    _journal(ledger, coid, card)
    net_order.apply(ledger, coid, net_order.BrokerUpdate("new", 0, None, None, "acknowledged-id"), now=NOW)
    for _ in range(MISSED_LOOKUP_BOUND - 1):
        assert trader.reconcile() == []
        assert [o["status"] for o in manager.get_open_orders(conn=ledger)] == ["submitted"]
    with pytest.raises(OperationalError, match=coid):
        trader.reconcile()


def test_reconcile_leaves_an_open_order_open_then_records_its_fill_once(exchange, broker, ledger, minute):
    card = ledger_card(ledger, "AAPL")
    exchange.control(fill_delay_seconds=2.0)
    trader = Trader(broker, ledger, now=exchange_clock(broker), fill_timeout=0.2)
    trader._final_state = lambda result: result  # the process dies before it waited: only the journal remains
    [outcome] = trader.trade([net_ticker("AAPL", [Intent(card["id"], "buy", 4)])], minute, {})
    assert outcome.status == "open"
    assert trader.open_order_tickers() == {"AAPL"}
    wait_until(lambda: _exchange_orders(exchange, outcome.client_order_id)[0]["status"] == "filled", 30, "the fill")
    assert [o.status for o in trader.reconcile()] == ["filled"]
    assert trader.reconcile() == []
    assert [(t["type"], t["shares"]) for t in system_db_transactions(ledger, card)] == [("buy", 4)]
    assert len(_exchange_orders(exchange, outcome.client_order_id)) == 1


def test_a_position_mismatch_is_reported_and_never_traded(exchange, broker, ledger, minute):
    card = ledger_card(ledger, "NVDA")
    manager.record_buy(card["id"], 5, 100.0, conn=ledger)  # a fill the broker never made
    before = len(exchange.state()["orders"])
    mismatches = position_mismatches(broker.get_positions(), cards_by_ticker(conn=ledger))
    held = broker.get_positions().get("NVDA", 0)
    assert {"ticker": "NVDA", "broker": held, "cards": 5} in mismatches
    assert len(exchange.state()["orders"]) == before


def test_a_broker_rejection_is_confined_to_its_ticker_for_that_minute(exchange, broker, trader, ledger, market,
                                                                     tmp_path, minute):
    for ticker in ("GOOGL", "META"):
        _backfill(exchange, market, ticker)
    first, second = ledger_card(ledger, "GOOGL"), ledger_card(ledger, "META")
    cycle = _cycle(ledger, market, broker, trader, tmp_path, ["buy_and_hold"])
    exchange.control(reject_orders=1)  # the next order the exchange accepts is then rejected
    report = cycle.run(minute)  # the two tickers are sent at once: either may be the rejected one
    assert sorted(t.status for t in report.trades) == ["failed", "filled"]
    assert {t.card_id for t in report.trades} == {first["id"], second["id"]}
    failed = next(t.card_id for t in report.trades if t.status == "failed")
    assert list(report.card_errors) == [failed]
    again = cycle.run(minute + timedelta(minutes=1))  # the next minute that card simply tries again
    assert [(t.card_id, t.status) for t in again.trades] == [(failed, "filled")]
    assert [t["shares"] for t in system_db_transactions(ledger, manager.get_algorithm(failed, conn=ledger))] == [7]


# --------------------------------------------------------------------------- helpers


def _backfill(exchange, market, ticker):
    now = exchange.state()["clock"]["now"][:19] + "Z"
    historical_pull.backfill(market, ticker, now=now, settings=AlpacaSettings.from_env(exchange.env))


def _cycle(ledger, market, broker, trader, tmp_path, algorithms):
    errors = ErrorLog()
    trader._on_error = errors.record
    runner = CardRunner(market, ledger, directory=write_test_algorithms(tmp_path / "algorithms", algorithms))
    return Cycle(ledger_conn=ledger, market_conn=market, broker=broker, trader=trader, errors=errors, runner=runner)


NOW = "2026-11-23T15:00:00Z"


def _journal(ledger, coid, card):
    """A buy of 1 share journaled by a process that died before it sent it."""
    net_order.journal(ledger, net_ticker(card["ticker"], [Intent(card["id"], "buy", 1)]), coid, minute=NOW,
                      price=None, now=NOW)


def exchange_clock(broker):
    """The trading clock the daemon uses with the paper exchange: its own clock, extrapolated."""
    clock = make_clock("broker", lambda: broker.get_clock().timestamp)
    clock.now()  # read once now, as the daemon does before its first minute
    return clock.peek


def ledger_card(conn, ticker: str, algorithm: str = "buy_and_hold") -> dict:
    return manager.get_algorithm(manager.create_algorithm(ticker, algorithm, 1_000_000.0, conn=conn), conn=conn)


def ledger_orders(conn, card) -> list:
    return manager.get_orders(card["id"], conn=conn)


def system_db_transactions(conn, card) -> list:
    return manager.get_transactions(card["id"], conn=conn)
