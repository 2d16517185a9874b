"""Minutes a connected stream watched count as checked, so "no trade" is known without asking.

A bar exists only for a minute with a trade. When the stream was connected, with a ticker
subscribed, from one cycle to the next without a reconnect, the minute in between was watched: no
bar for it means no trade. Such minutes move the ticker's checked-through watermark in stocks.db
(only when it is contiguous: a minute before it that was never checked stays for the backfill).
"""
from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from typing import Any, Mapping, Optional

from database import db_manager, market_calendar

logger = logging.getLogger(__name__)


class StreamCoverage:
    """Remembers the stream's state at the last cycle and marks the minute since as checked."""

    def __init__(self) -> None:
        self._previous: Optional[tuple[int, frozenset[str]]] = None  # (reconnects, watched tickers)

    def observe(self, conn: sqlite3.Connection, status: Mapping[str, Any], minute: datetime) -> None:
        """Call once per cycle with the stream's status, for the bar that started at ``minute``."""
        previous = self._previous
        watched = frozenset(status.get("subscriptions") or ()) - frozenset(status.get("refused") or ())
        connected = bool(status.get("connected"))
        self._previous = (int(status.get("reconnects") or 0), watched) if connected else None
        if previous is None or not connected or previous[0] != self._previous[0]:
            return
        stamp = market_calendar.to_utc_string(minute)
        before = market_calendar.minutes_between(stamp, stamp)  # the minute itself, if a market minute
        if not before:
            return
        try:
            for ticker in sorted(previous[1] & watched):
                checked = db_manager.get_checked_through(conn, ticker)
                if checked is not None and market_calendar.market_minutes_between(checked, stamp) <= 1:
                    db_manager.set_checked_through(conn, ticker, stamp)
        except sqlite3.Error as exc:  # a record for people: never stops a cycle
            logger.warning("checked minutes not recorded for %s: %s", stamp, exc)
