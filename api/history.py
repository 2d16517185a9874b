"""A card's price and value over a window, rebuilt from minute bars and its transactions.

At each bar the card holds what its transactions up to the end of that minute left it with, and
has the capital its deposits and withdrawals up to then gave it, so value = shares * close +
capital - net invested and P&L = value - capital, the same formulas as the card itself (a deposit
lifts the value, never the P&L).
Long windows are thinned inside SQLite to at most ``max_points`` evenly spaced bars (first and
last kept). Trades are listed separately, so none disappears from the chart when its bar is
thinned out; past ``MAX_TRADE_MARKERS`` only the newest are listed (``trades_in_window`` says
how many there were).
"""
from __future__ import annotations

import sqlite3
from bisect import bisect_left
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any, Dict, List, Optional

from database import db_manager
from database.market_calendar import TIMESTAMP_FORMAT, utc_datetime
from shared.shares import quantity
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
BAR = timedelta(minutes=1)


def _holdings(bar_times: List[str], trades: List[Dict[str, Any]]) -> tuple[List[float], List[float]]:
    """Shares held and net invested cash at the close of each bar (rows of
    ``card_calculations.split_adjusted``, oldest first: trades in today's share units, dividends).

    Plain Python over at most a few hundred bars (no pandas in the API process for a chart); a
    bar's close is its start + 1 minute, and canonical UTC strings compare as times.
    """
    signs = [1.0 if t["type"] == "buy" else -1.0 for t in trades]
    cum_shares = [0.0, *accumulate(float(t["shares"]) * sign for t, sign in zip(trades, signs))]
    cum_cash = [0.0, *accumulate(float(t.get("cash", t["shares"] * t["price"])) * sign
                                 for t, sign in zip(trades, signs))]
    trade_times = [t["timestamp"] for t in trades]
    done = [bisect_left(trade_times, (utc_datetime(stamp) + BAR).strftime(TIMESTAMP_FORMAT)) for stamp in bar_times]
    return [cum_shares[i] for i in done], [cum_cash[i] for i in done]


def _capital_at(bar_times: List[str], moves: List[Dict[str, Any]], initial: float) -> List[float]:
    """The card's capital at the close of each bar (``moves``: its deposits and withdrawals, oldest first)."""
    cum = list(accumulate((m["amount"] if m["kind"] == "deposit" else -m["amount"] for m in moves), initial=initial))
    move_times = [m["timestamp"] for m in moves]
    return [cum[bisect_left(move_times, (utc_datetime(stamp) + BAR).strftime(TIMESTAMP_FORMAT))] for stamp in bar_times]


def capital_move_markers(moves: List[Dict[str, Any]], start: datetime, stop: datetime) -> List[Dict[str, Any]]:
    """Deposits and withdrawals in the window, oldest first, labelled for the chart."""
    low, high = start.strftime(TIMESTAMP_FORMAT), stop.strftime(TIMESTAMP_FORMAT)
    return [{"timestamp": m["timestamp"], "kind": m["kind"], "amount": m["amount"],
             "label": f"{m['kind']} ${m['amount']:,.2f}"} for m in moves if low <= m["timestamp"] < high]


def _trades_between(trades: List[Dict[str, Any]], start: datetime, stop: datetime) -> List[Dict[str, Any]]:
    """Trade markers with start <= timestamp < stop (canonical UTC strings compare as times)."""
    low, high = start.strftime(TIMESTAMP_FORMAT), stop.strftime(TIMESTAMP_FORMAT)
    return [{k: t[k] for k in ("id", "type", "shares", "price", "timestamp")} for t in trades
            if low <= t["timestamp"] < high]


def corporate_action_markers(effects: List[Dict[str, Any]], start: Optional[datetime] = None,
                             stop: Optional[datetime] = None, *, with_card: bool = False) -> List[Dict[str, Any]]:
    """The card's splits and dividends (in the window, if given), oldest first, labelled for the chart."""
    low = start.strftime(TIMESTAMP_FORMAT) if start is not None else ""
    high = stop.strftime(TIMESTAMP_FORMAT) if stop is not None else "9999"
    return [{**({"algorithm_id": e["algorithm_id"], "ticker": e["ticker"]} if with_card else {}),
             "timestamp": e["effective_at"], "ex_date": e["ex_date"], "kind": e["kind"],
             "label": card_calculations.corporate_action_label(e), "old_rate": e["old_rate"],
             "new_rate": e["new_rate"], "rate": e["rate"], "shares_before": e["shares_before"],
             "shares_after": quantity(
                 e["shares_before"] + e["share_change"] + e["fractional_change"]),
             "cash": e["cash"]}
            for e in effects if low <= e["effective_at"] < high]


def _empty(algo: Dict[str, Any], window: str) -> Dict[str, Any]:
    return {"id": algo["id"], "ticker": algo["ticker"], "window": window,
            "initial_capital": float(algo["initial_capital"]), "capital": float(algo["initial_capital"]),
            "start": None, "end": None, "bar_count": 0, "downsampled": False, "points": [], "trades": [],
            "trades_in_window": 0, "corporate_actions": [], "capital_moves": []}


def card_history(system: sqlite3.Connection, stocks: sqlite3.Connection, algo: Dict[str, Any],
                 window: str, max_points: int) -> Dict[str, Any]:
    """The series for one card; empty when its ticker has no bar since the card was created."""
    result = _empty(algo, window)
    moves = system_db_manager.get_capital_moves(algo["id"], conn=system)
    result["capital"] = card_calculations.to_cents(
        result["initial_capital"] + sum(m["amount"] if m["kind"] == "deposit" else -m["amount"] for m in moves))
    latest = db_manager.get_latest_price(stocks, algo["ticker"])
    created = utc_datetime(algo["created_at"]).replace(second=0, microsecond=0)
    if latest is None or utc_datetime(latest["timestamp"]) < created:
        return result
    end = utc_datetime(latest["timestamp"])
    span = WINDOWS[window]
    start = created if span is None else max(created, end - span)
    bar_count, sampled = db_manager.get_sampled_closes(stocks, algo["ticker"], start.strftime(TIMESTAMP_FORMAT),
                                                       end.strftime(TIMESTAMP_FORMAT), max_points)
    trades = system_db_manager.get_transactions(algo["id"], conn=system)[::-1]  # oldest first
    effects = system_db_manager.get_corporate_action_effects(algo["id"], conn=system)
    closes = [float(close) for _, close in sampled]
    shares, invested = _holdings([stamp for stamp, _ in sampled], card_calculations.split_adjusted(trades, effects))
    capitals = _capital_at([stamp for stamp, _ in sampled], moves, result["initial_capital"])
    values = [card_calculations.value_from_totals(s, i, c, k) for s, i, c, k in zip(shares, invested, closes, capitals)]
    markers = _trades_between(trades, start, end + BAR)
    result.update(
        start=start.strftime(TIMESTAMP_FORMAT), end=end.strftime(TIMESTAMP_FORMAT), bar_count=bar_count,
        downsampled=len(sampled) < bar_count,
        points=[{"timestamp": stamp, "price": close, "shares": quantity(s),
                 "value": card_calculations.to_cents(v), "capital": card_calculations.to_cents(k),
                 "pnl": card_calculations.to_cents(v - k)}
                for (stamp, close), s, v, k in zip(sampled, shares, values, capitals)],
        trades=markers[-MAX_TRADE_MARKERS:], trades_in_window=len(markers),
        corporate_actions=corporate_action_markers(effects, start, end + BAR),
        capital_moves=capital_move_markers(moves, start, end + BAR),
    )
    return result
