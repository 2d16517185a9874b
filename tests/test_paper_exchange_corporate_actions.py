"""The paper exchange schedules splits and dividends, serves them to alpaca-py and applies them at the open."""
from __future__ import annotations

import sqlite3
from datetime import date, datetime, timezone

import pytest
import requests
from alpaca.data.historical.corporate_actions import CorporateActionsClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.enums import Adjustment
from alpaca.data.requests import CorporateActionsRequest, StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from tests.fixtures.exchange import market_order, trading_client, wait_for_status, wait_until

MONDAY_OPEN = "2026-11-23T14:30:00Z"
TUESDAY = "2026-11-24"
TUESDAY_AFTER_OPEN = "2026-11-24T14:45:00Z"


@pytest.fixture
def paper_exchange(untraded_exchange):
    """The refused requests here change nothing: they share the module's exchange."""
    return untraded_exchange


def schedule(exchange, **spec) -> requests.Response:
    return requests.post(f"{exchange.base_url}/_sim/corporate_actions", json=spec, timeout=30)


def buy(exchange, symbol: str, qty: int, client_order_id: str) -> None:
    client = trading_client(exchange)
    client.submit_order(market_order(symbol, qty, "buy", client_order_id))
    wait_for_status(client, client_order_id, {"filled"})


def minute_bars(exchange, symbol: str, start: str, end: str, adjustment: Adjustment = Adjustment.RAW):
    client = StockHistoricalDataClient(exchange.key, exchange.secret, url_override=exchange.base_url)
    request = StockBarsRequest(symbol_or_symbols=symbol, timeframe=TimeFrame.Minute, start=datetime.fromisoformat(start),
                               end=datetime.fromisoformat(end), adjustment=adjustment)
    return client.get_stock_bars(request).data[symbol]


def test_a_10_for_1_split_turns_119_shares_into_1190_and_divides_the_entry_price(paper_exchange_factory):
    exchange = paper_exchange_factory(start="2026-11-23T20:50:00Z", speed=60)
    assert schedule(exchange, symbol="NVDA", type="forward_split", ex_date=TUESDAY, new_rate=10, old_rate=1).ok
    buy(exchange, "NVDA", 119, "nvda-1")
    client = trading_client(exchange)
    before = client.get_open_position("NVDA")
    exchange.set_clock("2026-11-23T21:30:00Z")
    client.submit_order(market_order("NVDA", 5, "buy", "queued-overnight"))  # waits for Tuesday's open

    exchange.set_clock("2026-11-24T05:00:00Z")
    client.submit_order(market_order("NVDA", 1, "buy", "also-queued"))
    exchange.set_clock(TUESDAY_AFTER_OPEN, speed=0)

    after = client.get_open_position("NVDA")
    assert after.qty == "1190"
    assert float(after.avg_entry_price) == pytest.approx(float(before.avg_entry_price) / 10, abs=0.0001)
    assert float(after.cost_basis) == float(before.cost_basis)
    statuses = {o["client_order_id"]: o["status"] for o in exchange.state()["orders"]}
    assert statuses["queued-overnight"] == statuses["also-queued"] == "canceled"  # a split cancels open orders


def test_an_order_queued_for_the_ex_dates_open_is_cancelled_when_the_clock_runs_through_the_open(
        paper_exchange_factory):
    """A sell sent after the close waits for the open of the split's ex-date. The split is applied at
    that open before anything fills there: the order is cancelled, never filled at the divided price
    out of the shares before the split (which left the account 3 shares short of its cards)."""
    exchange = paper_exchange_factory(start="2026-11-23T20:50:00Z", speed=60)
    buy(exchange, "AAPL", 10, "aapl-10")
    client = trading_client(exchange)
    exchange.set_clock("2026-11-23T21:00:30Z")
    client.submit_order(market_order("AAPL", 3, "sell", "sell-at-the-open"))
    assert schedule(exchange, symbol="AAPL", type="forward_split", ex_date=TUESDAY, new_rate=3, old_rate=2).ok
    exchange.set_clock("2026-11-24T14:28:00Z", speed=300)  # the clock runs through the open
    wait_until(lambda: exchange.state()["clock"]["now"] >= "2026-11-24T14:31", 30, message="the open to pass")

    order = next(o for o in exchange.state()["orders"] if o["client_order_id"] == "sell-at-the-open")
    assert (order["status"], order["filled_qty"]) == ("canceled", "0")
    assert client.get_open_position("AAPL").qty == "15"


