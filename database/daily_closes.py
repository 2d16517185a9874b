"""What the daily P&L needs from the market side: trading days, each day's close, the newest bar.

``market_inputs(stocks_conn)`` binds them to one stocks.db connection for
``system_databse.daily_pnl.account_daily_pnl`` (the ledger never imports market data itself).
"""
from __future__ import annotations

import sqlite3
from typing import Any, Dict

from database import db_manager
from database.market_calendar import sessions_in_range


def sessions(first_day: str, last_day: str) -> list[str]:
    """NYSE trading days first_day..last_day ("YYYY-MM-DD"), both inclusive."""
    return sessions_in_range(first_day, last_day)  # the calendar's sessions, without pandas


def market_inputs(stocks: sqlite3.Connection) -> Dict[str, Any]:
    return {
        "sessions": sessions,
        "daily_closes": lambda ticker, first, last: db_manager.get_daily_closes(stocks, ticker, first, last),
        "last_bar": lambda ticker: db_manager.get_last_timestamp(stocks, ticker),
    }
