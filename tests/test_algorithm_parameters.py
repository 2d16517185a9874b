"""Algorithm parameters: declared on the class, read without running the file, checked, and used the
same way by the live cycle, the dry run and the backtest."""
from __future__ import annotations

from datetime import timedelta

import math

import pytest

from algorithms import (ALGORITHMS_DIR, AlgorithmError, AlgorithmLoadError, ParameterError, available_algorithms, class_parameters,
                        decide_for_card, load_algorithm_class, parameters_for, parse_assignments, static_parameters)
from algorithms.sma_crossover import Algorithm as SmaCrossover
from database import db_manager, market_calendar
from orchestra.card_runner import CardRunner
from orchestra.cycle import preview
from scripts import backtest
from system_databse import system_db_manager as manager
from tests.test_backtest import DAY, bars_for

FAST_SLOW = {"fast": 5, "slow": 12}


def wave_closes() -> list[float]:
    """A day of cent prices swinging 2% every 40 minutes and drifting: short windows cross often."""
    return [round(100 + 2 * math.sin(2 * math.pi * i / 40) + i * 0.01, 2) for i in range(390)]


def test_the_shipped_algorithms_declare_their_parameters_readably_without_running_them():
    declared = {info.name: [(p.name, p.type, p.default, p.min, p.max) for p in info.parameters]
                for info in available_algorithms()}
    assert declared == {
        "bollinger_reversion": [("window", "int", 20, 2, 400), ("width", "float", 2.0, 0.1, 5.0)],
        "lot_take_profit": [("take_profit", "float", 0.02, 0.001, 0.5), ("stop_loss", "float", 0.01, 0.001, 0.5),
                            ("lot_size", "float", 0.25, 0.01, 1.0)],
        "sma_crossover": [("fast", "int", 20, 2, 200), ("slow", "int", 50, 3, 400)],
    }
    for info in available_algorithms():
        source = (ALGORITHMS_DIR / f"{info.name}.py").read_bytes()
        assert static_parameters(source) == class_parameters(load_algorithm_class(info.name))
    assert all(p.help for info in available_algorithms() for p in info.parameters)


def test_an_instance_sees_its_defaults_and_the_framework_sets_a_cards_values():
    assert dict(SmaCrossover("AAPL", 1000).params) == {"fast": 20, "slow": 50}
    assert SmaCrossover("AAPL", 1000).get_data_requirements("2026-01-05T15:00:00Z") == {"bars": 61}
    params = parameters_for(SmaCrossover, FAST_SLOW)
    from algorithms import instantiate

    algorithm = instantiate(SmaCrossover, "AAPL", 1000, params=params)
    assert algorithm.get_data_requirements("2026-01-05T15:00:00Z") == {"bars": 23}
    with pytest.raises(TypeError):
        algorithm.params["fast"] = 7  # read-only


@pytest.mark.parametrize("values, words", [
    ({"fast": "10"}, "parameter 'fast' must be an integer from 2 to 200, got '10'"),
    ({"fast": 10.5}, "parameter 'fast' must be an integer from 2 to 200, got 10.5"),
    ({"fast": True}, "parameter 'fast' must be an integer"),
    ({"slow": 401}, "parameter 'slow' must be an integer from 3 to 400, got 401"),
    ({"fast": 1}, "from 2 to 200, got 1"),
    ({"speed": 3}, "unknown parameter(s) 'speed'; allowed: fast, slow"),
])
def test_values_are_checked_against_the_declaration(values, words):
    with pytest.raises(AlgorithmError) as refused:
        parameters_for(SmaCrossover, values)
    assert words in str(refused.value)


def test_command_line_values_are_parsed_by_type():
    specs = class_parameters(load_algorithm_class("lot_take_profit"))
    assert parse_assignments(specs, ["take_profit=0.05", "lot_size=1"]) == {"take_profit": 0.05, "lot_size": 1.0}
    with pytest.raises(ParameterError, match="'stop_loss' must be a number from 0.001 to 0.5, got 'abc'"):
        parse_assignments(specs, ["stop_loss=abc"])
    with pytest.raises(ParameterError, match="needs name=value"):
        parse_assignments(specs, ["take_profit"])


BROKEN_DECLARATIONS = [
    ('{"n": {"type": "int", "default": WINDOW, "min": 1, "max": 9}}', "must be a plain literal"),
    ('{"n": {"type": "int", "default": 0, "min": 1, "max": 9}}', "the default 0 is not an integer from 1 to 9"),
    ('{"n": {"type": "integer", "default": 1, "min": 1, "max": 9}}', "'type'] must be one of int, float, choice"),
    ('{"n": {"type": "choice", "default": "x", "choices": []}}', "needs a non-empty 'choices' list"),
    ('{"n": {"type": "float", "default": 1.0, "min": 2, "max": 1}}', "needs numeric 'min' <= 'max'"),
    ('{"n": {"type": "int", "default": 1, "min": 1, "max": 9, "step": 1}}', "unknown key(s) ['step']"),
]


@pytest.mark.parametrize("declaration, words", BROKEN_DECLARATIONS)
def test_a_declaration_that_does_not_fit_makes_the_file_unusable_with_a_message(tmp_path, declaration, words):
    (tmp_path / "windowed.py").write_text(
        '"""Windowed."""\nfrom algorithms._framework import AlgorithmBase\nWINDOW = 5\n\n\n'
        f"class Algorithm(AlgorithmBase):\n    parameters = {declaration}\n\n"
        "    def on_data(self, bars, transaction_history):\n        return 'hold', 0\n")
    with pytest.raises(AlgorithmLoadError) as refused:
        load_algorithm_class("windowed", tmp_path)
    assert words in refused.value.message