def test_raw_prices_are_divided_from_the_ex_date_and_history_can_be_split_adjusted(paper_exchange_factory):
    exchange = paper_exchange_factory(start="2026-11-23T21:30:00Z", speed=0)
    assert schedule(exchange, symbol="NVDA", type="forward_split", ex_date=TUESDAY, new_rate=10, old_rate=1).ok
    monday_raw = minute_bars(exchange, "NVDA", "2026-11-23T20:58:00+00:00", "2026-11-23T20:59:00+00:00")
    exchange.set_clock("2026-11-24T15:00:00Z")

    tuesday = minute_bars(exchange, "NVDA", "2026-11-24T14:30:00+00:00", "2026-11-24T14:30:00+00:00")
    monday_again = minute_bars(exchange, "NVDA", "2026-11-23T20:58:00+00:00", "2026-11-23T20:59:00+00:00")
    monday_adjusted = minute_bars(exchange, "NVDA", "2026-11-23T20:58:00+00:00", "2026-11-23T20:59:00+00:00",
                                  Adjustment.SPLIT)
    assert [b.close for b in monday_again] == [b.close for b in monday_raw]  # raw history keeps its prices
    assert [b.close for b in monday_adjusted] == [round(b.close / 10, 2) for b in monday_raw]
    assert [b.volume for b in monday_adjusted] == [b.volume * 10 for b in monday_raw]
    assert 0.8 < tuesday[0].open / monday_adjusted[-1].close < 1.2  # no cliff in adjusted prices
    assert 0.08 < tuesday[0].open / monday_raw[-1].close < 0.12     # the raw cliff is a tenth


def test_the_evening_before_the_ex_date_history_is_not_adjusted_yet(paper_exchange_factory):
    """At 20:00 New York on Monday it is already Tuesday in UTC; the split's ex-date is a New York day."""
    exchange = paper_exchange_factory(start="2026-11-24T01:00:00Z", speed=0)
    assert schedule(exchange, symbol="NVDA", type="forward_split", ex_date=TUESDAY, new_rate=10, old_rate=1).ok
    raw = minute_bars(exchange, "NVDA", "2026-11-23T20:58:00+00:00", "2026-11-23T20:59:00+00:00")
    adjusted = minute_bars(exchange, "NVDA", "2026-11-23T20:58:00+00:00", "2026-11-23T20:59:00+00:00",
                           Adjustment.SPLIT)
    assert [b.close for b in adjusted] == [b.close for b in raw]


def test_alpaca_py_reads_the_scheduled_actions_with_its_own_models(paper_exchange_factory):
    exchange = paper_exchange_factory(start=MONDAY_OPEN, speed=0)
    for spec in ({"symbol": "NVDA", "type": "forward_split", "ex_date": TUESDAY, "new_rate": 10, "old_rate": 1},
                 {"symbol": "F", "type": "reverse_split", "ex_date": TUESDAY, "new_rate": 1, "old_rate": 3},
                 {"symbol": "KO", "type": "cash_dividend", "ex_date": "2026-11-25", "rate": 0.25}):
        assert schedule(exchange, **spec).ok
    client = CorporateActionsClient(exchange.key, exchange.secret, url_override=exchange.base_url)

    found = client.get_corporate_actions(CorporateActionsRequest(
        symbols=["NVDA", "F", "KO"], start=date(2026, 11, 23), end=date(2026, 11, 30))).data
    only_nvda = client.get_corporate_actions(CorporateActionsRequest(
        symbols=["NVDA"], types=["forward_split"], start=date(2026, 11, 23), end=date(2026, 11, 30))).data
    paged = client.get_corporate_actions(CorporateActionsRequest(
        start=date(2026, 11, 23), end=date(2026, 11, 30), limit=2)).data

    split, = found["forward_splits"]
    assert (split.symbol, split.new_rate, split.old_rate, split.ex_date) == ("NVDA", 10, 1, date(2026, 11, 24))
    assert (found["reverse_splits"][0].new_rate, found["reverse_splits"][0].old_rate) == (1, 3)
    assert found["cash_dividends"][0].rate == 0.25
    assert list(only_nvda) == ["forward_splits"]
    assert sum(len(v) for v in paged.values()) == 2
    by_id = client.get_corporate_actions(CorporateActionsRequest(ids=[str(split.id)])).data
    assert by_id["forward_splits"][0].id == split.id


