"""Account-level P&L per trading day, read for the history view and the quiet screen.

Sessions come from the NYSE calendar, from the first card's creation to the newest stored bar;
each day's mark uses that day's last stored bar (``db_manager.get_daily_closes``), so today's bar
moves with the latest minute. The arithmetic is ``system_databse.daily_pnl``.
"""
from __future__ import annotations

import sqlite3
from typing import Any, Dict, List

import pandas as pd

from database import db_manager
from database.market_calendar import nyse
from system_databse import card_calculations, daily_pnl, system_db_manager


def account_daily_pnl(system: sqlite3.Connection, stocks: sqlite3.Connection, max_days: int = 60) -> List[Dict[str, Any]]:
    """``[{"date", "pnl", "cumulative"}]`` of the last ``max_days`` sessions, oldest first."""
    algos = system_db_manager.get_all_algorithms(conn=system)
    if not algos:
        return []
    first = min(a["created_at"][:10] for a in algos)
    latest = [db_manager.get_last_timestamp(stocks, t) for t in {a["ticker"] for a in algos}]
    latest = [t for t in latest if t]
    last = max([t[:10] for t in latest] + [first])
    sessions = [d.strftime("%Y-%m-%d") for d in nyse().sessions_in_range(pd.Timestamp(first), pd.Timestamp(last))]
    if not sessions:
        return []
    trades: Dict[int, list] = {a["id"]: [] for a in algos}
    for row in system_db_manager.get_transactions_between(conn=system):
        trades[row["algorithm_id"]].append(row)
    actions = {a["id"]: system_db_manager.get_corporate_action_effects(a["id"], conn=system) for a in algos}
    for card_id in trades:  # stored bars are split-adjusted: trades in today's share units, splits built in
        trades[card_id] = [r for r in card_calculations.split_adjusted(trades[card_id], actions[card_id])
                           if r["type"] != "dividend"]
        actions[card_id] = [a for a in actions[card_id] if a["kind"] == "cash_dividend"]
    closes = {t: db_manager.get_daily_closes(stocks, t, sessions[0], sessions[-1]) for t in {a["ticker"] for a in algos}}
    days = daily_pnl.daily_pnl(trades, {a["id"]: a["ticker"] for a in algos}, closes, sessions, actions)
    return days[-max_days:]
