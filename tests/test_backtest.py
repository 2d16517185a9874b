"""Backtest CLI and replay on hand-made bars in a temp stocks.db (system.db is never touched).

The day (2026-01-05, session 14:30-21:00 UTC) is built so that sma_crossover crosses up after bar
60 and down after bar 150 (checked below with exact fractions):
- bars 0-49 close 100, bars 50-59 close 99, bar 60 closes 111 (SMA20 100.05 > SMA50 100.02),
- then the close rises a cent a minute (SMA20 stays above SMA50), and bar 150 closes at 80;
- opens equal the previous close except bar 61 (110.90) and bar 151 (80.50), the fills.
With $10,000: buy floor(10,000 / 111) = 90 shares at 110.90 (9,981.00), sell 90 at 80.50
(7,245.00): final value 10,000 - 9,981 + 7,245 = 7,264.00, P&L -2,736.00.
"""
from __future__ import annotations

import re
import sys
from fractions import Fraction

import numpy as np
import pytest

from algorithms import decide_for_card, load_algorithm_class
from database import db_manager, market_calendar
from orchestra.card_runner import price_age
from scripts import backtest

DAY = "2026-01-05"
FILL_OPENS = {61: 110.90, 151: 80.50}


def day_closes() -> list[float]:
    closes = [100.0] * 50 + [99.0] * 10 + [111.0]
    while len(closes) < 150:
        closes.append(round(closes[-1] + 0.01, 2))
    closes.append(80.0)
    closes += [80.0] * (390 - len(closes))
    return closes


def bars_for(day: str, closes: list[float], ticker: str = "AAPL", fill_opens=None) -> list[dict]:
    minutes = market_calendar.minutes_between(f"{day}T00:00:00Z", f"{day}T23:59:59Z")[: len(closes)]
    opens = [closes[0]] + closes[:-1]
    for index, price in (fill_opens or {}).items():
        opens[index] = price
    return [{"ticker": ticker, "timestamp": ts, "open": o, "high": max(o, c) + 0.1, "low": min(o, c) - 0.1,
             "close": c, "volume": 100} for ts, o, c in zip(minutes, opens, closes)]


def exact_crosses(closes: list[float]) -> list[int]:
    """Stateful reference with exact arithmetic: indexes of bars after which the sign flips."""
    values = [Fraction(str(c)) for c in closes]
    crosses, last = [], 0
    for t in range(49, len(values)):
        spread = sum(values[t - 19:t + 1]) / 20 - sum(values[t - 49:t + 1]) / 50
        sign = (spread > 0) - (spread < 0)
        if sign and last and sign != last:
            crosses.append(t)
        last = sign or last
    return crosses


@pytest.fixture
def day_db(market, stocks_db):
    db_manager.upsert_bars(market, bars_for(DAY, day_closes(), fill_opens=FILL_OPENS))
    return stocks_db


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = backtest.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_hand_made_day_crosses_where_the_docstring_says():
    assert exact_crosses(day_closes()) == [60, 150]


