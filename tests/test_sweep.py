"""The parameter sweep: every combination ranked on the first days, the best replayed on the rest."""
from __future__ import annotations

import math

import pytest

from database import db_manager, market_calendar
from scripts import backtest, sweep
from tests.test_backtest import bars_for

DAYS = ["2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08", "2026-01-09"]


def wave(day: int) -> list[float]:
    period = 30 + 7 * day
    return [round(100 + day + 2 * math.sin(2 * math.pi * i / period) + (i % 7) * 0.03, 2) for i in range(390)]


@pytest.fixture
def week(market, stocks_db):
    for index, day in enumerate(DAYS):
        db_manager.upsert_bars(market, bars_for(day, wave(index)))
    return stocks_db


def test_every_combination_is_ranked_and_the_best_are_checked_out_of_sample(week, market):
    found = sweep.sweep("sma_crossover", "AAPL", f"{DAYS[0]}T00:00:00Z", f"{DAYS[-1]}T23:59:59Z", 10_000.0,
                        ["fast=3:7:2", "slow=12,20"], conn=market, split=0.6, top=3, workers=2)
    assert found["combinations"] == 6 and found["names"] == ["fast", "slow"]
    returns = [o.metrics.total_return for o in found["inside"]]
    assert returns == sorted(returns, reverse=True)
    assert sorted(o.values for o in found["inside"]) == [(3, 12), (3, 20), (5, 12), (5, 20), (7, 12), (7, 20)]
    assert found["split_at"] == "2026-01-08T14:30:00Z"  # 3 of 5 days in-sample
    assert found["in_bars"] == 3 * 390 and found["out_bars"] == 2 * 390
    for values in [o.values for o in found["inside"][:3]]:  # out-of-sample = the CLI's backtest of those days
        inside, _, _ = backtest.run_backtest("sma_crossover", "AAPL", f"{DAYS[0]}T00:00:00Z", f"{DAYS[2]}T23:59:59Z",
                                             10_000.0, conn=market, parameters=dict(zip(("fast", "slow"), values)))
        outside, _, _ = backtest.run_backtest("sma_crossover", "AAPL", f"{DAYS[3]}T00:00:00Z", f"{DAYS[4]}T23:59:59Z",
                                              10_000.0, conn=market, parameters=dict(zip(("fast", "slow"), values)))
        in_row = next(o for o in found["inside"] if o.values == values)
        assert in_row.metrics.final_value == inside.final_value
        assert found["outside"][values].metrics.final_value == outside.final_value
        assert found["outside"][values].metrics.trades == len(outside.trades)


def test_the_cli_prints_both_tables_and_throughput(week, capsys):
    code = sweep.main(["sma_crossover", "AAPL", "--start", DAYS[0], "--end", DAYS[-1], "--param", "fast=3:5:2",
                       "--param", "slow=12", "--top", "2", "--workers", "2", "--db", str(week), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("2 combinations x 1,560 in-sample bars in ")
    assert lines[0].endswith("combination-bars/s") and "on 2 worker(s)" in lines[0]
    assert "in-sample (before 2026-01-09T14:30:00Z), best 2 by return" in out
    assert "out-of-sample (390 bars from 2026-01-09T14:30:00Z), the same combinations" in out
    header = next(line for line in lines if "in-sample return" in line)
    assert header.split()[:2] == ["fast", "slow"] and header.split()[-1] == "out"
    assert "best in-sample {'fast': " in out


@pytest.mark.parametrize("param, words", [
    ("fast=1:5:1", "parameter 'fast' must be an integer from 2 to 200, got 1"),
    ("speed=1:2:1", "unknown parameter 'speed'; allowed: fast, slow"),
    ("fast=5:3:1", "needs step > 0 and stop >= start"),
    ("fast=3:5", "a range is start:stop:step"),
])
def test_bad_ranges_are_one_line_errors(week, capsys, param, words):
    code = sweep.main(["sma_crossover", "AAPL", "--start", DAYS[0], "--end", DAYS[-1], "--param", param,
                       "--db", str(week)])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and words in err
