"""The daemon's side of splits and dividends: read once a day, applied once, stored bars scaled all or nothing."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import date

from database import db_manager
from database.historical_pull import DataUnavailable
from orchestra import net_order
from orchestra.allocation import Intent, net_ticker
from orchestra.corporate_actions import CorporateActionKeeper
from orchestra.net_order import BrokerUpdate
from system_databse.positions import mismatches as position_mismatches
from system_databse import system_db_manager as ledger_db
from tests.fixtures.orchestrator import REPO_ROOT

SPLIT = {"id": "7f1c-split", "symbol": "NVDA", "kind": "forward_split", "ex_date": "2026-11-24",
         "effective_at": "2026-11-24T14:30:00Z", "new_rate": 10.0, "old_rate": 1.0}
DIVIDEND = {"id": "7f1c-div", "symbol": "KO", "kind": "cash_dividend", "ex_date": "2026-11-24",
            "effective_at": "2026-11-24T14:30:00Z", "rate": 0.25}


def monday_bars(ticker: str, count: int, close: float) -> list[dict]:
    return [{"ticker": ticker, "timestamp": f"2026-11-23T{14 + (30 + i) // 60:02d}:{(30 + i) % 60:02d}:00Z",
             "open": close, "high": close, "low": close, "close": close, "volume": 100} for i in range(count)]


class Feed:
    """The data API as the keeper sees it: what it was asked and what it answers."""

    def __init__(self, actions, fail: int = 0):
        self.actions, self.fail, self.asked = actions, fail, []

    def __call__(self, tickers, start, end):
        self.asked.append((tuple(tickers), start, end))
        if self.fail:
            self.fail -= 1
            raise DataUnavailable("data API answered 503")
        return [a for a in self.actions if a["symbol"] in tickers and a["ex_date"] <= end.isoformat()]


def test_a_split_is_applied_to_the_card_and_the_bars_once_whatever_the_rereads(ledger, market):
    card = ledger_db.create_algorithm("NVDA", "x", 20_000, conn=ledger)
    ledger_db.record_buy(card, 119, 140.0, timestamp="2026-11-23T14:35:00Z", conn=ledger)
    db_manager.upsert_bars(market, monday_bars("NVDA", 30, 140.0))
    feed = Feed([SPLIT])

    first = CorporateActionKeeper(ledger, market, feed).check("2026-11-24T14:31:00Z")
    again = CorporateActionKeeper(ledger, market, feed).check("2026-11-24T14:32:00Z")  # a restarted daemon

    assert [(done["bars_adjusted"], [c["share_change"] for c in done["cards"]]) for done in first] == [(30, [1071])]
    assert again == []
    assert ledger_db.get_position_totals(card, conn=ledger)["shares"] == 1190
    assert set(db_manager.get_bars_between(market, "NVDA", "2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z").close) == {14.0}
    assert feed.asked[0] == (("NVDA",), date(2026, 11, 23), date(2026, 11, 24))  # from the oldest stored bar


def test_the_keeper_asks_once_per_trading_day_and_again_after_a_failure(ledger, market):
    card = ledger_db.create_algorithm("KO", "x", 10_000, conn=ledger)
    ledger_db.record_buy(card, 100, 62.0, timestamp="2026-11-23T15:00:00Z", conn=ledger)
    errors = []
    feed = Feed([DIVIDEND], fail=1)
    keeper = CorporateActionKeeper(ledger, market, feed, on_error=errors.append)

    assert keeper.check("2026-11-24T14:31:00Z") == []          # the data API is down: nothing recorded
    assert len(errors) == 1 and "trying again next cycle" in errors[0]
    assert [d["cards"][0]["cash"] for d in keeper.check("2026-11-24T14:32:00Z")] == [25.0]
    keeper.check("2026-11-24T15:00:00Z")
    keeper.check("2026-11-24T20:59:00Z")
    assert len(feed.asked) == 2                                  # once more only after the failure
    keeper.check("2026-11-25T14:31:00Z")
    assert len(feed.asked) == 3                                  # the next trading day asks again
    assert ledger_db.get_position_totals(card, conn=ledger)["dividends"] == 25.0


def test_a_new_tickers_backfill_waits_for_its_splits_so_adjusted_bars_never_meet_raw_ones(ledger, market):
    db_manager.upsert_bars(market, monday_bars("NVDA", 5, 140.0))  # raw bars from an earlier run
    calls = []
    keeper = CorporateActionKeeper(ledger, market, Feed([SPLIT]))
    backfill = keeper.guard_backfill(lambda ticker: calls.append(
        (ticker, db_manager.get_latest_price(market, ticker)["price"])) or 0, lambda: "2026-11-24T15:00:00Z")
    backfill("NVDA")
    assert calls == [("NVDA", 14.0)]  # scaled before the backfill's adjusted bars arrive


def test_an_open_order_holds_back_the_cards_split_but_never_the_bars_a_backfill_meets(ledger, market):
    """On the ex-date an order on NVDA is still working: the card's split waits for its fill, but the
    stored bars are scaled before the back-fill brings the data API's adjusted history (it once
    brought Monday's last bar adjusted into raw bars, and the split then divided it twice)."""
    card = ledger_db.create_algorithm("NVDA", "x", 20_000, conn=ledger)
    ledger_db.record_buy(card, 119, 140.0, timestamp="2026-11-23T14:35:00Z", conn=ledger)
    db_manager.upsert_bars(market, monday_bars("NVDA", 5, 140.0))
    net_order.journal(ledger, net_ticker("NVDA", [Intent(card, "buy", 1)]), "buy-at-open",
                      minute="2026-11-24T14:31:00Z", price=14.0, now="2026-11-24T14:31:01Z")
    keeper = CorporateActionKeeper(ledger, market, Feed([SPLIT]))
    calls = []
    backfill = keeper.guard_backfill(lambda ticker: calls.append(
        (ticker, db_manager.get_latest_price(market, ticker)["price"])) or 0, lambda: "2026-11-24T14:31:02Z")

    backfill("NVDA")
    assert calls == [("NVDA", 14.0)]                                    # scaled before the back-fill
    assert ledger_db.get_position_totals(card, conn=ledger)["shares"] == 119  # the card waits for its order

    net_order.apply(ledger, "buy-at-open", BrokerUpdate("filled", 1, 14.0, "2026-11-24T14:31:03Z"),
                    now="2026-11-24T14:31:04Z")
    [done] = keeper.check("2026-11-24T14:32:00Z")
    assert (done["bars_adjusted"], [c["share_change"] for c in done["cards"]]) == (None, [1071])
    assert ledger_db.get_position_totals(card, conn=ledger)["shares"] == 1191
    assert set(db_manager.get_bars_between(market, "NVDA", "2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z").close) == {14.0}


