"""Account-level P&L per trading day for the history view and the quiet screen.

The arithmetic is ``system_databse.daily_pnl``; sessions and closes come from stocks.db and the
NYSE calendar (``database.daily_closes``); today's bar moves with the latest minute.
"""
from __future__ import annotations

import sqlite3
from typing import Any, Dict, List

from database.daily_closes import market_inputs
from system_databse import daily_pnl


def account_daily_pnl(system: sqlite3.Connection, stocks: sqlite3.Connection, max_days: int = 60) -> List[Dict[str, Any]]:
    """``[{"date", "pnl", "cumulative"}]`` of the last ``max_days`` sessions, oldest first."""
    return daily_pnl.account_daily_pnl(system, **market_inputs(stocks), max_days=max_days)
