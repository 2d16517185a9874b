"""Cash free for new cards: broker cash minus running cards' uninvested cash; 503 alone when the broker is down."""
from __future__ import annotations

import pytest

from database import db_manager
from orchestra.alpaca_wrapper import AlpacaWrapper
from shared.config import AlpacaSettings
from system_databse import system_db_manager
from tests.fixtures.api import auth, get_token


def test_cash_with_an_invested_card_a_profitable_card_and_an_idle_one(api_client, ledger):
    invested = system_db_manager.create_algorithm("NVDA", "sma_crossover", 10_000, conn=ledger)
    system_db_manager.record_buy(invested, 50, 100.0, conn=ledger)        # reserves 5,000
    profitable = system_db_manager.create_algorithm("AAPL", "sma_crossover", 20_000, conn=ledger)
    system_db_manager.record_buy(profitable, 100, 50.0, conn=ledger)
    system_db_manager.record_sell(profitable, 100, 60.0, conn=ledger)     # reserves 21,000
    system_db_manager.create_algorithm("TSLA", "sma_crossover", 3_000, conn=ledger)  # reserves 3,000
    stopped = system_db_manager.create_algorithm("AMD", "sma_crossover", 50_000, conn=ledger)
    system_db_manager.stop_algorithm(stopped, conn=ledger)                 # reserves nothing

    response = api_client.get("/api/account/cash")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["alpaca_cash"], body["reserved"], body["available_cash"]) == (100_000.0, 29_000.0, 71_000.0)
    assert body["as_of"] == "2026-11-23T15:00:00Z"


def test_broker_cash_is_cached_briefly_then_read_again(api_factory, paper_exchange_factory, api_clock):
    exchange = paper_exchange_factory(cash=50_000)
    client = api_factory(exchange).test_client()
    assert client.get("/api/account/cash").get_json()["alpaca_cash"] == 50_000.0

    trader = AlpacaWrapper(AlpacaSettings.from_env(exchange.env))
    price = trader.place_market_buy("AAPL", 10)
    spent = round(10 * price, 2)
    api_clock.advance(9)
    assert client.get("/api/account/cash").get_json()["alpaca_cash"] == 50_000.0
    api_clock.advance(1)
    fresh = client.get("/api/account/cash").get_json()
    assert fresh["alpaca_cash"] == pytest.approx(50_000.0 - spent, abs=0.01)
    assert fresh["as_of"] == "2026-11-23T15:00:10Z"


def test_a_broker_error_is_a_503_and_the_next_read_recovers(api_factory, paper_exchange_factory, api_clock):
    exchange = paper_exchange_factory(cash=100_000)
    client = api_factory(exchange).test_client()
    exchange.control(fail_requests=1)
    failed = client.get("/api/account/cash")
    assert failed.status_code == 503
    assert "500" in failed.get_json()["error"] and "cash cannot be computed" in failed.get_json()["error"]
    recovered = client.get("/api/account/cash")
    assert recovered.status_code == 200
    assert recovered.get_json()["alpaca_cash"] == 100_000.0


def test_broker_down_only_cash_fails_and_the_rest_keeps_working(offline_client, ledger, market):
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1_000, conn=ledger)
    db_manager.upsert_bars(market, [{"ticker": "NVDA", "timestamp": "2026-11-23T14:30:00Z", "open": 1, "high": 1,
                                     "low": 1, "close": 1, "volume": 1}])
    cash = offline_client.get("/api/account/cash")
    assert cash.status_code == 503
    assert "unreachable" in cash.get_json()["error"]
    for url in ("/api/algorithms", f"/api/algorithms/{algo_id}", f"/api/algorithms/{algo_id}/history",
                "/api/available-algorithms", "/api/health", "/api/openapi.json"):
        assert offline_client.get(url).status_code == 200, url
    token = get_token(offline_client, "stop")
    assert offline_client.delete(f"/api/algorithms/{algo_id}", headers=auth(token)).status_code == 200


def test_missing_broker_keys_are_a_503_naming_the_setting(api_factory):
    response = api_factory(None).test_client().get("/api/account/cash")
    assert response.status_code == 503
    assert "ALPACA_API_KEY is not set" in response.get_json()["error"]
