"""Replay sma_crossover over synthetic minute bars: our backtest vs backtrader, same data, same trades.

Run: .venv/bin/pip install -r bench/requirements.txt
     .venv/bin/python -m bench.bench_backtest [--start 2024-01-02 --end 2025-12-31 --seed 7 --repeat 2]

Generates a seeded random walk of cent prices for every NYSE minute in the range into a temp
stocks.db, replays ``algorithms/sma_crossover.py`` through ``scripts.backtest`` (the CLI's code
path), then runs a backtrader strategy with the same rule on the same bars: same tie tolerance,
same warm-up, no decision after a session's last bar, market orders filled at the next bar's
open, size from the card's uninvested cash. Prints bars/s for both and the ratio, and exits 1
if the two trade lists differ. Goal: our replay at least 5x backtrader's bars/s (aim 10x).
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from database import db_manager, market_calendar
from database.create_stocks_db import create_stocks_db
from scripts.backtest import decision_points, run_backtest

TICKER = "SYN"
CAPITAL = 10_000.0


def synthetic_bars(start: str, end: str, seed: int) -> list[dict]:
    """A random walk of cent prices, one bar per market minute; open = previous close."""
    minutes = market_calendar.minutes_between(f"{start}T00:00:00Z", f"{end}T23:59:59Z")
    rng = np.random.default_rng(seed)
    closes = np.maximum(np.round(100 + np.cumsum(rng.normal(0, 0.04, len(minutes))), 2), 1.0)
    opens = np.round(np.concatenate([[100.0], closes[:-1]]), 2)
    wiggle = np.round(np.abs(rng.normal(0, 0.02, len(minutes))), 2)
    highs, lows = np.maximum(opens, closes) + wiggle, np.minimum(opens, closes) - wiggle
    volumes = rng.integers(100, 5000, len(minutes))
    return [{"ticker": TICKER, "timestamp": ts, "open": o, "high": h, "low": lo, "close": c, "volume": int(v)}
            for ts, o, h, lo, c, v in zip(minutes, opens.tolist(), highs.tolist(), lows.tolist(), closes.tolist(),
                                          volumes)]


def run_ours(conn, start: str, end: str):
    """One run: (result, series, first index, trades, seconds including loading)."""
    started = time.perf_counter()
    result, series, first = run_backtest("sma_crossover", TICKER, f"{start}T00:00:00Z", f"{end}T23:59:59Z",
                                         CAPITAL, conn=conn)
    total = time.perf_counter() - started
    trades = [(t.timestamp, t.side, t.shares, round(t.price, 2)) for t in result.trades]
    return result, series, first, trades, total


def _run_backtrader_once(frame, allowed: set[int]):
    import backtrader as bt

    from algorithms.sma_crossover import FAST, SLOW, TIE_LOOKBACK, TIE_TOLERANCE

    warmup = SLOW + 1 + TIE_LOOKBACK

    class SmaCross(bt.Strategy):
        def __init__(self):
            self.fast = bt.indicators.SMA(self.data.close, period=FAST)
            self.slow = bt.indicators.SMA(self.data.close, period=SLOW)
            self.last_sign = 0
            self.shares, self.invested = 0, 0.0  # the card's ledger, as card_calculations defines it
            self.fills = []

        def notify_order(self, order):
            if order.status != order.Completed:
                return
            size, price = abs(int(order.executed.size)), order.executed.price
            side = "buy" if order.isbuy() else "sell"
            self.shares += size if side == "buy" else -size
            self.invested += size * price if side == "buy" else -size * price
            stamp = bt.num2date(order.executed.dt).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.fills.append((stamp, side, size, round(price, 2)))

        def next(self):
            fast, slow = self.fast[0], self.slow[0]
            spread = fast - slow
            sign = 0 if abs(spread) <= TIE_TOLERANCE * abs(slow) else (1 if spread > 0 else -1)
            previous = self.last_sign
            if sign:
                self.last_sign = sign
            index = len(self.data) - 1
            if len(self.data) < warmup or index not in allowed or not sign or not previous or sign == previous:
                return
            if sign > 0:
                cash, price = CAPITAL - self.invested, self.data.close[0]
                shares = int(math.floor(cash / price + 1e-9)) if cash > 0 else 0
                if shares > 0:
                    self.buy(size=shares)
            elif self.shares > 0:
                self.sell(size=self.shares)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(1e12)  # the strategy keeps the card's own cash; the broker never refuses
    cerebro.adddata(bt.feeds.PandasData(dataname=frame, timeframe=bt.TimeFrame.Minutes))
    cerebro.addstrategy(SmaCross)
    started, cpu_started = time.perf_counter(), time.process_time()
    strategy = cerebro.run()[0]
    return strategy.fills, time.perf_counter() - started, time.process_time() - cpu_started


def first_difference(ours: list, theirs: list) -> str:
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            return f"trade {index}: ours {a} vs backtrader {b}"
    return f"ours has {len(ours)} trades, backtrader {len(theirs)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2024-01-02")
    parser.add_argument("--end", default="2025-12-31")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each engine; the best time counts")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("backtrader") is None:
        print("error: backtrader is benchmark-only: .venv/bin/pip install -r bench/requirements.txt", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stocks.db"
        create_stocks_db(path)
        conn = db_manager.get_connection(path)
        bars = synthetic_bars(args.start, args.end, args.seed)
        db_manager.upsert_bars(conn, bars)
        print(f"{len(bars):,} synthetic minute bars of {TICKER}, {args.start} .. {args.end} (seed {args.seed})")

        frame = db_manager.get_bars_between(conn, TICKER, f"{args.start}T00:00:00Z", f"{args.end}T23:59:59Z")
        frame.index = frame.index.tz_localize(None)  # backtrader wants naive datetimes (these are UTC)
        best_ours = best_bt = None
        for _ in range(args.repeat):  # alternate the engines, so both meet the same load
            run = run_ours(conn, args.start, args.end)
            if best_ours is None or run[0].seconds < best_ours[0].seconds:
                best_ours = run
            allowed = {int(i) - run[2] for i in decision_points(run[1].timestamp, run[2]).index}
            fills, wall, cpu = _run_backtrader_once(frame, allowed)
            best_bt = (fills, min(wall, best_bt[1]), min(cpu, best_bt[2])) if best_bt else (fills, wall, cpu)
        conn.close()
    result, _series, _first, ours, total = best_ours
    theirs, bt_seconds, bt_cpu = best_bt
    cpu = result.cpu_seconds

    ours_rate, bt_rate = result.bars_per_second, len(frame) / bt_seconds
    print(f"ours:       {result.seconds:6.2f} s replay  {ours_rate:>10,.0f} bars/s   "
          f"({total:.2f} s with loading from stocks.db: {result.bars / total:,.0f} bars/s; CPU {cpu:.2f} s)")
    print(f"backtrader: {bt_seconds:6.2f} s run     {bt_rate:>10,.0f} bars/s   (CPU {bt_cpu:.2f} s)")
    ratio = ours_rate / bt_rate
    cpu_ratio = (result.bars / cpu) / (len(frame) / bt_cpu) if cpu and bt_cpu else float("nan")
    print(f"ratio:      {ratio:.1f}x wall, {cpu_ratio:.1f}x CPU time (goal >= 20x): "
          f"{'met' if ratio >= 20 else 'NOT met'}")
    print(f"trades:     ours {len(ours):,}, backtrader {len(theirs):,}, final value ${result.final_value:,.2f}")
    if ours != theirs:
        print(f"MISMATCH: {first_difference(ours, theirs)}", file=sys.stderr)
        return 1
    print("trades identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