def test_a_fractional_broker_position_after_a_reverse_split_is_no_mismatch():
    assert position_mismatches({"F": 3.333333333}, {"F": 3.333333333}) == []
    assert position_mismatches({"F": 6.666666667}, {"F": 6.6666666666}) == []  # two cards' remainders
    assert position_mismatches({"F": 3.333333333}, {"F": 3}) == [{"ticker": "F", "broker": 3.333333333, "cards": 3}]
    assert position_mismatches({"NVDA": 1190}, {"NVDA": 119}) == [{"ticker": "NVDA", "broker": 1190, "cards": 119}]


ADJUSTER = """
import sys
from database import db_manager
conn = db_manager.get_connection(sys.argv[1])
print("adjusting", flush=True)
db_manager.adjust_bars_for_split(conn, "split-1", "NVDA", "2026-11-24", "2026-11-24T14:30:00Z", 0.1,
                                 "2026-11-24T14:00:00Z")
print("done", flush=True)
"""


def test_sigkill_during_the_bar_adjustment_leaves_all_bars_adjusted_or_none(market, stocks_db):
    rows = [{"ticker": "NVDA", "timestamp": f"20{y:02d}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:00Z", "open": 140.0,
             "high": 140.0, "low": 140.0, "close": 140.0, "volume": 100}
            for y in (24, 25) for m in range(1, 13) for d in range(1, 29) for h in (15, 16, 17, 18) for mi in range(0, 60, 2)]
    db_manager.upsert_bars(market, rows)
    interrupted = 0
    for attempt in range(4):
        child = subprocess.Popen([sys.executable, "-c", ADJUSTER, str(stocks_db)], cwd=REPO_ROOT,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "adjusting"
        time.sleep(random.uniform(0.0, 0.05))
        child.send_signal(signal.SIGKILL)
        finished = child.stdout.read().strip() == "done"
        child.wait()
        closes = {r[0] for r in market.execute("SELECT DISTINCT close FROM bars WHERE ticker = 'NVDA'")}
        recorded = db_manager.get_bar_adjustments(market, "NVDA")
        if recorded:
            assert closes == {14.0} and recorded[0]["rows_adjusted"] == len(rows)   # all adjusted, once
            break
        assert closes == {140.0}                                                   # none adjusted
        interrupted += not finished
    assert interrupted >= 1  # at least one kill landed inside the transaction


SELL_ALL = ('"""Sells everything it holds."""\n\n\nclass Algorithm:\n'
            "    def __init__(self, ticker, initial_capital):\n        pass\n\n"
            "    def get_data_requirements(self, current_time):\n        return {'bars': 1}\n\n"
            "    def on_data(self, bars, transaction_history):\n"
            "        held = sum(t['shares'] if t['type'] == 'buy' else -t['shares'] for t in transaction_history)\n"
            "        return ('sell', held) if held else ('hold', 0)\n")


def test_after_a_split_the_algorithm_sees_and_may_sell_all_1190_shares(ledger, market, tmp_path):
    from datetime import datetime, timezone

    from orchestra.card_runner import CardRunner

    (tmp_path / "sell_all.py").write_text(SELL_ALL)
    card = ledger_db.create_algorithm("NVDA", "sell_all", 20_000, conn=ledger)
    ledger_db.record_buy(card, 119, 140.0, timestamp="2026-11-23T14:35:00Z", conn=ledger)
    db_manager.upsert_bars(market, monday_bars("NVDA", 30, 140.0))
    CorporateActionKeeper(ledger, market, Feed([SPLIT])).check("2026-11-24T14:31:00Z")
    db_manager.upsert_bars(market, [{"ticker": "NVDA", "timestamp": "2026-11-24T14:30:00Z", "open": 14.1,
                                     "high": 14.1, "low": 14.1, "close": 14.1, "volume": 100}])
    runner = CardRunner(market, ledger, directory=tmp_path, timeout=5)
    made = runner.decide(ledger_db.get_algorithm(card, conn=ledger), datetime(2026, 11, 24, 14, 30, tzinfo=timezone.utc))
    assert (made.decision.action, made.decision.shares, made.decision.accepted) == ("sell", 1190, True)
