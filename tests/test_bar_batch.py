"""The stream writes one stocks.db transaction per minute, and every bar it received is stored."""
from __future__ import annotations

from collections import Counter

import pytest

from database import db_manager
from database.bar_batch import MinuteBatch
from database.realtime_pull import RealtimeStreamer
from shared.config import AlpacaSettings
from tests.fixtures.exchange import wait_until

TICKERS = ("AAPL", "MSFT", "NVDA")


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def bar(ticker: str, minute: str, close: float = 10.0) -> dict:
    return {"ticker": ticker, "timestamp": minute, "open": close, "high": close, "low": close, "close": close,
            "volume": 100}


M1, M2, M3 = "2026-11-23T14:30:00Z", "2026-11-23T14:31:00Z", "2026-11-23T14:32:00Z"


def test_a_minute_is_written_once_every_wanted_ticker_has_its_bar():
    batch = MinuteBatch(monotonic=FakeTime())

    assert batch.add(bar("AAPL", M1), TICKERS) == []
    assert batch.add(bar("MSFT", M1), TICKERS) == []
    ready = batch.add(bar("NVDA", M1), TICKERS)

    assert [(r["ticker"], r["timestamp"]) for r in ready] == [("AAPL", M1), ("MSFT", M1), ("NVDA", M1)]
    assert len(batch) == 0 and batch.seconds_left() is None


def test_a_ticker_without_a_bar_holds_the_minute_only_until_max_wait():
    clock = FakeTime()
    batch = MinuteBatch(max_wait=1.0, monotonic=clock)
    batch.add(bar("AAPL", M1), TICKERS)
    batch.add(bar("MSFT", M1), TICKERS)

    clock.now += 0.9
    assert batch.due() == [] and batch.seconds_left() == pytest.approx(0.1)
    clock.now += 0.1
    assert [r["ticker"] for r in batch.due()] == ["AAPL", "MSFT"]


def test_the_next_minute_closes_an_incomplete_one():
    batch = MinuteBatch(monotonic=FakeTime())
    batch.add(bar("AAPL", M1), TICKERS)

    ready = batch.add(bar("AAPL", M2), TICKERS)

    assert [(r["ticker"], r["timestamp"]) for r in ready] == [("AAPL", M1)]
    assert len(batch) == 1


def test_a_correction_rides_with_the_next_minute_and_replaces_the_first_bar():
    clock = FakeTime()
    batch = MinuteBatch(max_wait=1.0, max_hold=65.0, monotonic=clock)
    assert len(batch.add(bar("AAPL", M1, 10.0), ["AAPL"])) == 1  # written at once
    clock.now += 30
    assert batch.add(bar("AAPL", M1, 10.5), ["AAPL"], updated=True) == []
    clock.now += 10
    assert batch.add(bar("AAPL", M1, 10.7), ["AAPL"], updated=True) == []
    assert batch.due() == []

    clock.now += 20
    ready = batch.add(bar("AAPL", M2, 11.0), ["AAPL"])

    assert [(r["timestamp"], r["close"]) for r in ready] == [(M1, 10.7), (M2, 11.0)]


def test_a_bar_of_a_new_minute_never_waits_for_a_held_correction():
    clock = FakeTime()
    batch = MinuteBatch(max_wait=1.0, max_hold=65.0, monotonic=clock)
    batch.add(bar("AAPL", M1, 10.5), TICKERS, updated=True)
    batch.add(bar("AAPL", M2, 11.0), TICKERS)

    clock.now += 1.0

    assert [(r["timestamp"], r["close"]) for r in batch.due()] == [(M1, 10.5), (M2, 11.0)]


def test_a_lone_correction_is_written_after_max_hold():
    clock = FakeTime()
    batch = MinuteBatch(max_hold=65.0, monotonic=clock)
    batch.add(bar("AAPL", M1, 10.5), TICKERS, updated=True)

    clock.now += 64
    assert batch.due() == []
    clock.now += 1
    assert [r["close"] for r in batch.due()] == [10.5]


# --- the streamer against the paper exchange ---------------------------------------------------

@pytest.fixture
def commits(monkeypatch):
    """Every stocks.db write transaction of the streamer: the (ticker, minute) rows it held."""
    seen: list[list[tuple[str, str]]] = []
    real = db_manager.upsert_bars

    def recording(conn, bars):
        bars = list(bars)
        seen.append([(b["ticker"], b["timestamp"]) for b in bars])
        return real(conn, bars)

    monkeypatch.setattr(db_manager, "upsert_bars", recording)
    return seen


def test_the_stream_stores_each_minute_of_three_tickers_in_one_commit(paper_exchange_factory, stocks_db, market,
                                                                    commits):
    exchange = paper_exchange_factory(start="2026-11-23T14:35:00Z", speed=60)
    streamer = RealtimeStreamer(AlpacaSettings.from_env(exchange.env), stocks_db,
                                is_market_open=lambda: True)
    for ticker in TICKERS:
        streamer.subscribe(ticker)
    streamer.start()
    try:
        wait_until(lambda: sum(len(c) for c in commits) >= 5 * len(TICKERS), timeout=90, interval=0.1,
                   message="five minutes of bars")
    finally:
        streamer.stop()

    stored = {t: db_manager.count_bars(market, t) for t in TICKERS}
    received = [row for commit in commits for row in commit]
    assert sum(stored.values()) == len(received) == streamer.bars_written
    assert Counter(t for t, _ in received) == Counter(stored)
    minutes_per_commit = [{minute for _, minute in commit} for commit in commits]
    full = [c for c in commits if len(c) == len(TICKERS)]
    assert len(full) >= 4
    assert all(len(m) == 1 for m in minutes_per_commit)  # never two minutes in one write, never one minute split
    assert len({m for (m,) in minutes_per_commit}) == len(commits)
