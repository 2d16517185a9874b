"""How complete a ticker's bars are in the current session: bars, minutes without a trade, missing.

On a thin ticker an empty minute is normal. A market minute up to the ticker's checked-through
watermark without a bar had no trade (the source was asked for it);
one after it without a bar is missing until a backfill or the stream says otherwise. The health
view and ``./scripts/status`` show these figures.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any, Dict, Iterable, Optional

from database import db_manager, market_calendar


def session_span(now: datetime) -> Optional[tuple[str, str]]:
    """(first minute, last complete minute) of the latest session opened by ``now``, or None."""
    session = market_calendar.latest_session(now)
    if session is None:
        return None
    opening, closing = session
    at = market_calendar.utc_datetime(now).replace(second=0, microsecond=0)
    last = min(at, closing) - timedelta(minutes=1)
    if last < opening:
        return None
    return market_calendar.to_utc_string(opening), market_calendar.to_utc_string(last)


def session_coverage(conn: sqlite3.Connection, tickers: Iterable[str], now: datetime) -> Dict[str, Dict[str, Any]]:
    """``{ticker: {minutes, bars, no_trade, missing, checked_through}}`` for the current session."""
    span = session_span(now)
    if span is None:
        return {}
    return {t: db_manager.minute_coverage(conn, t, *span) for t in sorted(set(tickers))}
