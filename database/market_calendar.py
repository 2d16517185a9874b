"""NYSE trading minutes, opens and closes from ``exchange-calendars`` (holidays, early closes).

All inputs and outputs are UTC; a minute is named by its bar start ("...T14:30:00Z" is the
09:30 ET bar in winter). No hand-written holiday rules live in this project.

The daemons' questions (open now? next open/close? the minutes between two times?) are answered
from the sessions' opens and closes (~3,300 pairs, 50 KB) by binary search. The calendar's own
minute index (1.27 million timestamps, ~20 MB resident once built) is only built for the few
callers of ``all_minutes`` (creating stocks.db, benchmarks).
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Optional

import exchange_calendars
import numpy as np
import pandas as pd

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
CALENDAR_START = "2018-01-01"
CALENDAR_END = "2030-12-31"


@lru_cache(maxsize=4)
def nyse(start: str = CALENDAR_START, end: str = CALENDAR_END) -> exchange_calendars.ExchangeCalendar:
    return exchange_calendars.get_calendar("XNYS", start=start, end=end)


def parse_utc(value: str | datetime | pd.Timestamp) -> pd.Timestamp:
    """A UTC timestamp from a "...Z" string or a tz-aware datetime (naive input is refused)."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone; use UTC ('...Z')")
    return stamp.tz_convert("UTC")


def to_utc_string(value: str | datetime | pd.Timestamp) -> str:
    return parse_utc(value).strftime(TIMESTAMP_FORMAT)


@lru_cache(maxsize=1)
def _sessions() -> tuple[np.ndarray, np.ndarray]:
    """Every session's (opens, closes) in UTC epoch seconds, sorted; opens[i] < closes[i] <= opens[i+1]."""
    cal = nyse()
    return pd.DatetimeIndex(cal.opens).asi8 // 10**9, pd.DatetimeIndex(cal.closes).asi8 // 10**9


def _seconds(at: str | datetime | pd.Timestamp) -> int:
    """Epoch seconds of ``at`` floored to its minute."""
    return int(parse_utc(at).value // 10**9) // 60 * 60


def _stamp(seconds: int) -> pd.Timestamp:
    return pd.Timestamp(int(seconds), unit="s", tz="UTC")


def _minute_seconds(start: str | datetime, end: str | datetime) -> np.ndarray:
    """Epoch seconds of the session minutes with start <= minute <= end."""
    lo_exact, hi = parse_utc(start).value / 10**9, _seconds(end)
    lo = -(-int(np.ceil(lo_exact)) // 60) * 60  # the first whole minute at or after start
    opens, closes = _sessions()
    first, last = int(np.searchsorted(closes, lo, "right")), int(np.searchsorted(opens, hi, "right"))
    parts = [np.arange(max(opens[i], lo), min(closes[i], hi + 60), 60, dtype="int64") for i in range(first, last)]
    return np.concatenate(parts) if parts else np.empty(0, dtype="int64")


def minutes_between(start: str | datetime, end: str | datetime) -> list[str]:
    """Bar-start minutes of regular sessions with start <= minute <= end."""
    return list(minutes_index(start, end).strftime(TIMESTAMP_FORMAT))


def minutes_index(start: str | datetime, end: str | datetime) -> pd.DatetimeIndex:
    """``minutes_between`` as a UTC DatetimeIndex."""
    return pd.DatetimeIndex((_minute_seconds(start, end) * 10**9).astype("datetime64[ns]"), tz="UTC")


def all_minutes() -> pd.DatetimeIndex:
    return nyse().minutes


def is_open(at: str | datetime) -> bool:
    """True while a regular session is trading at ``at`` (open <= minute < close)."""
    minute = _seconds(at)
    opens, closes = _sessions()
    i = int(np.searchsorted(opens, minute, "right")) - 1
    return bool(i >= 0 and minute < closes[i])


def next_open(at: str | datetime) -> pd.Timestamp:
    """The first open strictly after ``at``."""
    opens, _ = _sessions()
    return _stamp(opens[int(np.searchsorted(opens, _seconds(at), "right"))])


def next_close(at: str | datetime) -> pd.Timestamp:
    """The first close strictly after ``at``."""
    _, closes = _sessions()
    return _stamp(closes[int(np.searchsorted(closes, _seconds(at), "right"))])


def session_open_back(at: str | datetime, sessions: int) -> pd.Timestamp:
    """The open of the ``sessions``-th session counting back from ``at`` (one already open counts);
    the calendar's first open when there are fewer."""
    opens, _ = _sessions()
    started = int(np.searchsorted(opens, _seconds(at), "right"))
    return _stamp(opens[max(0, started - max(1, int(sessions)))])


def session_bounds(day: str) -> Optional[tuple[pd.Timestamp, pd.Timestamp]]:
    """(open, close) in UTC of the session on ``day`` (YYYY-MM-DD), or None on a closed day."""
    cal = nyse()
    if not cal.is_session(day):
        return None
    return cal.session_open(day), cal.session_close(day)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
