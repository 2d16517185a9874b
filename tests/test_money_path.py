"""Issue #23: the seams of the money path, one story each, through the real ledger, the real
paper exchange (its Alpaca rules on) and the daemon's own parts (trader, cycle, corporate
actions keeper, ``scripts.reconcile``).

Each story is a way money went missing or was counted twice before the net order became one
object and a card's position one definition; the exchange is the witness of what really happened.
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import requests

from database import db_manager, historical_pull
from orchestra.allocation import Intent, net_ticker
from orchestra.alpaca_wrapper import AlpacaWrapper, BrokerUnavailable
from orchestra.card_runner import CardRunner
from shared.clock import stamp
from orchestra.corporate_actions import CorporateActionKeeper, default_fetch
from orchestra.cycle import Cycle
from orchestra.exceptions import OperationalError
from orchestra.heartbeat import ErrorLog
from orchestra.trader import Trader, client_order_id
from shared.config import AlpacaSettings
from system_databse import card_calculations, system_db_manager as manager
from system_databse.positions import cards_by_ticker, mismatches
from tests.fixtures.exchange import market_order, trading_client, wait_for_status, wait_until
from tests.fixtures.orchestrator import REPO_ROOT

MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)
TUESDAY = datetime(2026, 11, 24, 14, 45, tzinfo=timezone.utc)
ALGORITHMS = {
    "sell_everything": '''"""Sells everything it holds, the fraction too, and says what it saw."""
from algorithms._framework import AlgorithmBase


class Algorithm(AlgorithmBase):
    def on_data(self, bars, transaction_history):
        held = self.position(transaction_history)
        return ("sell", held, f"sees {held} shares") if held else ("hold", 0, "sees nothing to sell")
''',
    "buy_three": '''"""Buys 3 shares once."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        return ("hold", 0) if transaction_history else ("buy", 3)
''',
    "buy_nine": '''"""Buys 9 shares, saying what it sees of its position and cash."""
from algorithms._framework import AlgorithmBase


class Algorithm(AlgorithmBase):
    def on_data(self, bars, transaction_history):
        seen = f"sees {self.position(transaction_history)} shares and ${self.uninvested_cash(transaction_history):,.2f}"
        return ("buy", 9, seen)
