"""What a backtest says about an algorithm: return, drawdown, trades, win rate, time in the market.

Shared by the add dialog's preview and the sweep, computed from one replay (``scripts.backtest``):
- total return: final value / capital - 1 (the replay's own final value);
- buy and hold: the same capital buys whole shares at the first bar's open and holds them;
- max drawdown: the largest fall of the card's value from an earlier peak, at bar closes;
- win rate: sells that got more than the average cost of the shares sold (the ledger's
  average-cost view), over all sells; None before the first sell;
- time in the market: the share of bars whose close found the card holding shares.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from scripts.backtest import BacktestResult, equity_curve
from system_databse.card_calculations import value_from_totals


@dataclass(frozen=True)
class Metrics:
    total_return: float          # fraction: 0.05 = +5%
    buy_hold_return: float
    max_drawdown: float          # fraction, >= 0
    trades: int
    closed_trades: int           # sells
    win_rate: Optional[float]    # fraction of sells above their average cost; None without sells
    time_in_market: float        # fraction of bars held
    final_value: float

    def to_dict(self) -> dict:
        return asdict(self)


def buy_and_hold_curve(capital: float, opens: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """The value of ``capital`` put into whole shares at the first open and held, at every close."""
    if not len(closes):
        return np.array([])
    first = float(opens[0])
    shares = math.floor(capital / first + 1e-9) if first > 0 else 0
    return value_from_totals(shares, shares * first, closes, capital)


def max_drawdown(equity: np.ndarray) -> float:
    if not len(equity):
        return 0.0
    peaks = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peaks)) if peaks.min() > 0 else 0.0


def win_rate(result: BacktestResult) -> tuple[int, Optional[float]]:
    """(sells, fraction of sells above the average cost of the shares they sold)."""
    shares, cost, sells, wins = 0, 0.0, 0, 0
    for trade in result.trades:
        if trade.side == "buy":
            shares += trade.shares
            cost += trade.shares * trade.price
            continue
        average = cost / shares if shares else 0.0
        sells += 1
        wins += trade.price > average
        cost -= average * trade.shares
        shares -= trade.shares
    return sells, (wins / sells if sells else None)


def held_fraction(result: BacktestResult, times: np.ndarray) -> float:
    """Share of the bars in ``times`` at whose close the card held shares."""
    if not len(times):
        return 0.0
    held = np.zeros(len(times), dtype=np.int64)
    fills = np.array([t.timestamp.rstrip("Z") for t in result.trades], dtype="datetime64[s]")
    index = np.searchsorted(times, fills)
    for trade, at in zip(result.trades, index):
        held[at] += trade.shares if trade.side == "buy" else -trade.shares
    return float(np.count_nonzero(np.cumsum(held) > 0)) / len(times)


def metrics(result: BacktestResult, series, first: int) -> tuple[Metrics, np.ndarray, np.ndarray]:
    """(metrics, the card's value and buy-and-hold's value at every bar close in range)."""
    equity = equity_curve(result, series, first)
    hold = buy_and_hold_curve(result.initial_capital, series.open[first:], series.close[first:])
    sells, rate = win_rate(result)
    capital = result.initial_capital
    return Metrics(
        total_return=result.final_value / capital - 1,
        buy_hold_return=float(hold[-1]) / capital - 1 if len(hold) else 0.0,
        max_drawdown=max_drawdown(equity),
        trades=len(result.trades), closed_trades=sells, win_rate=rate,
        time_in_market=held_fraction(result, series.timestamp[first:]),
        final_value=result.final_value,
    ), equity, hold