def test_an_algorithm_without_parameters_loads_and_trades_unchanged(tmp_path):
    (tmp_path / "plain.py").write_text(
        '"""Plain: buys one share."""\nclass Algorithm:\n    __slots__ = ("ticker",)\n\n'
        "    def __init__(self, ticker, initial_capital):\n        self.ticker = ticker\n\n"
        "    def get_data_requirements(self, current_time):\n        return {'bars': 1}\n\n"
        "    def on_data(self, bars, transaction_history):\n        return 'buy', 1\n")
    [info] = available_algorithms(tmp_path)
    assert (info.name, info.parameters) == ("plain", ())
    card = {"id": 1, "algorithm_type": "plain", "ticker": "AAPL", "initial_capital": 1000.0, "parameters": {}}
    bars = {"open": [10.0], "high": [10.0], "low": [10.0], "close": [10.0], "volume": [1.0]}
    import pandas as pd

    frame = pd.DataFrame(bars, index=pd.DatetimeIndex(["2026-01-05T14:30:00Z"]))
    decision = decide_for_card(card, frame, [], 10.0, directory=tmp_path)
    assert (decision.action, decision.shares) == ("buy", 1)


# --------------------------------------------------------------------------- same decisions everywhere


@pytest.fixture
def day(market, stocks_db):
    db_manager.upsert_bars(market, bars_for(DAY, wave_closes()))
    return market


def backtest_trades(conn, parameters):
    result, _series, _first = backtest.run_backtest("sma_crossover", "AAPL", f"{DAY}T00:00:00Z",
                                                    f"{DAY}T23:59:59Z", 10_000.0, conn=conn, parameters=parameters)
    return [(t.decided_at, t.side, t.shares, t.price) for t in result.trades]


def live_trades(runner, ledger, market, card):
    """Walk the day minute by minute through the orchestrator's card runner, filling as the backtest does."""
    minutes = market_calendar.minutes_between(f"{DAY}T00:00:00Z", f"{DAY}T23:59:59Z")
    opens = {b["timestamp"]: b["open"] for b in bars_for(DAY, wave_closes())}
    trades = []
    for minute, next_minute in zip(minutes[:-2], minutes[1:-1]):
        made = runner.decide(card, market_calendar.parse_utc(minute).to_pydatetime())
        if made.decision.is_trade:
            price = opens[next_minute]
            record = manager.record_buy if made.decision.action == "buy" else manager.record_sell
            record(card["id"], made.decision.shares, price, timestamp=next_minute, conn=ledger)
            trades.append((next_minute, made.decision.action, made.decision.shares, price))
    return trades


def test_live_cycle_and_backtest_take_the_same_decisions_with_a_cards_parameters(day, ledger, market):
    expected = backtest_trades(day, FAST_SLOW)
    assert len(expected) >= 6 and expected != backtest_trades(day, None)  # the parameters change the trades
    card_id = manager.create_algorithm("AAPL", "sma_crossover", 10_000.0, conn=ledger)
    manager.set_algorithm_parameters(card_id, FAST_SLOW, conn=ledger)
    card = manager.get_algorithm(card_id, conn=ledger)
    live = live_trades(CardRunner(market, ledger, timeout=5), ledger, market, card)
    assert [(side, shares, price) for _t, side, shares, price in live] == \
        [(side, shares, price) for _t, side, shares, price in expected]
    fills = [t.timestamp for t in backtest.run_backtest("sma_crossover", "AAPL", f"{DAY}T00:00:00Z",
                                                        f"{DAY}T23:59:59Z", 10_000.0, conn=day,
                                                        parameters=FAST_SLOW)[0].trades]
    assert [t[0] for t in live] == fills


def test_the_dry_run_uses_overrides_only_where_the_algorithm_declares_them(day, ledger, market):
    first_decision = backtest_trades(day, FAST_SLOW)[0]
    minute = market_calendar.parse_utc(first_decision[0]).to_pydatetime() - timedelta(minutes=1)
    sma = manager.create_algorithm("AAPL", "sma_crossover", 10_000.0, conn=ledger)
    manager.set_algorithm_parameters(sma, {"fast": 20, "slow": 50}, conn=ledger)
    manager.create_algorithm("AAPL", "bollinger_reversion", 10_000.0, conn=ledger)  # declares no 'fast'
    runner = CardRunner(market, ledger, timeout=5)
    line, other = preview(runner, ledger, market, minute)
    assert "HOLD" in line
    runner.parameter_overrides = {"fast": "5", "slow": "12"}
    line, same_other = preview(runner, ledger, market, minute)
    assert f"would BUY {first_decision[2]} shares" in line
    assert same_other == other and "bollinger_reversion" in other and "ERROR" not in other
    runner.parameter_overrides = {"fast": "500"}
    line, _ = preview(runner, ledger, market, minute)
    assert line.endswith("ERROR - --param: parameter 'fast' must be an integer from 2 to 200, got 500")


def test_backtest_cli_takes_parameters_and_refuses_bad_ones_in_one_line(day, stocks_db, capsys):
    code = backtest.main(["sma_crossover", "AAPL", "--start", DAY, "--end", DAY, "--db", str(stocks_db),
                          "--param", "fast=5", "--param", "slow=12", "--no-progress"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "parameters    fast=5, slow=12" in out
    assert f"trades        {len(backtest_trades(day, FAST_SLOW))}" in out
    code = backtest.main(["sma_crossover", "AAPL", "--start", DAY, "--end", DAY, "--db", str(stocks_db),
                          "--param", "fast=1.5"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err == "error: parameter 'fast' must be an integer from 2 to 200, got '1.5'\n"