def test_a_1_for_3_reverse_split_of_10_shares_leaves_3_333333333_shares(paper_exchange_factory):
    exchange = paper_exchange_factory(start=MONDAY_OPEN, speed=60)
    buy(exchange, "F", 10, "f-1")
    assert schedule(exchange, symbol="F", type="reverse_split", ex_date=TUESDAY, new_rate=1, old_rate=3).ok
    exchange.set_clock(TUESDAY_AFTER_OPEN, speed=60)

    client = trading_client(exchange)
    assert client.get_open_position("F").qty == "3.333333333"
    client.submit_order(market_order("F", 3, "sell", "f-sell"))
    wait_for_status(client, "f-sell", {"filled"})
    assert client.get_open_position("F").qty == "0.333333333"  # the remainder stays at the broker


def test_selling_a_reverse_splits_fraction_is_saved_to_the_nano_share(paper_exchange_factory, tmp_path):
    """A fill of 0.333333333 shares is written to the saved account like any other (it once failed
    to be written, and every later request answered 500) and read back exactly after a kill."""
    state = tmp_path / "exchange.db"
    exchange = paper_exchange_factory(start=MONDAY_OPEN, speed=60, state=state)
    buy(exchange, "F", 10, "f-1")
    assert schedule(exchange, symbol="F", type="reverse_split", ex_date=TUESDAY, new_rate=1, old_rate=3).ok
    exchange.set_clock(TUESDAY_AFTER_OPEN, speed=60)
    client = trading_client(exchange)
    client.submit_order(market_order("F", 3.333333333, "sell", "f-all"))
    wait_for_status(client, "f-all", {"filled"})
    exchange_cash = exchange.state()["cash"]
    exchange.kill()

    with sqlite3.connect(state) as conn:
        fills = conn.execute("SELECT side, qty FROM fills WHERE symbol = 'F' ORDER BY seq").fetchall()
    assert fills == [("buy", 10), ("sell", 3.333333333)]
    again = paper_exchange_factory(start=None, speed=0, state=state)
    assert "F" not in again.state()["positions"] and again.state()["cash"] == exchange_cash


def test_a_25_cent_dividend_on_100_shares_credits_25_dollars(paper_exchange_factory):
    exchange = paper_exchange_factory(start=MONDAY_OPEN, speed=60)
    buy(exchange, "KO", 100, "ko-1")
    assert schedule(exchange, symbol="KO", type="cash_dividend", ex_date=TUESDAY, rate=0.25).ok
    cash = float(exchange.state()["cash"])
    exchange.set_clock(TUESDAY_AFTER_OPEN)

    state = exchange.state()
    assert float(state["cash"]) == pytest.approx(cash + 25.00, abs=0.001)
    assert state["positions"]["KO"]["qty"] == 100
    assert [a["applied_at"] for a in state["corporate_actions"]] == ["2026-11-24T14:30:00Z"]
    exchange.set_clock("2026-11-25T15:00:00Z")
    assert float(exchange.state()["cash"]) == pytest.approx(cash + 25.00, abs=0.001)  # paid once


