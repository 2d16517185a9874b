"""The wrapper around user code: read-only inputs, typed errors, checked decisions."""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from algorithms import (AlgorithmError, AlgorithmLoadError, Bars, BarSeries, decide_for_card, freeze_history,
                        last_completed_bar_start, requirements_for_card)

FILES = Path(__file__).resolve().parent / "algorithm_files"
START = np.datetime64("2026-01-05T14:30:00")


def make_bars(closes) -> Bars:
    stamps = START + np.arange(len(closes)).astype("timedelta64[m]")
    return Bars.from_columns(stamps, closes, [c + 0.5 for c in closes], [c - 0.5 for c in closes], closes,
                             [1000] * len(closes))


@pytest.fixture
def plugin_dir(tmp_path) -> Path:
    folder = tmp_path / "algorithms"
    shutil.copytree(FILES, folder)
    return folder


def card(algorithm_type: str, capital: float = 10_000.0) -> dict:
    return {"id": 7, "algorithm_type": algorithm_type, "ticker": "AAPL", "initial_capital": capital}


def test_bars_are_oldest_first_with_utc_timestamps_and_a_pandas_view():
    bars = make_bars([10.0, 11.0, 12.0])
    assert len(bars) == 3 and bars.close[-1] == 12.0
    assert bars.first_timestamp == "2026-01-05T14:30:00Z" and bars.last_timestamp == "2026-01-05T14:32:00Z"
    frame = bars.df
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert str(frame.index.tz) == "UTC" and frame.index[-1] == pd.Timestamp("2026-01-05T14:32:00Z")
    assert frame["high"].tolist() == [10.5, 11.5, 12.5]
    frame.loc[frame.index[-1], "close"] = 0.0  # the frame is a copy
    assert bars.close[-1] == 12.0
    assert bars["volume"].tolist() == [1000.0] * 3
    with pytest.raises(KeyError, match="no column 'vwap'"):
        bars["vwap"]


def test_bars_round_trip_through_the_db_manager_frame_shape():
    frame = make_bars([1.0, 2.0]).df
    again = Bars.from_frame(frame)
    assert again.last_timestamp == "2026-01-05T14:31:00Z" and again.close.tolist() == [1.0, 2.0]


def test_bars_refuse_unsorted_or_ragged_columns():
    with pytest.raises(ValueError, match="strictly increasing"):
        Bars.from_columns(["2026-01-05T14:31:00Z", "2026-01-05T14:30:00Z"], [1, 2], [1, 2], [1, 2], [1, 2])
    with pytest.raises(ValueError, match="differ in length"):
        Bars.from_columns(["2026-01-05T14:30:00Z"], [1, 2], [1], [1], [1])


def test_a_series_window_is_a_read_only_view_of_the_newest_bars():
    series = BarSeries(make_bars([float(i) for i in range(10)]))
    window = series.window(7, 3)
    assert window.close.tolist() == [4.0, 5.0, 6.0]
    assert np.shares_memory(window.close, series.close)
    assert series.window(2, 5).close.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError):
        window.close[0] = 99.0


def test_bars_survive_pickling_for_a_worker_process():
    bars = pickle.loads(pickle.dumps(make_bars([1.0, 2.0])))
    assert bars.close.tolist() == [1.0, 2.0] and not bars.close.flags.writeable


def test_last_completed_bar_start_is_the_minute_before_now():
    assert last_completed_bar_start("2026-01-05T14:31:00Z") == "2026-01-05T14:30:00Z"
    assert last_completed_bar_start("2026-01-05T14:31:07Z") == "2026-01-05T14:30:00Z"
    with pytest.raises(ValueError, match="no time zone"):
        last_completed_bar_start("2026-01-05T14:31:00")


def test_history_is_sorted_oldest_first_and_read_only():
    newest_first = [
        {"id": 2, "algorithm_id": 7, "type": "sell", "shares": 5, "price": 11.0, "timestamp": "2026-01-05T14:32:00Z"},
        {"id": 1, "algorithm_id": 7, "type": "buy", "shares": 10, "price": 10.0, "timestamp": "2026-01-05T14:31:00Z"},
    ]
    history = freeze_history(newest_first)
    assert [row["id"] for row in history] == [1, 2]
    assert dict(history[0]) == {"id": 1, "type": "buy", "shares": 10, "price": 10.0,
                                "timestamp": "2026-01-05T14:31:00Z"}
    with pytest.raises(TypeError):
        history[0]["shares"] = 99


