"""stocks.db: NYSE minutes from the exchange calendar, idempotent bars, windows, prices and gaps."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from database import db_manager, market_calendar
from database.create_stocks_db import create_stocks_db, main as create_main


def bar(ticker, ts, close, **extra):
    return {"ticker": ticker, "timestamp": ts, "open": close - 0.5, "high": close + 1, "low": close - 1,
            "close": close, "volume": 1000, **extra}


def minutes_of(market, day):
    return db_manager.get_market_minutes(market, f"{day}T00:00:00Z", f"{day}T23:59:59Z")


# --------------------------------------------------------------------------- the calendar


def test_every_regular_session_minute_2018_to_2030_is_stored(market):
    count = market.execute("SELECT COUNT(*) FROM timestamps").fetchone()[0]
    assert count == len(market_calendar.all_minutes()) == 1_268_520
    first, last = market.execute("SELECT MIN(timestamp), MAX(timestamp) FROM timestamps").fetchone()
    assert (first, last) == ("2018-01-02T14:30:00Z", "2030-12-31T20:59:00Z")


def test_a_holiday_has_no_minutes(market):
    assert minutes_of(market, "2026-11-26") == []  # Thanksgiving
    assert minutes_of(market, "2026-12-25") == []  # Christmas
    assert minutes_of(market, "2026-11-28") == []  # a Saturday


def test_the_day_after_thanksgiving_closes_at_13_00_eastern(market):
    day = minutes_of(market, "2026-11-27")
    assert (day[0], day[-1], len(day)) == ("2026-11-27T14:30:00Z", "2026-11-27T17:59:00Z", 210)
    assert market_calendar.is_open("2026-11-27T17:59:30Z")
    assert not market_calendar.is_open("2026-11-27T18:00:00Z")


@pytest.mark.parametrize("day, first_bar", [
    ("2026-03-06", "2026-03-06T14:30:00Z"),  # Friday before DST starts: EST
    ("2026-03-09", "2026-03-09T13:30:00Z"),  # Monday after: EDT
    ("2026-10-30", "2026-10-30T13:30:00Z"),  # Friday before DST ends: EDT
    ("2026-11-02", "2026-11-02T14:30:00Z"),  # Monday after: EST
])
def test_the_0930_bar_follows_daylight_saving_time(market, day, first_bar):
    day_minutes = minutes_of(market, day)
    assert day_minutes[0] == first_bar and len(day_minutes) == 390


def test_next_open_and_close_skip_the_holiday():
    assert market_calendar.next_open("2026-11-25T21:00:00Z") == pd.Timestamp("2026-11-27T14:30:00Z")
    assert market_calendar.next_close("2026-11-27T15:00:00Z") == pd.Timestamp("2026-11-27T18:00:00Z")
    assert market_calendar.session_bounds("2026-11-26") is None


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="time zone"):
        market_calendar.is_open("2026-11-27T15:00:00")


def test_recreating_keeps_every_stored_bar(stocks_db, market):
    db_manager.upsert_bars(market, [bar("AAPL", "2026-11-27T14:30:00Z", 100.0)])
    assert create_stocks_db(stocks_db) == 0
    assert db_manager.count_bars(market, "AAPL") == 1
    assert market.execute("SELECT COUNT(*) FROM timestamps").fetchone()[0] == 1_268_520


def test_creating_from_nothing_and_the_cli(tmp_path, capsys):
    assert create_main(["--db", str(tmp_path / "stocks.db")]) == 0
    assert "1268520 market minutes added" in capsys.readouterr().out
    assert create_main(["--db", str(tmp_path / "stocks.db")]) == 0
    assert " 0 market minutes added" in capsys.readouterr().out


# --------------------------------------------------------------------------- bars


def test_a_redelivered_bar_replaces_never_duplicates(market):
    db_manager.upsert_bars(market, [bar("aapl", "2026-11-27T14:30:00Z", 100.0)])
    db_manager.upsert_bars(market, [bar("AAPL", "2026-11-27T14:30:00Z", 101.25, vwap=100.9, trade_count=12)])
    rows = market.execute("SELECT ticker, timestamp, close, vwap, trade_count FROM bars").fetchall()
    assert [tuple(r) for r in rows] == [("AAPL", "2026-11-27T14:30:00Z", 101.25, 100.9, 12)]


def test_bars_from_other_time_zones_are_stored_as_utc_bar_starts(market):
    db_manager.upsert_bars(market, [bar("AAPL", "2026-11-27T09:31:00-05:00", 100.0)])
    assert db_manager.get_last_timestamp(market, "AAPL") == "2026-11-27T14:31:00Z"


def test_a_malformed_bar_writes_nothing(market):
    good = bar("AAPL", "2026-11-27T14:30:00Z", 100.0)
    broken = {"ticker": "AAPL", "timestamp": "2026-11-27T14:31:00Z", "open": 1.0}
    with pytest.raises(ValueError, match="missing high, low, close"):
        db_manager.upsert_bars(market, [good, broken])
    assert db_manager.count_bars(market, "AAPL") == 0


def test_last_bars_window_is_oldest_first_with_a_utc_index(market):
    day = minutes_of(market, "2026-11-27")
    db_manager.upsert_bars(market, [bar("AAPL", ts, 100.0 + i) for i, ts in enumerate(day[:60])])
    db_manager.upsert_bars(market, [bar("MSFT", day[0], 999.0)])
    window = db_manager.get_last_bars(market, "AAPL", 50, until=day[54])
    assert list(window.columns) == ["open", "high", "low", "close", "volume"]
    assert len(window) == 50
    assert str(window.index.tz) == "UTC"
    assert window.index[0] == pd.Timestamp(day[5]) and window.index[-1] == pd.Timestamp(day[54])
    assert window["close"].iloc[-1] == 154.0 and window["close"].is_monotonic_increasing
    assert len(db_manager.get_last_bars(market, "AAPL", 500)) == 60
    assert db_manager.get_last_bars(market, "TSLA", 50).empty


def test_the_live_cycle_reads_the_same_last_bars_as_numpy_columns(market):
    day = minutes_of(market, "2026-11-27")
    db_manager.upsert_bars(market, [bar("AAPL", ts, 100.0 + i) for i, ts in enumerate(day[:60])])
    db_manager.upsert_bars(market, [bar("MSFT", day[0], 999.0)])
    frame = db_manager.get_last_bars(market, "AAPL", 50, until=day[54])
    arrays = db_manager.get_last_bar_arrays(market, "aapl", 50, until=day[54])
    assert arrays["timestamp"][0] == np.datetime64(day[5][:-1]) and arrays["timestamp"][-1] == np.datetime64(day[54][:-1])
    for column in ("open", "high", "low", "close", "volume"):
        assert arrays[column].tolist() == frame[column].tolist()
    assert len(db_manager.get_last_bar_arrays(market, "AAPL", 500)["close"]) == 60
    assert len(db_manager.get_last_bar_arrays(market, "AAPL", 0)["close"]) == 0
    assert len(db_manager.get_last_bar_arrays(market, "TSLA", 50)["timestamp"]) == 0


def test_bars_between_returns_the_whole_range(market):
    day = minutes_of(market, "2026-11-27")
    db_manager.upsert_bars(market, [bar("AAPL", ts, 100.0) for ts in day])
    frame = db_manager.get_bars_between(market, "AAPL", day[10], day[19])
    assert len(frame) == 10 and frame.index[0] == pd.Timestamp(day[10])


def test_latest_price_is_the_newest_close(market):
    assert db_manager.get_latest_price(market, "AAPL") is None
    db_manager.upsert_bars(market, [bar("AAPL", "2026-11-27T14:31:00Z", 101.0),
                                    bar("AAPL", "2026-11-27T14:30:00Z", 100.0)])
    assert db_manager.get_latest_price(market, "aapl") == {"price": 101.0, "timestamp": "2026-11-27T14:31:00Z"}
    assert db_manager.get_latest_prices(market, ["AAPL", "NVDA"]) == {
        "AAPL": {"price": 101.0, "timestamp": "2026-11-27T14:31:00Z"}, "NVDA": None}
    assert db_manager.list_tickers(market) == ["AAPL"]


def test_gaps_are_the_market_minutes_without_a_bar(market):
    day = minutes_of(market, "2026-11-27")
    stored = [ts for i, ts in enumerate(day) if i not in (3, 4, 100)]
    db_manager.upsert_bars(market, [bar("AAPL", ts, 100.0) for ts in stored])
    gaps = db_manager.find_gaps(market, "AAPL", "2026-11-25T00:00:00Z", "2026-11-28T00:00:00Z")
    wednesday = minutes_of(market, "2026-11-25")
    assert gaps == wednesday + [day[3], day[4], day[100]]  # Thanksgiving itself has no minutes


def test_a_missing_stocks_database_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="create_stocks_db"):
        db_manager.get_connection(tmp_path / "none.db")
