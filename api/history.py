"""A card's price and value over a window, rebuilt from minute bars and its transactions.

At each bar the card holds what its transactions up to the end of that minute left it with, so
value = shares * close + initial_capital - net invested, the same formula as the card itself.
Long windows are thinned inside SQLite to at most ``max_points`` evenly spaced bars (first and
last kept). Trades are listed separately, so none disappears from the chart when its bar is
thinned out; past ``MAX_TRADE_MARKERS`` only the newest are listed (``trades_in_window`` says
how many there were).
"""
from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from database import db_manager
from database.market_calendar import TIMESTAMP_FORMAT, parse_utc
from system_databse import card_calculations, system_db_manager

WINDOWS: Dict[str, Optional[timedelta]] = {
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "5d": timedelta(days=5),
    "1m": timedelta(days=30),
    "3m": timedelta(days=90),
    "1y": timedelta(days=365),
    "all": None,
}
MAX_TRADE_MARKERS = 1000
BAR = pd.Timedelta(minutes=1)


def _holdings(bar_times: pd.DatetimeIndex, trades: List[Dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Shares held and net invested cash at the close of each bar (rows of
    ``card_calculations.split_adjusted``, oldest first: trades in today's share units, dividends)."""
    if not trades:
        return np.zeros(len(bar_times)), np.zeros(len(bar_times))
    signs = np.array([1 if t["type"] == "buy" else -1 for t in trades])
    shares = np.array([t["shares"] for t in trades], dtype=float) * signs
    cash = np.array([t.get("cash", t["shares"] * t["price"]) for t in trades], dtype=float) * signs
    trade_times = pd.to_datetime([t["timestamp"] for t in trades], format=TIMESTAMP_FORMAT, utc=True)
    done = np.searchsorted(trade_times.asi8, (bar_times + BAR).asi8, side="left")
    cum_shares = np.concatenate([[0.0], np.cumsum(shares)])
    cum_cash = np.concatenate([[0.0], np.cumsum(cash)])
    return cum_shares[done], cum_cash[done]


def _trades_between(trades: List[Dict[str, Any]], start: pd.Timestamp, stop: pd.Timestamp) -> List[Dict[str, Any]]:
    """Trade markers with start <= timestamp < stop (canonical UTC strings compare as times)."""
    low, high = start.strftime(TIMESTAMP_FORMAT), stop.strftime(TIMESTAMP_FORMAT)
    return [{k: t[k] for k in ("id", "type", "shares", "price", "timestamp")} for t in trades
            if low <= t["timestamp"] < high]


def corporate_action_markers(effects: List[Dict[str, Any]], start: Optional[pd.Timestamp] = None,
                             stop: Optional[pd.Timestamp] = None, *, with_card: bool = False) -> List[Dict[str, Any]]:
    """The card's splits and dividends (in the window, if given), oldest first, labelled for the chart."""
    low = start.strftime(TIMESTAMP_FORMAT) if start is not None else ""
    high = stop.strftime(TIMESTAMP_FORMAT) if stop is not None else "9999"
    return [{**({"algorithm_id": e["algorithm_id"], "ticker": e["ticker"]} if with_card else {}),
             "timestamp": e["effective_at"], "ex_date": e["ex_date"], "kind": e["kind"],
             "label": card_calculations.corporate_action_label(e), "old_rate": e["old_rate"],
             "new_rate": e["new_rate"], "rate": e["rate"], "shares_before": e["shares_before"],
             "shares_after": card_calculations.whole_if_close(
                 e["shares_before"] + e["share_change"] + e["fractional_change"]),
             "cash": e["cash"]}
            for e in effects if low <= e["effective_at"] < high]


def _empty(algo: Dict[str, Any], window: str) -> Dict[str, Any]:
    return {"id": algo["id"], "ticker": algo["ticker"], "window": window,
            "initial_capital": float(algo["initial_capital"]), "start": None, "end": None, "bar_count": 0,
            "downsampled": False, "points": [], "trades": [], "trades_in_window": 0, "corporate_actions": []}


def card_history(system: sqlite3.Connection, stocks: sqlite3.Connection, algo: Dict[str, Any],
                 window: str, max_points: int) -> Dict[str, Any]:
    """The series for one card; empty when its ticker has no bar since the card was created."""
    result = _empty(algo, window)
    latest = db_manager.get_latest_price(stocks, algo["ticker"])
    created = parse_utc(algo["created_at"]).floor("min")
    if latest is None or parse_utc(latest["timestamp"]) < created:
        return result
    end = parse_utc(latest["timestamp"])
    span = WINDOWS[window]
    start = created if span is None else max(created, end - span)
    bar_count, sampled = db_manager.get_sampled_closes(stocks, algo["ticker"], start.strftime(TIMESTAMP_FORMAT),
                                                       end.strftime(TIMESTAMP_FORMAT), max_points)
    trades = system_db_manager.get_transactions(algo["id"], conn=system)[::-1]  # oldest first
    effects = system_db_manager.get_corporate_action_effects(algo["id"], conn=system)
    times = pd.to_datetime([stamp for stamp, _ in sampled], format=TIMESTAMP_FORMAT, utc=True)
    closes = np.array([close for _, close in sampled], dtype=float)
    shares, invested = _holdings(times, card_calculations.split_adjusted(trades, effects))
    capital = result["initial_capital"]
    values = [card_calculations.value_from_totals(s, i, c, capital) for s, i, c in zip(shares, invested, closes)]
    markers = _trades_between(trades, start, end + BAR)
    result.update(
        start=start.strftime(TIMESTAMP_FORMAT), end=end.strftime(TIMESTAMP_FORMAT), bar_count=bar_count,
        downsampled=len(sampled) < bar_count,
        points=[{"timestamp": stamp, "price": close, "shares": card_calculations.whole_if_close(s),
                 "value": card_calculations.to_cents(v),
                 "pnl": card_calculations.to_cents(v - capital)}
                for (stamp, close), s, v in zip(sampled, shares, values)],
        trades=markers[-MAX_TRADE_MARKERS:], trades_in_window=len(markers),
        corporate_actions=corporate_action_markers(effects, start, end + BAR),
    )
    return result