def test_a_hold_algorithm_runs_for_a_card(plugin_dir):
    decision = decide_for_card(card("good_hold"), make_bars([1.0, 2.0, 3.0]), [], 3.0, directory=plugin_dir)
    assert (decision.action, decision.accepted, decision.reason) == ("hold", True, "hold")


def test_too_few_bars_hold_without_calling_the_algorithm(plugin_dir):
    decision = decide_for_card(card("raises_in_on_data"), make_bars([1.0]), [], 1.0, directory=plugin_dir)
    assert decision.action == "hold" and decision.reason == "waiting for data: 1 of 2 bars"


def test_an_exception_in_on_data_becomes_an_algorithm_error_with_the_card(plugin_dir):
    with pytest.raises(AlgorithmError) as error:
        decide_for_card(card("raises_in_on_data"), make_bars([1.0, 2.0]), [], 2.0, directory=plugin_dir)
    assert error.value.card_id == 7 and error.value.algorithm_type == "raises_in_on_data"
    assert str(error.value) == "card 7 raises_in_on_data: on_data raised ZeroDivisionError: integer division or modulo by zero"
    assert isinstance(error.value.__cause__, ZeroDivisionError)
    assert pickle.loads(pickle.dumps(error.value)).card_id == 7


def test_bad_requirements_are_an_algorithm_error_saying_what_to_fix(plugin_dir):
    with pytest.raises(AlgorithmError, match=r"requirements\['bars'\] must be an integer from 1 to"):
        requirements_for_card(card("bad_requirements"), "2026-01-05T15:00:00Z", directory=plugin_dir)


def test_a_broken_file_is_a_load_error_for_that_card(plugin_dir):
    with pytest.raises(AlgorithmLoadError) as error:
        decide_for_card(card("syntax_error"), make_bars([1.0]), [], 1.0, directory=plugin_dir)
    assert error.value.card_id == 7 and "syntax error" in str(error.value)


def test_an_algorithm_cannot_change_the_callers_bars(plugin_dir):
    bars = make_bars([1.0, 2.0])
    with pytest.raises(AlgorithmError, match="read-only"):
        decide_for_card(card("mutates_inputs"), bars, [], 2.0, directory=plugin_dir)
    assert bars.close.tolist() == [1.0, 2.0]


def test_an_algorithm_cannot_change_the_callers_history(plugin_dir):
    history = [{"id": 1, "type": "buy", "shares": 3, "price": 1.0, "timestamp": "2026-01-05T14:30:00Z"}]
    with pytest.raises(AlgorithmError, match="does not support item assignment"):
        decide_for_card(card("mutates_history"), make_bars([1.0]), history, 1.0, directory=plugin_dir)
    assert history[0]["shares"] == 3


def test_a_float_share_count_is_refused_not_rounded(plugin_dir):
    decision = decide_for_card(card("returns_float_shares", 100.0), make_bars([30.0]), [], 30.0, directory=plugin_dir)
    assert (decision.action, decision.accepted) == ("hold", False)
    assert "shares must be a whole number (int), got 3.0 (float64)" in decision.reason


def test_a_card_without_an_algorithm_type_is_an_algorithm_error():
    with pytest.raises(AlgorithmError, match="card has no 'algorithm_type'"):
        decide_for_card({"id": 3}, make_bars([1.0]), [], 1.0)


def test_a_refused_decision_is_logged_with_the_card(plugin_dir, caplog):
    with caplog.at_level("WARNING"):
        decide_for_card(card("returns_float_shares", 100.0), make_bars([30.0]), [], 30.0, directory=plugin_dir)
    assert "card 7 (returns_float_shares AAPL): refused: shares must be a whole number" in caplog.text


def test_more_bars_than_needed_are_trimmed_to_the_newest(tmp_path):
    (tmp_path / "echo.py").write_text(
        "class Algorithm:\n"
        "    def __init__(self, ticker, initial_capital):\n        pass\n"
        "    def get_data_requirements(self, current_time):\n        return {'bars': 2}\n"
        "    def on_data(self, bars, transaction_history):\n"
        "        return ('hold', 0, f'{len(bars)} bars, last {bars.close[-1]}, at {bars.last_timestamp}')\n")
    decision = decide_for_card(card("echo"), make_bars([1.0, 2.0, 3.0, 4.0]), [], 4.0, directory=tmp_path)
    assert decision.reason == "2 bars, last 4.0, at 2026-01-05T14:33:00Z"


