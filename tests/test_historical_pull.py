"""historical_pull against the paper exchange: paginated pulls, idempotent re-runs, gap backfills, CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from database import db_manager, market_calendar
from database.historical_pull import PullError, backfill, pull_bars
from shared.config import AlpacaSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
SIX = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "SPY"]
WEEK_START, WEEK_END = "2026-11-09", "2026-11-13"  # five full sessions
WEEK_MINUTES = 5 * 390
NOW = "2026-11-23T14:30:00Z"  # the exchange's clock (its default start): the pulls' "today"


@pytest.fixture
def paper_exchange(untraded_exchange):
    """The stories here only read bars: they share the module's exchange (the two that set its
    clock start their own)."""
    return untraded_exchange


@pytest.fixture
def settings(paper_exchange):
    return AlpacaSettings.from_env(paper_exchange.env)


def total_rows(conn) -> int:
    return conn.execute("SELECT COUNT(*) FROM bars").fetchone()[0]


def raw_bars(exchange, symbols, start, end, **params):
    response = requests.get(f"{exchange.base_url}/v2/stocks/bars", headers=exchange.headers, timeout=30, params={
        "symbols": ",".join(symbols), "timeframe": "1Min", "start": start, "end": end, "feed": "iex", **params})
    response.raise_for_status()
    return response.json()


def test_a_week_of_six_tickers_needs_pagination_and_arrives_whole(paper_exchange, settings, market):
    first_page = raw_bars(paper_exchange, SIX, "2026-11-09T14:30:00Z", "2026-11-13T20:59:00Z", limit=10000)
    assert first_page["next_page_token"]  # 11,700 bars cannot come in one page

    written = pull_bars(market, SIX, WEEK_START, WEEK_END, now=NOW, settings=settings)

    assert written == 6 * WEEK_MINUTES
    for ticker in SIX:
        assert db_manager.count_bars(market, ticker) == WEEK_MINUTES
        assert db_manager.find_gaps(market, ticker, "2026-11-09T14:30:00Z", "2026-11-13T20:59:00Z") == []
    stored = db_manager.get_bars_between(market, "TSLA", "2026-11-13T20:59:00Z", "2026-11-13T20:59:00Z")
    [sent] = raw_bars(paper_exchange, ["TSLA"], "2026-11-13T20:59:00Z", "2026-11-13T20:59:00Z")["bars"]["TSLA"]
    assert stored.iloc[0]["close"] == pytest.approx(sent["c"]) and stored.iloc[0]["volume"] == sent["v"]


def test_running_a_pull_again_adds_no_rows(settings, market):
    pull_bars(market, ["AAPL", "NVDA"], WEEK_START, WEEK_END, now=NOW, settings=settings)
    before = total_rows(market)

    again = pull_bars(market, ["AAPL", "NVDA"], WEEK_START, WEEK_END, now=NOW, settings=settings)

    assert again == before == 2 * WEEK_MINUTES
    assert total_rows(market) == before


def test_dates_are_whole_new_york_days_and_early_closes_are_respected(settings, market):
    pull_bars(market, ["SPY"], "2025-11-28", "2025-11-28", now=NOW, settings=settings)  # day after Thanksgiving
    bars = db_manager.get_bars_between(market, "SPY", "2025-11-28T00:00:00Z", "2025-11-29T00:00:00Z")
    assert len(bars) == 210  # 09:30 to 13:00 New York
    assert market_calendar.to_utc_string(bars.index[0]) == "2025-11-28T14:30:00Z"
    assert market_calendar.to_utc_string(bars.index[-1]) == "2025-11-28T17:59:00Z"


def test_backfill_returns_exactly_the_deleted_minutes(settings, market):
    pull_bars(market, ["AAPL"], "2026-11-18", "2026-11-20", now=NOW, settings=settings)
    originals = {r["timestamp"]: tuple(r) for r in market.execute("SELECT * FROM bars WHERE ticker='AAPL'")}
    holes = ["2026-11-19T15:00:00Z", "2026-11-19T15:01:00Z", "2026-11-19T18:42:00Z", "2026-11-18T14:31:00Z"]
    tail = db_manager.get_market_minutes(market, "2026-11-20T20:30:00Z", "2026-11-20T20:59:00Z")
    for stamp in holes + tail:
        market.execute("DELETE FROM bars WHERE ticker = 'AAPL' AND timestamp = ?", (stamp,))
    market.execute("UPDATE bars SET close = 1.0 WHERE ticker = 'AAPL' AND timestamp = '2026-11-19T16:00:00Z'")

    filled = backfill(market, "AAPL", now="2026-11-23T14:30:00Z", settings=settings, new_ticker_days=4)

    assert filled == len(holes) + len(tail) == 34  # the four sessions back reach Wednesday the 18th
    restored = {r["timestamp"]: tuple(r) for r in market.execute("SELECT * FROM bars WHERE ticker='AAPL'")}
    assert set(restored) == set(originals)
    assert all(restored[s] == originals[s] for s in holes + tail)
    assert restored["2026-11-19T16:00:00Z"][5] == 1.0  # stored bars are never rewritten by a backfill
    assert backfill(market, "AAPL", now="2026-11-23T14:30:00Z", settings=settings, new_ticker_days=4) == 0


def test_backfill_fetches_the_minutes_before_the_first_streamed_bar(paper_exchange_factory, market):
    """The stream wrote 14:50 before the daemon's back-fill ran: 14:30-14:49 must still come."""
    settings = AlpacaSettings.from_env(paper_exchange_factory(start="2026-11-23T15:00:30Z", speed=0).env)
    db_manager.upsert_bars(market, [{"ticker": "NVDA", "timestamp": "2026-11-23T14:50:00Z", "open": 1.0,
                                     "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1}])

    filled = backfill(market, "NVDA", now="2026-11-23T15:00:30Z", settings=settings, new_ticker_days=1)

    assert filled == 29  # 14:30-14:49 and 14:51-14:59
    assert db_manager.find_gaps(market, "NVDA", "2026-11-23T14:30:00Z", "2026-11-23T14:59:00Z") == []


def test_backfill_of_a_new_ticker_takes_the_last_sessions_up_to_now(paper_exchange_factory, market):
    settings = AlpacaSettings.from_env(paper_exchange_factory(start="2026-11-23T15:00:30Z", speed=0).env)

    filled = backfill(market, "NVDA", now="2026-11-23T15:00:30Z", settings=settings, new_ticker_days=2)

    assert filled == 390 + 30  # Friday's session and Monday 14:30-14:59
    assert db_manager.get_last_timestamp(market, "NVDA") == "2026-11-23T14:59:00Z"
    assert db_manager.find_gaps(market, "NVDA", "2026-11-20T14:30:00Z", "2026-11-23T14:59:00Z") == []


@pytest.mark.parametrize("tickers, start, end, message", [
    (["AAPL$"], WEEK_START, WEEK_END, "not a stock symbol"),
    ([], WEEK_START, WEEK_END, "not a stock symbol"),
    (["AAPL"], WEEK_END, WEEK_START, "after"),
    (["AAPL"], "2026-11-21", "2026-11-22", "no market minutes"),
    (["AAPL"], "2026-13-01", WEEK_END, "not a date"),
    (["AAPL", "ZZZZ"], WEEK_START, WEEK_END, "ZZZZ"),
])
def test_bad_tickers_and_ranges_change_nothing(settings, market, tickers, start, end, message):
    with pytest.raises(PullError, match=message):
        pull_bars(market, tickers, start, end, now=NOW, settings=settings)
    assert total_rows(market) == 0


# ------------------------------------------------------------------------------------ CLI
def run_cli(exchange, stocks_db, *args, **env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_")}
    env.update(exchange.env, AUTOTRADER_STOCKS_DB=str(stocks_db), **env_overrides)
    return subprocess.run([sys.executable, "-m", "database.historical_pull", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_pulls_with_a_progress_bar(paper_exchange, stocks_db, market):
    done = run_cli(paper_exchange, stocks_db, "AAPL", "NVDA", "--start", "2026-11-16", "--end", "2026-11-20")
    assert done.returncode == 0, done.stderr
    assert "3900 bars stored for AAPL NVDA" in done.stdout
    assert "100%" in done.stderr and "5/5" in done.stderr
    assert db_manager.count_bars(market, "NVDA") == 1950


def test_cli_backfill(paper_exchange, stocks_db, market):
    done = run_cli(paper_exchange, stocks_db, "MSFT", "--backfill", "--now", "2026-11-23T14:30:00Z", "--days", "2")
    assert done.returncode == 0, done.stderr
    assert "MSFT: 390 missing bars filled" in done.stdout
    assert db_manager.count_bars(market, "MSFT") == 390


@pytest.mark.parametrize("args, overrides, words", [
    (["ZZZZ", "--start", "2026-11-16", "--end", "2026-11-20"], {}, "no bars for ZZZZ"),
    (["AAPL", "--start", "2026-11-20", "--end", "2026-11-16"], {}, "after"),
    (["AAPL", "--start", "yesterday", "--end", "2026-11-16"], {}, "not a date"),
    (["AAPL", "--start", "2026-11-16"], {}, "--start and --end"),
    (["AAPL", "--backfill", "--now", "soon"], {}, "not a date"),
    (["AAPL", "--start", "2026-11-16", "--end", "2026-11-20"], {"ALPACA_API_KEY": ""}, "ALPACA_API_KEY"),
])
def test_cli_bad_input_is_one_line_and_exit_2(paper_exchange, stocks_db, market, args, overrides, words):
    done = run_cli(paper_exchange, stocks_db, *args, **overrides)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0]
    assert "Traceback" not in done.stderr
    assert total_rows(market) == 0
