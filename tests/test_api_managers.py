"""The two small manager functions the API added: thinned closes for charts, newest transactions for display."""
from __future__ import annotations

import pytest

from database import db_manager
from system_databse import system_db_manager


def closes(market, ticker, count, start_hour=15):
    bars = [{"ticker": ticker, "timestamp": f"2026-11-23T{start_hour + i // 60:02d}:{i % 60:02d}:00Z", "open": 1,
             "high": 1, "low": 1, "close": float(i), "volume": 1} for i in range(count)]
    db_manager.upsert_bars(market, bars)
    return [b["timestamp"] for b in bars]


@pytest.mark.parametrize("count,max_points,expected_indices", [
    (10, 20, list(range(10))),
    (10, 10, list(range(10))),
    (10, 4, [0, 4, 8, 9]),
    (10, 2, [0, 9]),
    (11, 3, [0, 6, 10]),
    (100, 7, [0, 17, 34, 51, 68, 85, 99]),
])
def test_sampled_closes_keep_first_and_last_within_the_limit(market, count, max_points, expected_indices):
    stamps = closes(market, "NVDA", count)
    closes(market, "AAPL", 5)  # another ticker never leaks in
    total, rows = db_manager.get_sampled_closes(market, "nvda", stamps[0], stamps[-1], max_points)
    assert total == count
    assert rows == [(stamps[i], float(i)) for i in expected_indices]
    assert len(rows) <= max_points


def test_sampled_closes_respect_the_range_and_handle_none(market):
    stamps = closes(market, "NVDA", 30)
    total, rows = db_manager.get_sampled_closes(market, "NVDA", stamps[10], stamps[19], 100)
    assert total == 10 and [r[0] for r in rows] == stamps[10:20]
    assert db_manager.get_sampled_closes(market, "TSLA", stamps[0], stamps[-1], 100) == (0, [])
    with pytest.raises(ValueError):
        db_manager.get_sampled_closes(market, "NVDA", stamps[0], stamps[-1], 1)


def test_recent_transactions_newest_first_and_limited(ledger):
    mine = system_db_manager.create_algorithm("NVDA", "sma_crossover", 10_000, conn=ledger)
    other = system_db_manager.create_algorithm("AAPL", "sma_crossover", 10_000, conn=ledger)
    for minute in range(5):
        system_db_manager.record_buy(mine, minute + 1, 10.0, timestamp=f"2026-11-23T15:0{minute}:00Z", conn=ledger)
    system_db_manager.record_buy(mine, 9, 10.0, timestamp="2026-11-23T15:04:00Z", conn=ledger)  # same time: by id
    system_db_manager.record_buy(other, 7, 10.0, timestamp="2026-11-23T16:00:00Z", conn=ledger)
    recent = system_db_manager.get_recent_transactions(mine, 3, conn=ledger)
    assert [t["shares"] for t in recent] == [9, 5, 4]
    assert recent == system_db_manager.get_transactions(mine, conn=ledger)[:3]
    assert len(system_db_manager.get_recent_transactions(mine, 100, conn=ledger)) == 6