def test_the_cli_prints_trades_final_value_pnl_and_throughput(day_db, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOTRADER_SYSTEM_DB", str(tmp_path / "never.db"))
    code, out, err = run_cli(capsys, "sma_crossover", "aapl", "--start", DAY, "--end", DAY, "--capital", "10000",
                             "--no-progress")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == ("sma_crossover on AAPL: 390 bars 2026-01-05T14:30:00Z .. 2026-01-05T20:59:00Z, "
                        "capital $10,000.00")
    buy = next(line for line in lines if " buy " in line)
    sell = next(line for line in lines if " sell " in line)
    assert buy.split()[:5] == ["2026-01-05T15:31:00Z", "buy", "90", "110.90", "9,981.00"]
    assert "SMA20 100.0500 crossed above SMA50 100.0200" in buy
    assert sell.split()[:5] == ["2026-01-05T17:01:00Z", "sell", "90", "80.50", "7,245.00"]
    assert "final value   $7,264.00" in out
    assert "P&L           -$2,736.00 (-27.36%)" in out
    assert "trades        2" in out
    assert "bars          390 (389 decisions)" in out  # not after the session's last bar
    assert " bars/s" in out
    assert not (tmp_path / "never.db").exists()


def test_each_backtest_decision_equals_the_live_path_on_the_same_window(day_db, market):
    result, series, first = backtest.run_backtest("sma_crossover", "AAPL", f"{DAY}T00:00:00Z", f"{DAY}T23:59:59Z",
                                                  10_000.0, conn=market)
    card = {"id": 1, "algorithm_type": "sma_crossover", "ticker": "AAPL", "initial_capital": 10_000.0}
    assert [(trade.side, trade.shares) for trade in result.trades] == [("buy", 90), ("sell", 90)]
    history = []
    for trade in result.trades:
        decided_at = trade.decided_at
        window = db_manager.get_last_bars(market, "AAPL", 61, until=backtest_last_bar(decided_at))
        newest = window.index[-1].strftime("%Y-%m-%dT%H:%M:%SZ")
        age = price_age(newest, market_calendar.parse_utc(backtest_last_bar(decided_at)).to_pydatetime())
        live = decide_for_card(card, window, history, float(window["close"].iloc[-1]), current_time=decided_at,
                               price_age=age)
        assert (live.action, live.shares, live.reason) == (trade.side, trade.shares, trade.reason)
        history.append({"id": len(history) + 1, "type": trade.side, "shares": trade.shares, "price": trade.price,
                        "timestamp": trade.timestamp})


def backtest_last_bar(decided_at: str) -> str:
    from algorithms import last_completed_bar_start
    return last_completed_bar_start(decided_at)


def test_warm_up_bars_come_from_before_the_start_date(market, stocks_db):
    closes = day_closes()
    db_manager.upsert_bars(market, bars_for("2026-01-02", closes[:40]))  # 40 bars on the Friday
    db_manager.upsert_bars(market, bars_for(DAY, closes[40:200]))  # the cross is now Monday's bar 20
    result, _series, first = backtest.run_backtest("sma_crossover", "AAPL", f"{DAY}T00:00:00Z",
                                                   f"{DAY}T23:59:59Z", 10_000.0, conn=market)
    assert first == 40 and result.bars == 160
    assert result.trades[0].timestamp == "2026-01-05T14:51:00Z" and result.trades[0].side == "buy"


def test_no_decision_after_the_sessions_last_bar(market, stocks_db):
    closes = day_closes()[:61]  # the crossing bar is the last one of Friday's list...
    friday = bars_for("2026-01-02", [100.0] * (390 - 61) + closes)  # ...and the last minute of the session
    db_manager.upsert_bars(market, friday + bars_for(DAY, [111.0] * 10))
    result, _s, _f = backtest.run_backtest("sma_crossover", "AAPL", "2026-01-02T00:00:00Z", f"{DAY}T23:59:59Z",
                                           10_000.0, conn=market)
    assert result.trades == []  # live trading has no cycle at the close, and Monday sees no new cross


def test_a_decision_after_the_final_bar_is_not_filled(market, stocks_db):
    db_manager.upsert_bars(market, bars_for(DAY, day_closes()[:61]))  # ends on the crossing bar
    result, _s, _f = backtest.run_backtest("sma_crossover", "AAPL", f"{DAY}T00:00:00Z", f"{DAY}T23:59:59Z",
                                           10_000.0, conn=market)
    assert result.trades == [] and result.final_value == 10_000.0


def test_refused_decisions_are_counted_and_reported(day_db, market):
    from pathlib import Path
    cls = load_algorithm_class("returns_float_shares", Path(__file__).parent / "algorithm_files")
    series, first = backtest.load_series(market, "AAPL", f"{DAY}T00:00:00Z", f"{DAY}T23:59:59Z", 1)
    result = backtest.replay(cls, series, first, ticker="AAPL", initial_capital=1000.0)
    assert result.trades == [] and len(result.refused) == 389
    report = backtest.format_report(result)
    assert "389 decisions refused by the checker, first: 2026-01-05T14:31:00Z refused: shares must be a whole" in report


def test_progress_is_reported_for_every_decision(day_db, market):
    series, first = backtest.load_series(market, "AAPL", f"{DAY}T00:00:00Z", f"{DAY}T23:59:59Z", 61)
    seen = []
    backtest.replay(load_algorithm_class("sma_crossover"), series, first, ticker="AAPL", initial_capital=1e4,
                    progress=seen.append)
    assert sum(seen) == 389


def test_the_equity_curve_follows_the_ledger(day_db, market):
    result, series, first = backtest.run_backtest("sma_crossover", "AAPL", f"{DAY}T00:00:00Z", f"{DAY}T23:59:59Z",
                                                  10_000.0, conn=market)
    curve = backtest.equity_curve(result, series, first)
    assert len(curve) == 390
    assert curve[60] == 10_000.0  # decided, not yet filled
    assert curve[61] == pytest.approx(10_000.0 - 9_981.0 + 90 * 111.01)  # filled at 110.90, valued at the close
    assert curve[-1] == pytest.approx(7_264.0)


def test_the_png_has_the_equity_curve(day_db, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "equity.png"
    code, out, err = run_cli(capsys, "sma_crossover", "AAPL", "--start", DAY, "--end", DAY, "--png", str(target),
                             "--no-progress")
    assert code == 0, err
    assert f"equity curve written to {target}" in out
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000


def test_the_png_without_matplotlib_is_a_clear_error(day_db, capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run_cli(capsys, "sma_crossover", "AAPL", "--start", DAY, "--end", DAY,
                             "--png", str(tmp_path / "x.png"), "--no-progress")
    assert code == 2
    assert err == ("error: --png needs matplotlib, which is not part of the runtime set: "
                   ".venv/bin/pip install -r bench/requirements.txt\n")


@pytest.mark.parametrize("args, message", [
    (["nope", "AAPL", "--start", DAY, "--end", DAY],
     "error: unknown algorithm 'nope'; available: bollinger_reversion, lot_take_profit, sma_crossover"),
    (["../x", "AAPL", "--start", DAY, "--end", DAY], "error: invalid algorithm type '../x'"),
    (["sma_crossover", "ZZZZ", "--start", DAY, "--end", DAY],
     "error: no bars for ZZZZ in stocks.db between 2026-01-05 and 2026-01-05; pull them with"),
    (["sma_crossover", "AAPL", "--start", "2026-01-06", "--end", "2026-01-31"],
     "error: no bars for AAPL in stocks.db between 2026-01-06 and 2026-01-31"),
    (["sma_crossover", "AAPL", "--start", "2026-13-01", "--end", DAY], "error: bad start date '2026-13-01'"),
    (["sma_crossover", "AAPL", "--start", DAY, "--end", "soon"], "error: bad end date 'soon': use YYYY-MM-DD"),
    (["sma_crossover", "AAPL", "--start", DAY, "--end", "2026-01-02"],
     "error: end date 2026-01-02 is before start date 2026-01-05"),
    (["sma_crossover", "AAPL", "--start", DAY, "--end", DAY, "--capital", "0"], "error: capital must be a positive"),
    (["sma_crossover", "AAPL", "--start", DAY, "--end", DAY, "--capital", "nan"], "error: capital must be a positive"),
    (["sma_crossover", "AAPL", "--start", DAY, "--end", DAY, "--max-trades", "-1"],
     "error: --max-trades must be 0 (all) or more, got -1"),
    (["sma_crossover", "AAPL", "--start", DAY, "--end", DAY, "--png", "/no/such/dir/x.png"],
     "error: cannot write /no/such/dir/x.png: folder /no/such/dir does not exist"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(day_db, capsys, args, message):
    code, out, err = run_cli(capsys, *args, "--no-progress")
    assert code != 0 and out == ""
    assert err.startswith(message), err
    assert err.count("\n") == 1


def test_a_missing_stocks_db_is_reported(capsys, tmp_path):
    code, out, err = run_cli(capsys, "sma_crossover", "AAPL", "--start", DAY, "--end", DAY,
                             "--db", str(tmp_path / "none.db"))
    assert code == 1 and err.startswith("error: stocks database not found at")


def test_bar_arrays_match_the_frame_reader(day_db, market):
    arrays = db_manager.get_bar_arrays(market, "aapl", f"{DAY}T15:00:00Z", f"{DAY}T15:09:00Z")
    frame = db_manager.get_bars_between(market, "AAPL", f"{DAY}T15:00:00Z", f"{DAY}T15:09:00Z")
    assert len(arrays["close"]) == 10
    assert arrays["timestamp"][0] == np.datetime64("2026-01-05T15:00:00")
    for column in ("open", "high", "low", "close", "volume"):
        assert arrays[column].tolist() == frame[column].tolist()
    empty = db_manager.get_bar_arrays(market, "NONE", f"{DAY}T15:00:00Z", f"{DAY}T15:09:00Z")
    assert {name: len(values) for name, values in empty.items()} == dict.fromkeys(
        ("timestamp", "open", "high", "low", "close", "volume"), 0)


def test_an_algorithm_error_names_the_bar(day_db, market):
    from pathlib import Path
    from algorithms import AlgorithmError
    cls = load_algorithm_class("raises_in_on_data", Path(__file__).parent / "algorithm_files")
    series, first = backtest.load_series(market, "AAPL", f"{DAY}T00:00:00Z", f"{DAY}T23:59:59Z", 2)
    with pytest.raises(AlgorithmError, match="after the bar ending 2026-01-05T14:32:00Z: on_data raised "
                                             "ZeroDivisionError"):
        backtest.replay(cls, series, first, ticker="AAPL", initial_capital=1000.0, algorithm_type="raises_in_on_data")


@pytest.mark.parametrize("args, message", [
    (["sma_crossover", "AAPL", "--end", DAY], "error: the following arguments are required: --start"),
    (["sma_crossover", "AAPL", "--start", DAY, "--end", DAY, "--capital", "lots"],
     "error: argument --capital: invalid float value: 'lots'"),
])
def test_usage_errors_are_one_line_too(day_db, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        backtest.main(args)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


def test_the_benchmark_finds_the_same_trades_as_backtrader_on_a_week(capsys):
    pytest.importorskip("backtrader")  # benchmark-only: bench/requirements.txt
    from bench import bench_backtest
    assert bench_backtest.main(["--start", "2025-06-02", "--end", "2025-06-06", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "1,950 synthetic minute bars of SYN" in out and "trades identical" in out
    trades = re.search(r"trades:\s+ours (\d[\d,]*\d|\d), backtrader (\d[\d,]*\d|\d)", out)
    assert trades.group(1) == trades.group(2) and int(trades.group(1).replace(",", "")) > 10


def test_a_failing_get_data_requirements_names_the_bar_too(day_db, market, tmp_path):
    from algorithms import AlgorithmError
    (tmp_path / "late.py").write_text(
        "class Algorithm:\n"
        "    def __init__(self, ticker, initial_capital):\n        pass\n"
        "    def get_data_requirements(self, current_time):\n"
        "        if current_time > '2026-01-05T15:00:00Z':\n            raise ValueError('too late')\n"
        "        return {'bars': 1}\n"
        "    def on_data(self, bars, transaction_history):\n        return ('hold', 0)\n")
    series, first = backtest.load_series(market, "AAPL", f"{DAY}T00:00:00Z", f"{DAY}T23:59:59Z", 1)
    with pytest.raises(AlgorithmError, match="after the bar ending 2026-01-05T15:01:00Z: get_data_requirements "
                                             "raised ValueError: too late"):
        backtest.replay(load_algorithm_class("late", tmp_path), series, first, ticker="AAPL", initial_capital=1e3)


HOLDER = ('"""Buys 50 shares on its first decision and holds."""\n\n\nclass Algorithm:\n'
          "    def __init__(self, ticker, initial_capital):\n        pass\n\n"
          "    def get_data_requirements(self, current_time):\n        return {'bars': 1}\n\n"
          "    def on_data(self, bars, transaction_history):\n"
          "        return ('hold', 0) if transaction_history else ('buy', 50)\n")


@pytest.fixture
def two_days(market, stocks_db, tmp_path):
    db_manager.upsert_bars(market, bars_for(DAY, [100.0] * 390) + bars_for("2026-01-06", [100.0] * 390))
    (tmp_path / "algos").mkdir()
    (tmp_path / "algos" / "holder.py").write_text(HOLDER)
    return tmp_path / "algos"


def test_dividends_are_paid_on_the_shares_held_at_the_ex_date_open_when_asked(two_days, market):
    dividend = backtest.Dividend("2026-01-06T14:30:00Z", 0.5)
    plain, _, _ = backtest.run_backtest("holder", "AAPL", f"{DAY}T00:00:00Z", "2026-01-06T23:59:59Z", 10_000.0,
                                        conn=market, directory=two_days)
    paid, series, first = backtest.run_backtest("holder", "AAPL", f"{DAY}T00:00:00Z", "2026-01-06T23:59:59Z",
                                                10_000.0, conn=market, directory=two_days, dividends=(dividend,))
    assert paid.dividends == [backtest.DividendPaid("2026-01-06T14:30:00Z", 50, 0.5, 25.0)]
    assert paid.final_value - plain.final_value == 25.00 and paid.pnl == 25.00
    curve = backtest.equity_curve(paid, series, first)
    assert (curve[389], curve[390]) == (10_000.0, 10_025.0)  # the step is at the ex-date open
    assert "dividend $0.5/share on 50 shares: +$25.00" in backtest.format_report(paid)


def test_a_dividend_before_a_split_is_restated_per_split_adjusted_share():
    actions = [{"kind": "cash_dividend", "ex_date": "2024-03-05", "effective_at": "2024-03-05T14:30:00Z",
                "rate": 0.04},
               {"kind": "forward_split", "ex_date": "2024-06-10", "effective_at": "2024-06-10T13:30:00Z",
                "new_rate": 10.0, "old_rate": 1.0},
               {"kind": "cash_dividend", "ex_date": "2024-09-12", "effective_at": "2024-09-12T13:30:00Z",
                "rate": 0.01}]
    assert backtest.dividends_from_actions(actions) == [backtest.Dividend("2024-03-05T14:30:00Z", 0.004),
                                                        backtest.Dividend("2024-09-12T13:30:00Z", 0.01)]


def test_the_cli_reads_dividends_from_the_data_api_with_the_flag(two_days, stocks_db, capsys, monkeypatch,
                                                                 paper_exchange_factory):
    import requests

    exchange = paper_exchange_factory(start="2026-01-05T12:00:00Z", speed=0)
    requests.post(f"{exchange.base_url}/_sim/corporate_actions", timeout=30, json={
        "symbol": "AAPL", "type": "cash_dividend", "ex_date": "2026-01-06", "rate": 0.5}).raise_for_status()
    for key, value in exchange.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(backtest, "load_algorithm_class",
                        lambda name, directory=None: load_algorithm_class(name, two_days))
    monkeypatch.setattr(backtest, "cli_parameters", lambda *a, **k: {})
    args = ["holder", "AAPL", "--start", DAY, "--end", "2026-01-06", "--db", str(stocks_db), "--no-progress"]
    code, plain, _ = run_cli(capsys, *args)
    code_paid, paid, _ = run_cli(capsys, *args, "--dividends")
    assert (code, code_paid) == (0, 0)
    assert "final value   $10,000.00\n" in plain and "dividend" not in plain
    assert "final value   $10,025.00 (dividends $25.00)" in paid
