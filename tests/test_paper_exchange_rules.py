"""Alpaca's account rules on the paper exchange, on by default: wash-trade protection, the
trading API's request budget, and market orders that take a few hundred milliseconds to fill."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderStatus

from tests.fixtures.exchange import market_order, trading_client, wait_for_status

WASH = {"code": 40310000, "message": "potential wash trade detected. use complex orders"}


@pytest.fixture
def exchange(paper_exchange_factory):
    return paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=1)


@pytest.fixture
def client(exchange):
    return trading_client(exchange)


def _order_ids(exchange) -> list[str]:
    return [o["client_order_id"] for o in exchange.state()["orders"]]


def test_a_sell_while_a_buy_of_the_same_symbol_is_open_is_refused_as_a_wash_trade(client, exchange):
    client.submit_order(market_order("AAPL", 10, "buy", "owned"))
    wait_for_status(client, "owned", {OrderStatus.FILLED})
    exchange.control(fill_delay_seconds=30)
    client.submit_order(market_order("AAPL", 3, "buy", "open-buy"))
    response = requests.post(f"{exchange.base_url}/v2/orders", headers=exchange.headers, timeout=30,
                             json={"symbol": "AAPL", "qty": "2", "side": "sell", "type": "market",
                                   "time_in_force": "day", "client_order_id": "washing"})
    assert (response.status_code, response.json()) == (403, WASH)
    assert "washing" not in _order_ids(exchange)
    client.submit_order(market_order("AAPL", 1, "buy", "same-side"))  # same side is fine
    client.submit_order(market_order("MSFT", 1, "buy", "other-symbol"))


def test_a_buy_while_a_sell_is_open_is_refused_and_the_rule_can_be_switched_off(client, exchange):
    client.submit_order(market_order("NVDA", 5, "buy", "own-nvda"))
    wait_for_status(client, "own-nvda", {OrderStatus.FILLED})
    exchange.control(fill_delay_seconds=30)
    client.submit_order(market_order("NVDA", 5, "sell", "open-sell"))
    with pytest.raises(APIError) as caught:
        client.submit_order(market_order("NVDA", 1, "buy", "washing-buy"))
    assert (caught.value.status_code, caught.value.code) == (403, 40310000)
    exchange.control(wash_trade_rejection=False)
    assert client.submit_order(market_order("NVDA", 1, "buy", "allowed-buy")).client_order_id == "allowed-buy"


def test_once_the_opposite_order_is_final_the_other_side_is_accepted(client, exchange):
    client.submit_order(market_order("KO", 4, "buy", "ko-buy"))
    wait_for_status(client, "ko-buy", {OrderStatus.FILLED})
    assert client.submit_order(market_order("KO", 4, "sell", "ko-sell")).client_order_id == "ko-sell"


def test_every_trading_answer_carries_the_rate_limit_headers(exchange):
    first = requests.get(f"{exchange.base_url}/v2/account", headers=exchange.headers, timeout=30)
    second = requests.get(f"{exchange.base_url}/v2/clock", headers=exchange.headers, timeout=30)
    assert first.headers["X-Ratelimit-Limit"] == "200"
    assert int(first.headers["X-Ratelimit-Remaining"]) - 1 == int(second.headers["X-Ratelimit-Remaining"])
    assert time.time() < int(first.headers["X-Ratelimit-Reset"]) <= time.time() + 61
    missing = requests.get(f"{exchange.base_url}/v2/orders/nope", headers=exchange.headers, timeout=30)
    assert missing.status_code == 404 and "X-Ratelimit-Remaining" in missing.headers


def test_past_the_budget_requests_are_429_and_an_order_then_books_nothing(exchange):
    exchange.control(rate_limit_per_minute=3)
    answers = [requests.get(f"{exchange.base_url}/v2/clock", headers=exchange.headers, timeout=30) for _ in range(3)]
    assert [a.headers["X-Ratelimit-Remaining"] for a in answers] == ["2", "1", "0"]
    refused = requests.post(f"{exchange.base_url}/v2/orders", headers=exchange.headers, timeout=30,
                            json={"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market",
                                  "time_in_force": "day", "client_order_id": "over-budget"})
    assert (refused.status_code, refused.json()) == (429, {"code": 42910000, "message": "rate limit exceeded"})
    assert refused.headers["X-Ratelimit-Remaining"] == "0"
    assert "over-budget" not in _order_ids(exchange)
    assert exchange.state()["cash"] == "100000.00"
    exchange.control(rate_limit_per_minute=0)  # off: no budget, no headers
    free = requests.get(f"{exchange.base_url}/v2/clock", headers=exchange.headers, timeout=30)
    assert free.status_code == 200 and "X-Ratelimit-Limit" not in free.headers


def test_a_market_order_is_not_filled_at_once_but_within_a_second(client, exchange):
    assert exchange.state()["controls"]["fill_delay_seconds"] == pytest.approx(0.3)
    submitted = client.submit_order(market_order("SPY", 1, "buy", "latency"))
    assert submitted.status in (OrderStatus.ACCEPTED, OrderStatus.NEW)
    started = time.monotonic()
    filled = wait_for_status(client, "latency", {OrderStatus.FILLED}, timeout=10)
    assert Decimal(filled.filled_qty) == 1 and time.monotonic() - started < 5
