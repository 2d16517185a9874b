"""How complete a ticker's bars are in the current session: bars, minutes without a trade, missing.

On a thin ticker an empty minute is normal. A market minute up to the ticker's checked-through
watermark without a bar had no trade (the source was asked, or a connected stream watched it);
one after it without a bar is missing until a backfill or the stream says otherwise. The health
view and ``./scripts/status`` show these figures.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Dict, Iterable, Optional

import pandas as pd

from database import db_manager, market_calendar


def session_span(now: datetime) -> Optional[tuple[str, str]]:
    """(first minute, last complete minute) of the latest session opened by ``now``, or None."""
    opening = market_calendar.session_open_back(now, 1)
    if opening > market_calendar.parse_utc(now):
        return None  # before the calendar's first session
    _, closing = market_calendar.session_bounds(opening.tz_convert("America/New_York").strftime("%Y-%m-%d"))
    last = min(market_calendar.parse_utc(now).floor("min"), closing) - pd.Timedelta(minutes=1)
    if last < opening:
        return None
    return market_calendar.to_utc_string(opening), market_calendar.to_utc_string(last)


def session_coverage(conn: sqlite3.Connection, tickers: Iterable[str], now: datetime) -> Dict[str, Dict[str, Any]]:
    """``{ticker: {minutes, bars, no_trade, missing, checked_through}}`` for the current session."""
    span = session_span(now)
    if span is None:
        return {}
    return {t: db_manager.minute_coverage(conn, t, *span) for t in sorted(set(tickers))}