def test_the_start_option_schedules_actions(paper_exchange_factory):
    exchange = paper_exchange_factory(start=MONDAY_OPEN, speed=0, env={
        "PAPER_EXCHANGE_CORPORATE_ACTIONS": "NVDA,forward_split,2026-11-24,4:1 KO,cash_dividend,2026-11-24,0.31"})
    listed = requests.get(f"{exchange.base_url}/_sim/corporate_actions", timeout=30).json()
    assert [(a["symbol"], a["type"]) for a in listed] == [("KO", "cash_dividend"), ("NVDA", "forward_split")]
    assert listed[1]["new_rate"] == 4 and listed[0]["rate"] == 0.31


@pytest.mark.parametrize("spec, message", [
    ({"symbol": "NVDA", "type": "forward_split", "ex_date": "2026-11-26", "new_rate": 10, "old_rate": 1},
     "trading day"),  # Thanksgiving
    ({"symbol": "NVDA", "type": "forward_split", "ex_date": "2026-11-23", "new_rate": 10, "old_rate": 1},
     "already opened"),
    ({"symbol": "NVDA", "type": "forward_split", "ex_date": TUESDAY, "new_rate": 1, "old_rate": 10}, "new_rate >"),
    ({"symbol": "XXXX", "type": "cash_dividend", "ex_date": TUESDAY, "rate": 0.25}, "active asset"),
    ({"symbol": "KO", "type": "cash_dividend", "ex_date": TUESDAY, "rate": -1}, "positive"),
    ({"symbol": "KO", "type": "stock_merger", "ex_date": TUESDAY}, "type must be"),
])
def test_bad_schedules_are_refused_with_a_reason(paper_exchange, spec, message):
    answer = schedule(paper_exchange, **spec)
    assert answer.status_code == 400 and message in answer.json()["error"]


def test_corporate_actions_need_the_keys_like_all_market_data(paper_exchange):
    answer = requests.get(f"{paper_exchange.base_url}/v1/corporate-actions", timeout=30)
    assert answer.status_code == 403 and answer.json() == {"message": "forbidden"}


def test_a_saved_account_keeps_its_schedule_and_applies_a_split_once_across_kills(paper_exchange_factory, tmp_path):
    state = tmp_path / "exchange.db"
    first = paper_exchange_factory(start="2026-11-23T20:50:00Z", speed=60, state=state)
    buy(first, "F", 10, "f-1")
    assert schedule(first, symbol="F", type="reverse_split", ex_date=TUESDAY, new_rate=1, old_rate=3).ok
    assert schedule(first, symbol="F", type="cash_dividend", ex_date="2026-11-25", rate=0.30).ok
    first.set_clock(TUESDAY_AFTER_OPEN, speed=0)
    assert first.state()["positions"]["F"]["qty"] == "3.333333333"
    cash = float(first.state()["cash"])
    first.kill()

    second = paper_exchange_factory(start=None, speed=0, state=state)
    assert second.state()["positions"]["F"]["qty"] == "3.333333333"  # applied once, not again
    assert [a["applied_at"] for a in second.state()["corporate_actions"]] == ["2026-11-24T14:30:00Z", None]
    second.set_clock("2026-11-25T15:00:00Z")
    assert float(second.state()["cash"]) == pytest.approx(cash + 1.00, abs=0.001)  # 3.333333333 x $0.30


def test_a_bad_start_option_ends_in_one_line_and_status_2():
    import subprocess
    import sys

    from tests.fixtures.exchange import REPO_ROOT

    done = subprocess.run([sys.executable, "-m", "paper_exchange", "--port", "0", "--stream-port", "0",
                           "--start", MONDAY_OPEN, "--corporate-action", "NVDA,forward_split,2026-11-26,10:1"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().endswith("ex_date must be a trading day (YYYY-MM-DD), got '2026-11-26'")
    assert done.stderr.count("\n") == 1
