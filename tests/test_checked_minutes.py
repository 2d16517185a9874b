"""A thin ticker's empty minutes are remembered as checked: a restart's backfill does not ask the
source for them again (counted in the exchange's request log), and the health figures tell "no
trade that minute" from "missing"."""
from __future__ import annotations

from datetime import datetime

import pytest
import requests

from database import coverage, db_manager, historical_pull, market_calendar
from shared.config import AlpacaSettings
from system_databse import system_db_manager

NOW = "2026-11-23T17:00:00Z"  # Monday, 12:00 New York: 150 minutes of the session are complete


def at(stamp: str) -> datetime:
    return market_calendar.parse_utc(stamp).to_pydatetime()


@pytest.fixture
def thin_exchange(paper_exchange_factory):
    return paper_exchange_factory(start=NOW, speed=0, thin_symbols="KO:0.4:0.1")


def source_bars(exchange, start, end) -> list[dict]:
    return requests.get(f"{exchange.base_url}/v2/stocks/KO/bars", headers=exchange.headers, timeout=30,
                        params={"timeframe": "1Min", "start": start, "end": end, "limit": 10000}).json()["bars"]


def bar_requests(exchange) -> list[dict]:
    return exchange.state()["data_requests"]


def test_a_restart_does_not_ask_again_for_minutes_without_a_trade(thin_exchange, market):
    settings = AlpacaSettings.from_env(thin_exchange.env)

    filled = historical_pull.backfill(market, "KO", now=NOW, settings=settings, new_ticker_days=1)
    first_run = len(bar_requests(thin_exchange))
    assert historical_pull.backfill(market, "KO", now=NOW, settings=settings, new_ticker_days=1) == 0
    assert len(bar_requests(thin_exchange)) == first_run  # the ~60 empty minutes were not asked for again

    source = source_bars(thin_exchange, "2026-11-23T14:30:00Z", "2026-11-23T16:59:00Z")
    stored = db_manager.get_bars_between(market, "KO", "2026-11-23T14:30:00Z", "2026-11-23T16:59:00Z")
    assert filled == len(source) == len(stored) and 0.3 < 1 - len(source) / 150 < 0.5
    assert [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in stored.index] == [b["t"] for b in source]
    assert db_manager.get_checked_through(market, "KO") == "2026-11-23T16:59:00Z"

    first_run = len(bar_requests(thin_exchange))
    thin_exchange.set_clock("2026-11-23T17:30:00Z")
    historical_pull.backfill(market, "KO", now="2026-11-23T17:30:00Z", settings=settings, new_ticker_days=1)
    later = bar_requests(thin_exchange)[first_run:]
    starts = [market_calendar.parse_utc(r["args"]["start"]) for r in later]
    assert starts and min(starts) == market_calendar.parse_utc("2026-11-23T17:00:00Z")  # only the new minutes
    figures = coverage.session_coverage(market, ["KO"], at("2026-11-23T17:30:00Z"))["KO"]
    assert figures["minutes"] == 180 and figures["missing"] == 0
    assert figures["no_trade"] == 180 - figures["bars"] > 50


def test_health_figures_tell_no_trade_from_missing(market):
    db_manager.upsert_bars(market, [{"ticker": "KO", "timestamp": f"2026-11-23T14:3{m}:00Z", "open": 62.0,
                                     "high": 62.0, "low": 62.0, "close": 62.0} for m in (0, 2)])
    db_manager.set_checked_through(market, "KO", "2026-11-23T14:34:00Z")

    figures = coverage.session_coverage(market, ["KO"], at("2026-11-23T14:40:10Z"))

    assert figures == {"KO": {"minutes": 10, "bars": 2, "no_trade": 3, "missing": 5,
                              "checked_through": "2026-11-23T14:34:00Z"}}


def test_the_orchestrator_restarting_on_a_thin_ticker_does_not_ask_for_its_empty_minutes_again(
        thin_exchange, tmp_path, stocks_db_template):
    import shutil

    from system_databse.create_system_db import create_system_db
    from tests.fixtures.orchestrator import orchestrator_env, run_orchestrator, write_test_algorithms

    system_db, stocks_db = tmp_path / "system.db", tmp_path / "stocks.db"
    create_system_db(system_db)
    shutil.copyfile(stocks_db_template, stocks_db)
    conn = system_db_manager.get_connection(system_db)
    system_db_manager.create_algorithm("KO", "buy_and_hold", 1000.0, conn=conn)
    conn.close()
    env = orchestrator_env(thin_exchange, system_db=system_db, stocks_db=stocks_db, log_dir=tmp_path / "logs",
                           algorithms_dir=write_test_algorithms(tmp_path / "algorithms", ["buy_and_hold"]))

    first = run_orchestrator(env, "--once")
    asked = len(bar_requests(thin_exchange))
    again = run_orchestrator(env, "--once")  # a restart in the same minute

    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert asked > 0 and len(bar_requests(thin_exchange)) == asked
    market = db_manager.get_connection(stocks_db)
    try:
        figures = coverage.session_coverage(market, ["KO"], at(NOW))["KO"]
        stored = db_manager.get_bars_between(market, "KO", "2026-11-23T14:30:00Z", "2026-11-23T16:59:00Z")
    finally:
        market.close()
    assert figures["missing"] == 0 and figures["no_trade"] > 40 and figures["bars"] == len(stored)
    assert [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in stored.index] == \
        [b["t"] for b in source_bars(thin_exchange, "2026-11-23T14:30:00Z", "2026-11-23T16:59:00Z")]
