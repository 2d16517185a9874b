"""The paper exchange remembers its account across SIGKILL: cash, positions, orders, fills, clock."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderStatus

from tests.fixtures.exchange import market_order, trading_client, wait_for_status

MONDAY_OPEN = "2026-11-23T14:30:00Z"


def _clock_now(exchange) -> datetime:
    body = requests.get(f"{exchange.base_url}/v2/clock", headers=exchange.headers, timeout=10).json()
    return datetime.fromisoformat(body["timestamp"])


def test_a_killed_exchange_comes_back_with_the_same_account(paper_exchange_factory, tmp_path):
    state = tmp_path / "exchange.db"
    first = paper_exchange_factory(start=MONDAY_OPEN, speed=60, state=state)
    client = trading_client(first)
    client.submit_order(market_order("NVDA", 21, "buy", "card-1-buy"))
    client.submit_order(market_order("AAPL", 5, "buy", "card-2-buy"))
    wait_for_status(client, "card-1-buy", {OrderStatus.FILLED})
    wait_for_status(client, "card-2-buy", {OrderStatus.FILLED})
    before = first.state()
    seen = _clock_now(first)
    first.kill()

    # a later --start is ignored: the saved account and its clock win
    second = paper_exchange_factory(start="2026-11-20T14:30:00Z", speed=60, state=state)
    after = second.state()
    assert after["cash"] == before["cash"] != "100000.00"
    assert {s: p["qty"] for s, p in after["positions"].items()} == {"NVDA": 21, "AAPL": 5}
    assert [(o["client_order_id"], o["status"], o["filled_qty"], o["filled_avg_price"]) for o in after["orders"]] == \
        [(o["client_order_id"], o["status"], o["filled_qty"], o["filled_avg_price"]) for o in before["orders"]]
    assert _clock_now(second) >= seen
    assert "--start is ignored" in second.log()

    client = trading_client(second)
    assert Decimal(client.get_open_position("NVDA").qty) == 21
    with pytest.raises(APIError) as duplicate:  # the same client order id is still taken
        client.submit_order(market_order("NVDA", 1, "buy", "card-1-buy"))
    assert duplicate.value.status_code == 422
    client.submit_order(market_order("NVDA", 21, "sell", "card-1-sell"))
    wait_for_status(client, "card-1-sell", {OrderStatus.FILLED})
    assert "NVDA" not in second.state()["positions"]


def test_an_order_queued_before_the_kill_fills_after_the_restart(paper_exchange_factory, tmp_path):
    state = tmp_path / "exchange.db"
    # Sunday evening: the market is closed, so the order waits for Monday's open
    first = paper_exchange_factory(start="2026-11-22T23:00:00Z", speed=0, state=state)
    trading_client(first).submit_order(market_order("TSLA", 3, "buy", "queued"))
    assert first.state()["orders"][0]["status"] == "accepted"
    first.kill()

    second = paper_exchange_factory(speed=0, state=state)
    assert second.state()["orders"][0]["status"] == "accepted"
    second.set_clock(MONDAY_OPEN, speed=60)
    filled = wait_for_status(trading_client(second), "queued", {OrderStatus.FILLED})
    assert filled.filled_at.astimezone(timezone.utc) >= datetime(2026, 11, 23, 14, 30, tzinfo=timezone.utc)
    assert second.state()["positions"]["TSLA"]["qty"] == 3


def test_every_fill_is_written_once_to_the_state_file(paper_exchange_factory, tmp_path):
    state = tmp_path / "exchange.db"
    exchange = paper_exchange_factory(start=MONDAY_OPEN, speed=60, state=state)
    client = trading_client(exchange)
    for n in range(3):
        client.submit_order(market_order("KO", 2, "buy", f"ko-{n}"))
        wait_for_status(client, f"ko-{n}", {OrderStatus.FILLED})
    exchange.kill()
    with sqlite3.connect(state) as conn:
        fills = conn.execute("SELECT symbol, side, qty FROM fills ORDER BY seq").fetchall()
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert fills == [("KO", "buy", 2)] * 3
    assert journal == "wal"


def test_reset_starts_a_fresh_account_on_purpose(paper_exchange_factory, tmp_path):
    state = tmp_path / "exchange.db"
    first = paper_exchange_factory(start=MONDAY_OPEN, speed=60, state=state)
    client = trading_client(first)
    client.submit_order(market_order("F", 10, "buy", "f-1"))
    wait_for_status(client, "f-1", {OrderStatus.FILLED})
    first.stop()

    fresh = paper_exchange_factory(start=MONDAY_OPEN, speed=60, state=state, reset=True)
    assert fresh.state()["cash"] == "100000.00"
    assert fresh.state()["positions"] == {} and fresh.state()["orders"] == []
    assert fresh.state()["clock"]["now"].startswith("2026-11-23T14:3")


def test_at_real_speed_the_clock_resumes_from_now(paper_exchange_factory, tmp_path):
    """A story about the computer's clock: a real-speed account saved long ago (the earliest start
    the exchange takes, so "now" is later whenever the test runs) resumes at the computer's now."""
    state = tmp_path / "exchange.db"
    first = paper_exchange_factory(start="2015-01-05T15:00:00Z", speed=1, state=state)
    first.stop()
    second = paper_exchange_factory(speed=1, state=state)
    assert abs((_clock_now(second) - datetime.now(timezone.utc)).total_seconds()) < 30


def test_a_stopped_exchange_resumes_where_its_clock_stood(paper_exchange_factory, tmp_path):
    state = tmp_path / "exchange.db"
    first = paper_exchange_factory(start=MONDAY_OPEN, speed=0, state=state)
    first.set_clock("2026-11-24T16:00:00Z")
    first.stop()
    second = paper_exchange_factory(speed=0, state=state)
    assert second.state()["clock"]["now"].startswith("2026-11-24T16:00:00")
