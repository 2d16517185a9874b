"""Historical minute bars through alpaca-py's StockHistoricalDataClient and the raw endpoints."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import exchange_calendars
import pandas as pd
import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame

UTC = timezone.utc
NOW = "2026-11-30T15:00:00Z"  # Monday after Thanksgiving week, 10:00 New York


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    from tests.fixtures.exchange import start_paper_exchange
    handle = start_paper_exchange(tmp_path_factory.mktemp("bars"), start=NOW, speed=0, seed=11)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def client(exchange):
    return StockHistoricalDataClient(exchange.key, exchange.secret, url_override=exchange.base_url)


def get_bars(client, symbols, start, end=None, **extra):
    request = StockBarsRequest(symbol_or_symbols=symbols, timeframe=TimeFrame.Minute, start=start, end=end,
                               feed=DataFeed.IEX, **extra)
    return client.get_stock_bars(request).data


def raw(exchange, path, **params):
    return requests.get(f"{exchange.base_url}{path}", params=params, headers=exchange.headers, timeout=60)


def test_a_week_of_bars_has_every_nyse_minute_including_the_early_close(client):
    bars = get_bars(client, "AAPL", datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC))["AAPL"]
    per_day = Counter(b.timestamp.astimezone(UTC).strftime("%Y-%m-%d") for b in bars)
    assert per_day == {"2026-11-23": 390, "2026-11-24": 390, "2026-11-25": 390, "2026-11-27": 210}
    nyse = exchange_calendars.get_calendar("XNYS", start="2026-11-01", end="2026-12-31")
    expected = nyse.minutes_in_range(pd.Timestamp("2026-11-23", tz=UTC), pd.Timestamp("2026-11-28", tz=UTC))
    assert [pd.Timestamp(b.timestamp) for b in bars] == list(expected)
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)
    assert all(b.volume > 0 and b.trade_count > 0 and b.low <= b.vwap <= b.high for b in bars)


def test_bars_stop_at_the_last_complete_minute_of_the_simulated_now(client):
    bars = get_bars(client, "SPY", datetime(2026, 11, 30, 14, 0, tzinfo=UTC), datetime(2026, 12, 5, tzinfo=UTC))["SPY"]
    assert bars[0].timestamp == datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
    assert bars[-1].timestamp == datetime(2026, 11, 30, 14, 59, tzinfo=UTC)
    assert len(bars) == 30


def test_sdk_follows_pagination_over_many_symbols_and_days(client):
    symbols = ["AAPL", "MSFT", "NVDA", "TSLA", "SPY", "QQQ"]
    data = get_bars(client, symbols, datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC))
    # 9 sessions (one early close): 8 * 390 + 210 bars each, 20,040 in all: three pages of 10,000
    assert {s: len(data[s]) for s in symbols} == {s: 8 * 390 + 210 for s in symbols}
    for symbol in symbols:
        stamps = [b.timestamp for b in data[symbol]]
        assert stamps == sorted(set(stamps))


def test_raw_pages_join_up_to_the_single_request_result(exchange):
    params = dict(symbols="AAPL,MSFT", timeframe="1Min", start="2026-11-24T14:30:00Z", end="2026-11-24T16:00:00Z",
                  feed="iex")
    whole = raw(exchange, "/v2/stocks/bars", **params).json()
    assert whole["next_page_token"] is None
    pages, token = [], None
    while True:
        body = raw(exchange, "/v2/stocks/bars", limit=37, **params, **({"page_token": token} if token else {})).json()
        pages.append(body)
        token = body["next_page_token"]
        if token is None:
            break
    joined: dict[str, list] = {}
    for page in pages:
        assert sum(len(v) for v in page["bars"].values()) <= 37
        for symbol, bars in page["bars"].items():
            joined.setdefault(symbol, []).extend(bars)
    assert joined == whole["bars"]
    assert len(whole["bars"]["AAPL"]) == 91  # 14:30 .. 16:00 inclusive
    assert len(pages) == 5  # 182 bars / 37


def test_single_symbol_endpoint_has_alpacas_shape(exchange):
    body = raw(exchange, "/v2/stocks/AAPL/bars", timeframe="1Min", start="2026-11-24T14:30:00Z",
               end="2026-11-24T14:31:00Z").json()
    assert body["symbol"] == "AAPL" and body["next_page_token"] is None
    assert [b["t"] for b in body["bars"]] == ["2026-11-24T14:30:00Z", "2026-11-24T14:31:00Z"]
    assert set(body["bars"][0]) == {"t", "o", "h", "l", "c", "v", "n", "vw"}


def test_a_well_formed_symbol_without_data_gives_no_bars(client):
    assert get_bars(client, "ZZZZ", datetime(2026, 11, 24, tzinfo=UTC)) == {}


@pytest.mark.parametrize("params, status, message", [
    ({"symbols": "AAPL", "timeframe": "1Min", "start": "2026-11-25T00:00:00Z", "end": "2026-11-24T00:00:00Z"},
     422, "end should not be before start"),
    ({"symbols": "AAPL,bad$", "timeframe": "1Min"}, 400, "invalid symbol: bad$"),
    ({"symbols": "AAPL", "timeframe": "1Min", "feed": "nasdaq"}, 400, "invalid feed: nasdaq"),
    ({"symbols": "AAPL", "timeframe": "1Min", "start": "yesterday"}, 400, "invalid start: yesterday"),
    ({"symbols": "AAPL", "timeframe": "1Min", "limit": "0"}, 400, "invalid limit: 0 (1 to 10000)"),
    ({"symbols": "AAPL"}, 400, "missing timeframe"),
])
def test_bad_requests_are_refused_with_a_message(exchange, params, status, message):
    response = raw(exchange, "/v2/stocks/bars", **params)
    assert response.status_code == status
    assert response.json()["message"].startswith(message)


def test_wrong_keys_are_403_for_market_data(exchange):
    client = StockHistoricalDataClient("test-key", "nope", url_override=exchange.base_url)
    with pytest.raises(APIError) as caught:
        get_bars(client, "AAPL", datetime(2026, 11, 24, tzinfo=UTC))
    assert caught.value.status_code == 403


def test_same_seed_same_bars_other_seed_other_bars(exchange, paper_exchange_factory):
    twin = paper_exchange_factory(start=NOW, speed=0, seed=11)
    other = paper_exchange_factory(start=NOW, speed=0, seed=12)
    params = dict(symbols="AAPL,TSLA", timeframe="1Min", start="2026-11-20T00:00:00Z", end="2026-11-25T00:00:00Z")
    mine, twins, others = (raw(e, "/v2/stocks/bars", **params).json() for e in (exchange, twin, other))
    assert mine == twins
    assert mine["bars"]["AAPL"][0]["t"] == others["bars"]["AAPL"][0]["t"]
    assert mine["bars"]["AAPL"] != others["bars"]["AAPL"]


def test_descending_sort_pages_from_the_newest_bar(exchange):
    params = dict(timeframe="1Min", start="2026-11-24T14:30:00Z", end="2026-11-24T14:39:00Z", sort="desc")
    first = raw(exchange, "/v2/stocks/AAPL/bars", limit=6, **params).json()
    rest = raw(exchange, "/v2/stocks/AAPL/bars", limit=6, page_token=first["next_page_token"], **params).json()
    stamps = [b["t"] for b in first["bars"] + rest["bars"]]
    assert stamps == [f"2026-11-24T14:{m:02d}:00Z" for m in range(39, 29, -1)]
    assert rest["next_page_token"] is None
