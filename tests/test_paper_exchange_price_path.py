"""The paper exchange's scripted prices (``price_path``): bars, fills and positions follow the
script from its first moment on, the model's prices stay before it and come back when it is
cleared, and a bad script is refused without changing anything."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
import requests
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.enums import OrderStatus

from tests.fixtures.exchange import market_order, trading_client, wait_for_status

UTC = timezone.utc


@pytest.fixture
def exchange(paper_exchange_factory):
    return paper_exchange_factory(start="2026-11-23T15:20:00Z", speed=0)


def closes(exchange, symbol: str, start: str, end: str) -> dict:
    client = StockHistoricalDataClient(exchange.key, exchange.secret, url_override=exchange.base_url)
    bars = client.get_stock_bars(StockBarsRequest(symbol_or_symbols=symbol, timeframe=TimeFrame.Minute,
                                                  start=datetime.fromisoformat(start), end=datetime.fromisoformat(end)))
    return {b.timestamp.strftime("%H:%M"): b.close for b in bars.data.get(symbol, [])}


def test_a_crash_scripted_from_15_10_shows_in_the_bars_and_the_fills(exchange):
    model = closes(exchange, "AAPL", "2026-11-23T15:05:00+00:00", "2026-11-23T15:20:00+00:00")
    answer = exchange.control(price_path={"symbol": "AAPL", "points": [["2026-11-23T15:10:00Z", 100.0],
                                                                       ["2026-11-23T15:14:00Z", 80.0]]})
    assert answer["price_path"] == {"symbol": "AAPL", "points": 2}
    scripted = closes(exchange, "AAPL", "2026-11-23T15:05:00+00:00", "2026-11-23T15:20:00+00:00")
    assert [scripted[m] for m in ("15:05", "15:09")] == [model["15:05"], model["15:09"]]  # before: the model's
    assert [scripted[m] for m in ("15:10", "15:11", "15:12", "15:13", "15:14", "15:19")] == [
        100.0, 95.0, 90.0, 85.0, 80.0, 80.0]                                                # then the script, flat after
    client = trading_client(exchange)
    client.submit_order(market_order("AAPL", 10, "buy", "into-the-crash"))
    filled = wait_for_status(client, "into-the-crash", {OrderStatus.FILLED})
    assert Decimal(filled.filled_avg_price) == Decimal("80.00")
    assert exchange.state()["price_paths"] == {"AAPL": [["2026-11-23T15:10:00Z", 100.0], ["2026-11-23T15:14:00Z", 80.0]]}

    exchange.control(price_path={"symbol": "AAPL", "points": []})
    assert closes(exchange, "AAPL", "2026-11-23T15:05:00+00:00", "2026-11-23T15:20:00+00:00") == model
    assert exchange.state()["price_paths"] == {}


@pytest.mark.parametrize("path, message", [
    ({"symbol": "ZZZZ", "points": [["2026-11-23T15:10:00Z", 100.0]]}, "not a tradable symbol"),
    ({"symbol": "AAPL", "points": [["2026-11-23T15:10:00Z", 100.0], ["2026-11-23T15:09:00Z", 90.0]]}, "must increase"),
    ({"symbol": "AAPL", "points": [["2026-11-23T15:10:00Z", 0]]}, "price_path price must be a number"),
    ({"symbol": "AAPL", "points": [["yesterday", 10.0]]}, "must be a UTC timestamp"),
    ({"symbol": "AAPL"}, 'must be an object with "symbol" and "points"'),
])
def test_a_bad_script_is_refused_and_changes_nothing(untraded_exchange, path, message):
    response = requests.post(f"{untraded_exchange.base_url}/_sim/control", timeout=30,
                             json={"price_path": path, "fill_delay_seconds": 5})
    assert response.status_code == 400 and message in response.json()["error"]
    assert untraded_exchange.state()["price_paths"] == {}
    assert untraded_exchange.state()["controls"]["fill_delay_seconds"] != 5
