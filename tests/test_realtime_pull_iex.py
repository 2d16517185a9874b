"""The streamer on a thin IEX ticker: it stores exactly the bars the feed has (corrections
included), stays on one connection through minutes without trades, waits out a lingering
connection after a drop, and reports the tickers the feed refuses for its symbol limit."""
from __future__ import annotations

import pytest
import requests

from database import db_manager
from database.realtime_pull import RealtimeStreamer
from shared.config import AlpacaSettings
from tests.fixtures.exchange import wait_until

pytestmark = pytest.mark.slow(26)

START = "2026-11-23T15:00:00Z"


def rest_bars(exchange, symbol, start, end, feed="iex") -> list[dict]:
    body = requests.get(f"{exchange.base_url}/v2/stocks/{symbol}/bars", headers=exchange.headers, timeout=30,
                        params={"timeframe": "1Min", "start": start, "end": end, "feed": feed, "limit": 10000}).json()
    return body["bars"]


def stored(market, ticker, start, end) -> list[dict]:
    rows = market.execute("SELECT timestamp, open, high, low, close, volume, trade_count, vwap FROM bars"
                          " WHERE ticker = ? AND timestamp BETWEEN ? AND ? ORDER BY timestamp",
                          (ticker, start, end)).fetchall()
    return [{"t": r[0], "o": r[1], "h": r[2], "l": r[3], "c": r[4], "v": r[5], "n": r[6], "vw": r[7]} for r in rows]


def streamer_on(exchange, stocks_db, **options) -> RealtimeStreamer:
    options.setdefault("is_market_open", lambda: True)
    return RealtimeStreamer(AlpacaSettings.from_env(exchange.env), stocks_db, backoff_base=0.2, backoff_max=1.0,
                            **options)


def test_a_thin_ticker_stores_exactly_the_feeds_bars_and_corrections_without_reconnecting(
        paper_exchange_factory, stocks_db, market):
    exchange = paper_exchange_factory(start=START, speed=240, thin_symbols="KO:0.4:0.3")  # a minute: 0.25 s
    streamer = streamer_on(exchange, stocks_db, silence_timeout=0.15)  # far shorter than a minute without trades
    streamer.subscribe("KO")
    streamer.start()
    try:
        wait_until(lambda: db_manager.count_bars(market, "KO") >= 25, timeout=120, message="25 KO bars")
        streamer.unsubscribe("KO")
        wait_until(lambda: exchange.state()["stream"]["connections"][0]["subscriptions"]["bars"] == [],
                   message="the unsubscribe")
        exchange.set_clock(speed=0)
        assert streamer.reconnects == 0 and streamer.connected
        assert {h["connection"] for h in exchange.state()["stream"]["history"]} == {1}  # one connection throughout
    finally:
        streamer.stop()
    rows = stored(market, "KO", "2026-11-23T00:00:00Z", "2026-11-23T23:59:00Z")
    first, last = rows[0]["t"], rows[-2]["t"]  # the newest bar's correction may not have been due yet
    source = rest_bars(exchange, "KO", first, last)
    every_minute = rest_bars(exchange, "KO", first, last, feed="sip")
    assert rows[:-1] == source  # exactly the feed's bars, with every correction that was sent
    assert len(source) < 0.8 * len(every_minute)  # many minutes had no trade and no bar
    corrected = {b["t"] for b in source} & {b["t"] for b in every_minute if b not in source}
    assert len(corrected) >= 3


def test_after_a_drop_the_streamer_waits_out_the_lingering_connection(paper_exchange_factory, stocks_db, market):
    exchange = paper_exchange_factory(start=START, speed=240, stream_linger_seconds=2)
    reconnected = []
    streamer = streamer_on(exchange, stocks_db, on_reconnect=lambda: reconnected.append(1))
    streamer.subscribe("AAPL")
    streamer.start()
    try:
        wait_until(lambda: db_manager.count_bars(market, "AAPL") >= 2, message="bars before the drop")
        exchange.control(drop_streams=True)
        wait_until(lambda: streamer.reconnects == 1 and reconnected, timeout=60, message="one reconnect")
        before = db_manager.get_last_timestamp(market, "AAPL")
        wait_until(lambda: db_manager.get_last_timestamp(market, "AAPL") > before, message="bars again")
        assert len([c for c in exchange.state()["stream"]["connections"] if c["authenticated"]]) == 1
    finally:
        streamer.stop()


def test_tickers_beyond_the_feeds_symbol_limit_are_reported_as_refused(paper_exchange_factory, stocks_db, market):
    exchange = paper_exchange_factory(start=START, speed=240, stream_symbol_limit=2)
    streamer = streamer_on(exchange, stocks_db)
    streamer.subscribe("AAPL")
    streamer.subscribe("MSFT")
    streamer.start()
    try:
        wait_until(lambda: db_manager.count_bars(market, "MSFT") >= 1, message="bars of the first two")
        streamer.subscribe("NVDA")
        wait_until(lambda: streamer.refused, message="the refusal")
        assert streamer.refused == {"NVDA"} and streamer.symbol_limit == 2
        assert exchange.state()["stream"]["connections"][0]["subscriptions"]["bars"] == ["AAPL", "MSFT"]
        before = db_manager.get_last_timestamp(market, "MSFT")
        wait_until(lambda: db_manager.get_last_timestamp(market, "MSFT") > before, message="the others go on")
        streamer.unsubscribe("MSFT")  # a slot is free: the refused ticker is tried again
        wait_until(lambda: db_manager.count_bars(market, "NVDA") >= 1, message="NVDA bars")
        assert streamer.refused == frozenset() and streamer.reconnects == 0
    finally:
        streamer.stop()
