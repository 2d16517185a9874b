"""Old minute bars are pruned once a night: exactly the configured window of trading days stays,
never a bar a running card's algorithm still asks for, in small transactions."""
from __future__ import annotations

from datetime import datetime

import pytest

from database import db_manager, market_calendar
from shared.config import ConfigError, RetentionSettings
from orchestra.retention import BarPruner

# Four sessions: Wed 18th, Thu 19th, Fri 20th and Mon 23rd of November 2026, 390 minutes each.
SESSIONS = ("2026-11-18", "2026-11-19", "2026-11-20", "2026-11-23")
MONDAY_NIGHT = datetime.fromisoformat("2026-11-24T02:00:00+00:00")
MONDAY_NOON = datetime.fromisoformat("2026-11-23T17:00:00+00:00")

NEEDS_500 = '''"""Test: needs 500 bars."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 500}

    def on_data(self, bars, transaction_history):
        return ("hold", 0)
'''
NEEDS_ONE = NEEDS_500.replace("500", "1")
RAISES = NEEDS_500.replace('return {"bars": 500}', 'raise RuntimeError("no idea")')


def store_sessions(market, ticker: str, days=SESSIONS) -> int:
    rows = [{"ticker": ticker, "timestamp": minute, "open": 10, "high": 10, "low": 10, "close": 10, "volume": 1}
            for day in days for minute in market_calendar.minutes_between(f"{day}T00:00:00Z", f"{day}T23:59:00Z")]
    return db_manager.upsert_bars(market, rows)


def card(card_id: int, ticker: str, algorithm_type: str) -> dict:
    return {"id": card_id, "ticker": ticker, "algorithm_type": algorithm_type, "initial_capital": 10_000.0}


@pytest.fixture
def algorithms(tmp_path):
    directory = tmp_path / "algorithms"
    directory.mkdir()
    for name, source in {"needs_500": NEEDS_500, "needs_one": NEEDS_ONE, "raises": RAISES}.items():
        (directory / f"{name}.py").write_text(source)
    return directory


def pruner(market, algorithms, cards=(), **settings) -> BarPruner:
    return BarPruner(market, lambda: list(cards), settings=RetentionSettings(**settings), directory=algorithms)


def first_day(market, ticker: str) -> str:
    return db_manager.get_bars_between(market, ticker, "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z").index[0] \
        .strftime("%Y-%m-%d")


def test_two_days_kept_means_the_last_two_sessions_exactly(market, algorithms):
    store_sessions(market, "AAPL")

    deleted = pruner(market, algorithms, [card(1, "AAPL", "needs_one")], keep_days=2).run(MONDAY_NIGHT)

    assert deleted == {"AAPL": 2 * 390}
    assert db_manager.count_bars(market, "AAPL") == 2 * 390
    assert first_day(market, "AAPL") == "2026-11-20"


def test_a_session_in_progress_counts_as_one_of_the_days(market, algorithms):
    store_sessions(market, "AAPL", SESSIONS[:3])
    db_manager.upsert_bars(market, [{"ticker": "AAPL", "timestamp": "2026-11-23T14:30:00Z", "open": 1, "high": 1,
                                     "low": 1, "close": 1}])

    pruner(market, algorithms, keep_days=1).run(MONDAY_NOON)

    assert db_manager.count_bars(market, "AAPL") == 1


def test_a_card_needing_more_bars_than_the_window_keeps_them_and_other_tickers_are_pruned(market, algorithms):
    store_sessions(market, "AAPL")
    store_sessions(market, "MSFT")
    cards = [card(1, "AAPL", "needs_one"), card(2, "AAPL", "needs_500"), card(3, "MSFT", "needs_one")]

    deleted = pruner(market, algorithms, cards, keep_days=1).run(MONDAY_NIGHT)

    assert db_manager.count_bars(market, "AAPL") == 500   # 390 of Monday + the last 110 of Friday
    assert deleted == {"AAPL": 4 * 390 - 500, "MSFT": 3 * 390}
    newest_500 = db_manager.get_last_bars(market, "AAPL", 500)
    assert len(newest_500) == 500 and newest_500.index[0].strftime("%Y-%m-%dT%H:%M:%SZ") == "2026-11-20T19:10:00Z"


def test_a_ticker_whose_card_requirement_fails_is_not_pruned(market, algorithms):
    store_sessions(market, "AAPL")
    store_sessions(market, "MSFT")

    deleted = pruner(market, algorithms, [card(1, "AAPL", "raises"), card(2, "AAPL", "needs_one")],
                     keep_days=1).run(MONDAY_NIGHT)

    assert deleted == {"MSFT": 3 * 390}
    assert db_manager.count_bars(market, "AAPL") == 4 * 390


def test_pruning_runs_in_transactions_of_at_most_the_batch_size(market, algorithms):
    store_sessions(market, "AAPL")
    statements: list[str] = []
    market.set_trace_callback(statements.append)

    pruner(market, algorithms, keep_days=3, batch_rows=100).run(MONDAY_NIGHT)

    market.set_trace_callback(None)
    deletes = [s for s in statements if s.startswith("DELETE")]
    assert statements.count("COMMIT") == len(deletes) == 4   # 390 rows: 100 + 100 + 100 + 90
    assert db_manager.count_bars(market, "AAPL") == 3 * 390


def test_once_a_night_off_hours_only_and_nothing_written_when_nothing_is_old(market, algorithms):
    store_sessions(market, "AAPL")
    prune = pruner(market, algorithms, keep_days=2)

    assert prune.run_if_due(MONDAY_NOON) is None              # market open: never
    assert db_manager.count_bars(market, "AAPL") == 4 * 390
    assert prune.run_if_due(MONDAY_NIGHT) == {"AAPL": 2 * 390}
    statements: list[str] = []
    market.set_trace_callback(statements.append)
    assert prune.run_if_due(datetime.fromisoformat("2026-11-24T05:00:00+00:00")) is None  # same night: done
    assert statements == []
    assert pruner(market, algorithms, keep_days=2).run_if_due(MONDAY_NIGHT) == {}    # a restart: nothing old
    assert not any(s.startswith(("BEGIN", "DELETE", "COMMIT")) for s in statements)


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5", "²", "٤٠٠"])
def test_a_bad_retention_setting_is_refused_with_its_name(value):
    with pytest.raises(ConfigError, match="AUTOTRADER_BAR_RETENTION_DAYS"):
        RetentionSettings.from_env({"AUTOTRADER_BAR_RETENTION_DAYS": value})


def test_the_default_keeps_400_trading_days():
    assert RetentionSettings.from_env({}).keep_days == 400
