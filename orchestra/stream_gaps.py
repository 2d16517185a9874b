"""After a stream reconnect, minutes the dropped connection had half delivered are asked for again.

A connection cut while it sends a minute's bars delivers some tickers and not others; the minute
then looks like "no trade" for the rest and the checked-through watermark passes it. On a
reconnect every ticker's watermark goes back to the last minute for which all of them have a
bar (within a short look-back), so the reconnect backfill fetches what was lost.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Iterable

from database import db_manager, market_calendar

LOOKBACK = timedelta(minutes=60)


def rewind_after_reconnect(conn: sqlite3.Connection, tickers: Iterable[str], now: datetime) -> None:
    tickers = sorted(tickers)
    if len(tickers) < 2:  # one ticker: a missing minute is indistinguishable from no trade
        return
    first = market_calendar.to_utc_string(now - LOOKBACK)
    last = market_calendar.to_utc_string(now - timedelta(minutes=1))
    missing = set()
    for ticker in tickers:
        missing |= set(db_manager.find_gaps(conn, ticker, first, last))
    if not missing:
        return
    complete = [m for m in market_calendar.minutes_between(first, last) if m < min(missing)]
    back_to = complete[-1] if complete else first
    for ticker in tickers:
        db_manager.rewind_checked_through(conn, ticker, back_to)