''',
}


class Desk:
    """The daemon's money parts around one ledger and one paper exchange."""

    def __init__(self, exchange, ledger, market, tmp_path):
        self.exchange, self.ledger, self.market = exchange, ledger, market
        exchange.control(fill_delay_seconds=0.2, rate_limit_per_minute=0)  # this file is about money, not the budget
        self.settings = AlpacaSettings.from_env(exchange.env)
        self.broker = AlpacaWrapper(self.settings, sleep=lambda s: None)
        self.errors = ErrorLog()
        self.trader = Trader(self.broker, ledger, now=self.now, fill_timeout=20, on_error=self.errors.record,
                             workers=1)  # in the calling thread: a minute, event by event
        directory = tmp_path / "algorithms"
        directory.mkdir()
        for name, source in ALGORITHMS.items():
            (directory / f"{name}.py").write_text(source)
        self.runner = CardRunner(market, ledger, directory=directory)
        self.cycle = Cycle(ledger_conn=ledger, market_conn=market, broker=self.broker, trader=self.trader,
                           errors=self.errors, runner=self.runner)
        self.keeper = CorporateActionKeeper(ledger, market, default_fetch(self.settings))

    def card(self, ticker: str, algorithm: str = "sell_everything", capital: float = 10_000.0) -> int:
        return manager.create_algorithm(ticker, algorithm, capital, conn=self.ledger)

    def trade(self, minute: datetime, ticker: str, *intents: Intent, prices=None):
        """One net order of ``ticker`` for ``minute``, journaled, sent and settled by the trader."""
        return self.trader.trade([net_ticker(ticker, intents)], minute, prices or {})

    def split(self, symbol: str, kind: str, new_rate: float, old_rate: float, ex_date: str = "2026-11-24") -> None:
        requests.post(f"{self.exchange.base_url}/_sim/corporate_actions", timeout=30, json={
            "symbol": symbol, "type": kind, "ex_date": ex_date, "new_rate": new_rate, "old_rate": old_rate,
        }).raise_for_status()

    def now(self) -> datetime:
        """The trading clock: the exchange's own (its clock stands still between the test's jumps)."""
        return self.broker.get_clock().timestamp

    def go_to(self, moment: datetime) -> None:
        self.exchange.set_clock(stamp(moment), speed=0)

    def backfill(self, ticker: str) -> None:
        historical_pull.backfill(self.market, ticker, now=stamp(self.now()), settings=self.settings)

    def held(self, card_id: int):
        return manager.get_position_totals(card_id, conn=self.ledger)["held"]

    def broker_holds(self, ticker: str):
        return self.broker.get_positions().get(ticker, 0)


@pytest.fixture
def desk(paper_exchange_factory, ledger, market, tmp_path):
    return Desk(paper_exchange_factory(start=stamp(MONDAY), speed=0), ledger, market, tmp_path)


def _minute(desk) -> datetime:
    """The last closed minute on the exchange's clock."""
    return desk.now().replace(second=0, microsecond=0) - timedelta(minutes=1)


# --------------------------------------------------------------------------- 1. a split with a non-whole ratio


def test_bought_10_sold_5_then_a_3_for_2_split_the_card_holds_7_5_its_algorithm_sees_7_5_and_sells_7_5(desk):
    """...inside one net order with another card's buy: the seller ends at 0 shares (never -1),
    the buyer at 3, and the broker holds exactly what the cards add up to."""
    seller = desk.card("AAPL", "sell_everything")
    desk.trade(MONDAY - timedelta(minutes=2), "AAPL", Intent(seller, "buy", 10))
    desk.trade(MONDAY - timedelta(minutes=1), "AAPL", Intent(seller, "sell", 5))
    desk.split("AAPL", "forward_split", 3, 2)
    desk.go_to(TUESDAY)
    desk.keeper.check(desk.now())
    assert desk.held(seller) == 7.5 == desk.broker_holds("AAPL")

    buyer = desk.card("AAPL", "buy_three")
    desk.backfill("AAPL")
    report = desk.cycle.run(_minute(desk))

    decisions = {d.card["id"]: d.decision for d in report.decisions}
    assert decisions[seller].shares == 7.5
    assert decisions[seller].reason.startswith("sees 7.5 shares; sell 7.5 of 7.5 shares")
    assert sorted((t.card_id, t.filled_shares, t.crossed) for t in report.trades) == [  # 3 cross, 4.5 to the broker
        (seller, 3, True), (seller, 4.5, False), (buyer, 3, True)]
    assert (desk.held(seller), desk.held(buyer)) == (0, 3)
    assert desk.broker_holds("AAPL") == 3 == cards_by_ticker(conn=desk.ledger)["AAPL"]
    assert [(o["side"], o["qty"]) for o in desk.exchange.state()["orders"]][-1] == ("sell", "4.5")


def test_nine_buys_of_9_at_100_then_1_for_10_the_algorithm_sees_8_1_shares_and_1900_dollars(desk, market):
    """The check no longer sees 0 shares and the whole $10,000: a $9,000 buy is refused, and the
    card's 8.1 shares can be sold by its algorithm."""
    card = desk.card("NVDA", "buy_nine", 10_000)
    for n in range(9):
        manager.record_buy(card, 9, 100.0, timestamp=f"2026-11-23T15:0{n}:00Z", conn=desk.ledger)
    manager.record_corporate_action({"id": "nvda-1-10", "symbol": "NVDA", "kind": "reverse_split",
                                     "ex_date": "2026-11-24", "effective_at": "2026-11-24T14:30:00Z",
                                     "new_rate": 1.0, "old_rate": 10.0}, conn=desk.ledger)
    db_manager.upsert_bars(market, [{"ticker": "NVDA", "timestamp": "2026-11-24T14:44:00Z", "open": 1000.0,
                                     "high": 1000.0, "low": 1000.0, "close": 1000.0, "volume": 100}])
    row = manager.get_algorithm(card, conn=desk.ledger)

    buy = desk.runner.decide(row, TUESDAY - timedelta(minutes=1)).decision
    sell = desk.runner.decide({**row, "algorithm_type": "sell_everything"}, TUESDAY - timedelta(minutes=1)).decision

    assert not buy.accepted and buy.reason.startswith("sees 8.1 shares and $1,900.00; refused: buy 9 shares")
    assert (sell.action, sell.shares, sell.accepted) == ("sell", 8.1, True)


# --------------------------------------------------------------------------- 2. corporate actions wait for open orders


def test_a_split_waits_for_the_order_left_open_so_its_shares_are_split_too(desk):
    """An NVDA buy of 4 filled on Monday but was still open in the journal (the daemon died before
    it recorded it). The 10:1 split on Tuesday must include those 4 shares: the card holds 40,
    as the broker does."""
    card = desk.card("NVDA", "sell_everything", 100_000)
    desk.trader._final_state = lambda result: result  # the process dies before it waited for the fill
    [outcome] = desk.trade(MONDAY - timedelta(minutes=1), "NVDA", Intent(card, "buy", 4))
    assert outcome.status == "open"
    wait_until(lambda: desk.broker_holds("NVDA") == 4, 30, message="the fill at the exchange")
    desk.split("NVDA", "forward_split", 10, 1)
    desk.go_to(TUESDAY)

    desk.keeper.check(desk.now())  # Tuesday's first check meets the order still open
    desk.trader.reconcile()
    desk.keeper.check(desk.now() + timedelta(minutes=1))

    assert desk.held(card) == 40 == desk.broker_holds("NVDA")
    assert mismatches(desk.broker.get_positions(), cards_by_ticker(conn=desk.ledger)) == []


# --------------------------------------------------------------------------- 3. available cash


def test_cash_for_a_new_card_keeps_an_unsettled_sells_proceeds_and_a_stopped_cards_open_buy(desk):
    """A running card's sell of 10 AAPL filled at the broker but is not settled in the ledger yet,
    and a card stopped after its buy of 5 MSFT was sent: neither's money is free for a new card."""
    seller = desk.card("AAPL", "sell_everything", 10_000)
    [bought] = desk.trade(MONDAY - timedelta(minutes=3), "AAPL", Intent(seller, "buy", 10))
    desk.trader._final_state = lambda result: result  # nothing is settled after this
    price = bought.price  # the exchange's clock stands still: the sale fills at the same price
    desk.trade(MONDAY - timedelta(minutes=2), "AAPL", Intent(seller, "sell", 10), prices={"AAPL": price})
    wait_until(lambda: desk.broker_holds("AAPL") == 0, 30, message="the sell at the exchange")
    stopped = desk.card("MSFT", "buy_three", 5_000)
    desk.exchange.control(fill_delay_seconds=3600)
    desk.trade(MONDAY - timedelta(minutes=1), "MSFT", Intent(stopped, "buy", 5), prices={"MSFT": 400.0})
    manager.stop_algorithm(stopped, conn=desk.ledger)

    cash = float(desk.broker.get_account_cash())
    available = card_calculations.available_cash(cash, conn=desk.ledger)["available_cash"]

    # the seller's $10,000 (its uninvested cash plus its sale's proceeds) and the 5 x $400 still to pay
    assert available == pytest.approx(100_000 - 10_000 - 5 * 400.0, abs=0.01)


# --------------------------------------------------------------------------- 4. and 5. a card stopped mid-minute


def test_a_card_stopped_while_the_minute_decides_is_liquidated_and_every_other_ticker_still_trades(desk):
    closer, other = desk.card("KO", "sell_everything"), desk.card("MSFT", "buy_three")
    desk.trade(MONDAY - timedelta(minutes=2), "KO", Intent(closer, "buy", 7))
    for ticker in ("KO", "MSFT"):
        desk.backfill(ticker)
    decide_all = desk.runner.decide_all

    def decide_then_stop(cards, at):
        made = decide_all(cards, at)
        manager.stop_algorithm(closer, conn=desk.ledger)  # the wall's STOP lands while the cycle decides
        return made

    desk.runner.decide_all = decide_then_stop
    report = desk.cycle.run(_minute(desk))

    assert sorted((t.card_id, t.status, t.filled_shares) for t in report.trades) == [
        (closer, "failed", 0), (closer, "filled", 7), (other, "filled", 3)]
    assert (desk.held(closer), desk.held(other)) == (0, 3)
    assert (desk.broker_holds("KO"), desk.broker_holds("MSFT")) == (0, 3)


class PositionsDown(AlpacaWrapper):
    """The real wrapper, with the positions read failing (the broker answers 503 to it)."""

    def get_positions(self):
        raise BrokerUnavailable("read positions: broker answered 503")


def test_a_net_buy_that_turns_into_a_net_sell_when_a_card_is_dropped_is_not_sent_unchecked(desk):
    """Minute 1: the seller holds 7. Minute 2: a new card wants 7, the seller 4 (a net buy of 3,
    which needs no position check); the buyer is stopped before the order goes out, the rest is a
    net sell of 4 and the broker's positions cannot be read: nothing is sent."""
    seller = desk.card("KO", "sell_everything")
    desk.trade(MONDAY - timedelta(minutes=2), "KO", Intent(seller, "buy", 7))
    buyer = desk.card("KO", "buy_three")
    broker = PositionsDown(desk.settings, sleep=lambda s: None)
    trader = Trader(broker, desk.ledger, now=desk.now, fill_timeout=20)
    cycle = Cycle(ledger_conn=desk.ledger, market_conn=desk.market, broker=broker, trader=trader,
                  errors=ErrorLog(), runner=desk.runner)
    cycle.compare_positions()
    orders_before = len(desk.exchange.state()["orders"])
    plan = net_ticker("KO", [Intent(buyer, "buy", 7), Intent(seller, "sell", 4)])
    assert (plan.side, plan.net_shares) == ("buy", 3) and cycle._tradable(plan, 50.0)
    manager.stop_algorithm(buyer, conn=desk.ledger)

    outcomes = trader.trade([plan], MONDAY, {"KO": 50.0}, lambda again: cycle._tradable(again, 50.0))

    assert [(o.card_id, o.status) for o in outcomes] == [(buyer, "failed")]
    assert len(desk.exchange.state()["orders"]) == orders_before
    assert desk.held(seller) == 7 == desk.broker_holds("KO")


# --------------------------------------------------------------------------- 6. reconciling by hand


def _reconcile_cli(desk, system_db, stocks_db, *args):
    env = {**os.environ, **desk.exchange.env, "AUTOTRADER_SYSTEM_DB": str(system_db),
           "AUTOTRADER_STOCKS_DB": str(stocks_db), "AUTOTRADER_CLOCK": "broker"}
    return subprocess.run([sys.executable, "-m", "scripts.reconcile", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _price(market, ticker, price):
    db_manager.upsert_bars(market, [{"ticker": ticker, "timestamp": "2026-11-23T14:59:00Z", "open": price,
                                     "high": price, "low": price, "close": price, "volume": 100}])


def test_accepting_the_brokers_7_5_shares_over_the_cards_7_records_the_half_share(desk, system_db, stocks_db, market):
    """The account bought 5 AAPL by hand before a 3:2 split (7.5 at the broker); the owner had
    recorded 7 on the card. Accepting the broker's count records the missing half share."""
    card = desk.card("AAPL")
    client = trading_client(desk.exchange)
    client.submit_order(market_order("AAPL", 5, "buy", "bought-by-hand"))
    wait_for_status(client, "bought-by-hand", {"filled"})
    desk.split("AAPL", "forward_split", 3, 2)
    desk.go_to(TUESDAY)
    manager.record_buy(card, 7, 200.0, timestamp="2026-11-24T14:40:00Z", conn=desk.ledger)
    _price(market, "AAPL", 200.0)

    done = _reconcile_cli(desk, system_db, stocks_db, "--ticker", "AAPL", "--card", str(card), "--accept-broker")

    assert done.returncode == 0, done.stderr
    assert "recorded a buy of 0.5 shares at $200.00" in done.stdout
    assert desk.held(card) == 7.5 == desk.broker_holds("AAPL")
    report = _reconcile_cli(desk, system_db, stocks_db).stdout.strip().splitlines()
    assert report[-1] == "the cards agree with the broker on every ticker"


def test_accepting_while_an_order_is_open_settles_it_first_and_never_counts_its_fill_twice(desk, system_db, stocks_db,
                                                                                         market):
    card = desk.card("MSFT")
    desk.trader._final_state = lambda result: result  # filled at the broker, still open in the journal
    desk.trade(MONDAY - timedelta(minutes=1), "MSFT", Intent(card, "buy", 4))
    wait_until(lambda: desk.broker_holds("MSFT") == 4, 30, message="the fill at the exchange")
    _price(market, "MSFT", 400.0)

    done = _reconcile_cli(desk, system_db, stocks_db, "--ticker", "MSFT", "--card", str(card), "--accept-broker")
    desk.trader.reconcile()  # the daemon's next minute

    assert done.returncode == 0, done.stderr
    assert "the cards already add up to the broker's 4 shares; nothing recorded" in done.stdout
    assert [(t["type"], t["shares"]) for t in manager.get_transactions(card, conn=desk.ledger)] == [("buy", 4)]
    assert desk.held(card) == 4 == desk.broker_holds("MSFT")


def test_an_order_that_needs_a_person_does_not_keep_the_next_open_order_from_settling(desk):
    """An acknowledged AAPL order the broker cannot find (the last look-up before a person must act)
    is older than an MSFT order filled while the daemon was down: the MSFT fill is recorded."""
    lost, filled = desk.card("AAPL"), desk.card("MSFT")
    desk.trader._final_state = lambda result: result
    desk.exchange.control(reject_orders=0)
    coid = _acknowledged_but_lost(desk, lost)
    desk.trade(MONDAY - timedelta(minutes=1), "MSFT", Intent(filled, "buy", 2))
    wait_until(lambda: desk.broker_holds("MSFT") == 2, 30, message="the fill at the exchange")

    with pytest.raises(OperationalError, match=coid):
        desk.trader.reconcile()

    assert desk.held(filled) == 2 == desk.broker_holds("MSFT")
    assert [o["client_order_id"] for o in manager.get_open_orders(conn=desk.ledger)] == [coid]


def _acknowledged_but_lost(desk, card) -> str:
    """An order the broker acknowledged, then lost, and has already missed every look-up but one."""
    from orchestra import net_order

    minute = MONDAY - timedelta(minutes=5)
    coid = client_order_id("AAPL", minute, desk.trader.ledger_id)
    net_order.journal(desk.ledger, net_ticker("AAPL", [Intent(card, "buy", 1)]), coid, minute=stamp(minute),
                      price=None, now=stamp(minute))
    net_order.apply(desk.ledger, coid, net_order.BrokerUpdate("new", 0, None, None, "lost-id"), now=stamp(minute))
    for _ in range(net_order.MISSED_LOOKUP_BOUND - 1):
        net_order.apply(desk.ledger, coid, net_order.Missing(), now=stamp(minute))
    return coid


# --------------------------------------------------------------------------- 7. a reverse split's remainder


def test_a_stopped_card_sells_its_reverse_split_remainder_with_its_whole_shares(desk):
    """10 F, then 1:3: 3.333333333 shares. The card is stopped: its liquidation sells all of them
    in one fractional market DAY order, and nothing is left in a card nobody sees."""
    card = desk.card("F", "sell_everything", 1_000)
    desk.trade(MONDAY - timedelta(minutes=1), "F", Intent(card, "buy", 10))
    desk.split("F", "reverse_split", 1, 3)
    desk.go_to(TUESDAY)
    desk.keeper.check(desk.now())
    assert desk.held(card) == 3.333333333 == desk.broker_holds("F")
    desk.backfill("F")
    manager.stop_algorithm(card, conn=desk.ledger)

    report = desk.cycle.run(_minute(desk))

    assert [(t.card_id, t.status, t.filled_shares) for t in report.trades] == [(card, "filled", 3.333333333)]
    assert desk.held(card) == 0 and "F" not in desk.broker.get_positions()
    [sale] = [t for t in manager.get_transactions(card, conn=desk.ledger) if t["type"] == "sell"]
    assert sale["shares"] == 3.333333333