def test_a_history_carries_its_totals_and_stays_read_only():
    history = freeze_history([
        {"id": 1, "type": "buy", "shares": 100, "price": 150.50, "timestamp": "2024-06-04T14:30:00Z"},
        {"id": 2, "type": "buy", "shares": 50, "price": 145.25, "timestamp": "2024-06-04T14:31:00Z"},
        {"id": 3, "type": "sell", "shares": 25, "price": 155.75, "timestamp": "2024-06-04T14:32:00Z"},
    ])
    assert (history.shares, history.invested) == (125, 15050.0 + 7262.5 - 3893.75)
    later = history.appended({"id": 4, "type": "sell", "shares": 125, "price": 150.0,
                              "timestamp": "2024-06-04T14:33:00Z"})
    assert (later.shares, len(later), len(history)) == (0, 4, 3)
    for attempt in (lambda: setattr(history, "shares", 10**6), lambda: history.__delattr__("_totals")):
        with pytest.raises(TypeError, match="read-only"):
            attempt()
    assert pickle.loads(pickle.dumps(history)).shares == 125
    assert isinstance(history, tuple) and history[0]["price"] == 150.50


def test_the_live_path_with_the_real_managers(market, ledger):
    """What the orchestrator's cycle and dry run do: bars and history from the two databases."""
    from database import db_manager
    from system_databse import system_db_manager
    closes = [100.0] * 50 + [99.0] * 10 + [111.0]  # sma_crossover crosses up on the last bar
    stamps = [str(START + np.timedelta64(i, "m")) + "Z" for i in range(len(closes) + 1)]
    db_manager.upsert_bars(market, [{"ticker": "AAPL", "timestamp": ts, "open": c, "high": c, "low": c, "close": c,
                                     "volume": 10} for ts, c in zip(stamps, closes + [50.0])])
    card_id = system_db_manager.create_algorithm("AAPL", "sma_crossover", 5_000.0, conn=ledger)
    system_db_manager.record_buy(card_id, 10, 100.0, timestamp="2026-01-05T14:00:00Z", conn=ledger)
    system_db_manager.record_sell(card_id, 10, 101.0, timestamp="2026-01-05T14:10:00Z", conn=ledger)
    card = system_db_manager.get_algorithm(card_id, conn=ledger)
    now = "2026-01-05T15:31:04Z"  # the 15:30 bar (close 111) has completed; the 15:31 bar (50) has not
    needed = requirements_for_card(card, now)["bars"]
    frame = db_manager.get_last_bars(market, "AAPL", needed, until=last_completed_bar_start(now))
    history = system_db_manager.get_transactions(card_id, conn=ledger)  # newest first
    decision = decide_for_card(card, frame, history, float(frame["close"].iloc[-1]), current_time=now)
    # uninvested cash 5,000 - 1,000 + 1,010 = 5,010: floor(5,010 / 111) = 45 shares
    assert (decision.action, decision.shares, decision.accepted) == ("buy", 45, True)
    assert decision.reason.endswith("buy 45 shares at ~$111.00 = $4,995.00 of $5,010.00 uninvested")


def test_building_bars_leaves_the_callers_arrays_writable():
    closes = np.array([1.0, 2.0])
    bars = Bars.from_columns(np.array(["2026-01-05T14:30", "2026-01-05T14:31"], dtype="datetime64[s]"),
                             closes, closes, closes, closes)
    closes[0] = 5.0  # still the caller's to change, and the bars do not see it
    assert bars.close.tolist() == [1.0, 2.0] and not bars.close.flags.writeable


def test_decide_for_card_runs_in_a_worker_process():
    """Everything in and out pickles, so a caller may run it under a time budget in a subprocess."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    closes = [100.0] * 50 + [99.0] * 10 + [111.0]
    args = ({"id": 4, "algorithm_type": "sma_crossover", "ticker": "AAPL", "initial_capital": 10_000.0},
            make_bars(closes), [], 111.0)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = pool.submit(decide_for_card, *args).result(timeout=120)
        failure = pool.submit(decide_for_card, {**args[0], "algorithm_type": "nope"}, *args[1:]).exception(120)
    assert remote == decide_for_card(*args) and remote.action == "buy"
    assert isinstance(failure, AlgorithmLoadError) and failure.card_id == 4
