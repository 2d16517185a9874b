"""A card's price and value over a window, rebuilt from minute bars and its transactions.

At each bar the card holds what its transactions up to the end of that minute left it with, so
value = shares * close + initial_capital - net invested, the same formula as the card itself.
Long windows are thinned to at most ``max_points`` evenly spaced bars (first and last kept);
trades are listed separately so none disappears from the chart when its bar is thinned out.
"""
from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from database import db_manager
from system_databse import card_calculations, system_db_manager

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
WINDOWS: Dict[str, Optional[timedelta]] = {
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "5d": timedelta(days=5),
    "1m": timedelta(days=30),
    "3m": timedelta(days=90),
    "1y": timedelta(days=365),
    "all": None,
}
BAR = pd.Timedelta(minutes=1)


def _utc(stamp: str) -> pd.Timestamp:
    return pd.Timestamp(stamp).tz_convert("UTC")


def _sample(count: int, max_points: int) -> np.ndarray:
    if count <= max_points:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, max_points).round().astype(int))


def _holdings(bar_times: pd.DatetimeIndex, trades: List[Dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Shares held and net invested cash at the close of each bar."""
    if not trades:
        return np.zeros(len(bar_times)), np.zeros(len(bar_times))
    signs = np.array([1 if t["type"] == "buy" else -1 for t in trades])
    shares = np.array([t["shares"] for t in trades], dtype=float) * signs
    cash = np.array([t["shares"] * t["price"] for t in trades], dtype=float) * signs
    trade_times = pd.DatetimeIndex([_utc(t["timestamp"]) for t in trades])
    done = np.searchsorted(trade_times.asi8, (bar_times + BAR).asi8, side="left")
    cum_shares = np.concatenate([[0.0], np.cumsum(shares)])
    cum_cash = np.concatenate([[0.0], np.cumsum(cash)])
    return cum_shares[done], cum_cash[done]


def card_history(system: sqlite3.Connection, stocks: sqlite3.Connection, algo: Dict[str, Any],
                 window: str, max_points: int) -> Dict[str, Any]:
    """The series for one card; empty when its ticker has no bar since the card was created."""
    trades = sorted(system_db_manager.get_transactions(algo["id"], conn=system), key=lambda t: (t["timestamp"], t["id"]))
    capital = float(algo["initial_capital"])
    result = {"id": algo["id"], "ticker": algo["ticker"], "window": window, "initial_capital": capital,
              "start": None, "end": None, "bar_count": 0, "downsampled": False, "points": [], "trades": []}
    latest = db_manager.get_latest_price(stocks, algo["ticker"])
    created = _utc(algo["created_at"]).floor("min")
    if latest is None or _utc(latest["timestamp"]) < created:
        return result
    end = _utc(latest["timestamp"])
    span = WINDOWS[window]
    start = created if span is None else max(created, end - span)
    bars = db_manager.get_bars_between(stocks, algo["ticker"], start.strftime(TIMESTAMP_FORMAT),
                                       end.strftime(TIMESTAMP_FORMAT))
    picked = _sample(len(bars), max_points)
    times = bars.index[picked]
    closes = bars["close"].to_numpy()[picked]
    shares, invested = _holdings(times, trades)
    values = [card_calculations.value_from_totals(s, i, c, capital) for s, i, c in zip(shares, invested, closes)]
    result.update(
        start=start.strftime(TIMESTAMP_FORMAT), end=end.strftime(TIMESTAMP_FORMAT), bar_count=len(bars),
        downsampled=len(picked) < len(bars),
        points=[{"timestamp": t.strftime(TIMESTAMP_FORMAT), "price": float(c), "shares": int(s),
                 "value": card_calculations.to_cents(v), "pnl": card_calculations.to_cents(v - capital)}
                for t, c, s, v in zip(times, closes, shares, values)],
        trades=[{k: t[k] for k in ("id", "type", "shares", "price", "timestamp")} for t in trades
                if start <= _utc(t["timestamp"]) < end + BAR],
    )
    return result
