""""Try it first": the add dialog's preview backtests in a child process with a time limit, one at a
time, fetching missing history first, and says what the CLI backtest says on the same range."""
from __future__ import annotations

import time

import pytest

from database import db_manager
from scripts import backtest
from scripts.backtest_metrics import buy_and_hold_curve, max_drawdown, metrics
from tests.fixtures.api import table_rows
from tests.fixtures.exchange import DEFAULT_START
from tests.test_backtest import DAY, FILL_OPENS, bars_for, day_closes

import numpy as np

EXCHANGE_DAY = DEFAULT_START[:10]  # the session the shared exchange's clock is in

HANGS = ('"""Hangs: never answers."""\nfrom algorithms._framework import AlgorithmBase\n\n\n'
         "class Algorithm(AlgorithmBase):\n    def on_data(self, bars, transaction_history):\n"
         "        while True:\n            pass\n")


def wait_for(client, preview_id: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = client.get(f"/api/preview/{preview_id}").get_json()
        if state["state"] in ("done", "failed", "stopped"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"preview {preview_id} still running after {seconds}s: {state}")


def test_figures_of_a_known_day(market, stocks_db):
    """Buy 90 at 110.90, sell 90 at 80.50 (see test_backtest): -27.36%, one losing sell."""
    db_manager.upsert_bars(market, bars_for(DAY, day_closes(), fill_opens=FILL_OPENS))
    result, series, first = backtest.run_backtest("sma_crossover", "AAPL", f"{DAY}T00:00:00Z", f"{DAY}T23:59:59Z",
                                                  10_000.0, conn=market)
    figures, equity, hold = metrics(result, series, first)
    assert figures.total_return == pytest.approx(-0.2736)
    assert (figures.trades, figures.closed_trades, figures.win_rate) == (2, 1, 0.0)
    assert figures.time_in_market == pytest.approx(90 / 390)  # held from bar 61's open to bar 151's open
    assert figures.buy_hold_return == pytest.approx((100 * 80.0 - 10_000) / 10_000)  # 100 shares at 100 -> 80
    assert figures.max_drawdown == pytest.approx(1 - equity.min() / equity.max())
    assert len(equity) == len(hold) == 390


def test_drawdown_and_buy_and_hold_by_hand():
    assert max_drawdown(np.array([100.0, 120.0, 90.0, 130.0, 117.0])) == pytest.approx(0.25)
    curve = buy_and_hold_curve(1000.0, np.array([30.0, 31.0]), np.array([31.0, 33.0]))
    assert curve.tolist() == [1000 - 33 * 30 + 33 * 31.0, 1000 - 33 * 30 + 33 * 33.0]  # 33 shares, $10 left


@pytest.fixture
def preview_client(api_factory, api_exchange):
    def make(**config):
        return api_factory(api_exchange, PREVIEW_ENV=api_exchange.env, **config).test_client()
    return make


def test_a_preview_fetches_history_and_matches_the_cli_backtest(preview_client, stocks_db, market, system_db):
    client = preview_client()
    ledger_before = table_rows(system_db)
    body = {"algorithm_type": "sma_crossover", "ticker": "aapl", "initial_capital": 10_000,
            "parameters": {"fast": 10, "slow": 30}, "days": 3}
    started = client.post("/api/preview", json=body)
    assert started.status_code == 202, started.get_json()
    assert started.get_json()["state"] in ("fetching", "replaying")
    done = wait_for(client, started.get_json()["id"])
    assert done["state"] == "done", done
    assert done["progress"]["phase"] == "replaying"
    result = done["result"]
    assert (result["ticker"], result["days"], result["parameters"]) == ("AAPL", 3, {"fast": 10, "slow": 30})
    assert db_manager.count_bars(market, "AAPL") > result["bars"] > 390  # history was fetched, warm-up too
    cli, series, first = backtest.run_backtest("sma_crossover", "AAPL", f"{result['start']}T00:00:00Z",
                                               f"{result['end']}T23:59:59Z", 10_000.0, conn=market,
                                               parameters={"fast": 10, "slow": 30})
    figures = metrics(cli, series, first)[0]
    assert result["trades"] == len(cli.trades) > 0
    assert result["final_value"] == cli.final_value
    assert result["total_return"] == pytest.approx(figures.total_return)
    assert result["win_rate"] == pytest.approx(figures.win_rate)
    assert result["max_drawdown"] == pytest.approx(figures.max_drawdown)
    assert result["curve"]["equity"][0] == 10_000 and len(result["curve"]["equity"]) == len(result["curve"]["buy_hold"])
    assert table_rows(system_db) == ledger_before  # a preview never touches the ledger


def test_a_hanging_algorithm_is_stopped_at_its_time_limit_and_reported(preview_client, tmp_path, market):
    folder = tmp_path / "algos"
    folder.mkdir()
    (folder / "hangs.py").write_text(HANGS)
    db_manager.upsert_bars(market, bars_for(EXCHANGE_DAY, day_closes()))  # the day "the last 1 day" means
    client = preview_client(ALGORITHMS_DIR=folder, PREVIEW_TIME_LIMIT_SECONDS=2)
    started = client.post("/api/preview", json={"algorithm_type": "hangs", "ticker": "AAPL",
                                                "initial_capital": 1000, "days": 1})
    assert started.status_code == 202
    busy = client.post("/api/preview", json={"algorithm_type": "hangs", "ticker": "AAPL", "initial_capital": 1000})
    assert busy.status_code == 409  # one preview at a time
    assert busy.get_json()["error"] == "a preview is already running; wait for it to finish"
    stopped = wait_for(client, started.get_json()["id"])
    assert stopped["state"] == "stopped"
    assert stopped["error"] == "stopped after 2 s: hangs did not finish the backtest in time"
    again = client.post("/api/preview", json={"algorithm_type": "hangs", "ticker": "AAPL",
                                              "initial_capital": 1000, "days": 1})
    assert again.status_code == 202  # the next preview may start
    assert wait_for(client, again.get_json()["id"])["state"] == "stopped"


@pytest.mark.parametrize("body, status, words", [
    ({"algorithm_type": "sma_crossover", "ticker": "AAPL", "initial_capital": 1000, "parameters": {"fast": 0}},
     400, "parameter 'fast' must be an integer from 2 to 200, got 0"),
    ({"algorithm_type": "sma_crossover", "ticker": "AAPL", "initial_capital": 1000, "days": 0},
     400, "days must be an integer from 1 to 60"),
    ({"algorithm_type": "nope", "ticker": "AAPL", "initial_capital": 1000}, 422, "unknown algorithm_type 'nope'"),
    ({"algorithm_type": "sma_crossover", "ticker": "AAPL", "initial_capital": -5}, 400, "initial_capital"),
])
def test_bad_preview_requests_are_refused_before_anything_runs(offline_client, body, status, words):
    response = offline_client.post("/api/preview", json=body)
    assert response.status_code == status
    assert words in response.get_json()["error"]
