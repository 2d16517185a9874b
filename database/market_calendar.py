"""NYSE trading minutes, opens and closes from ``exchange-calendars`` (holidays, early closes).

All inputs and outputs are UTC; a minute is named by its bar start ("...T14:30:00Z" is the
09:30 ET bar in winter). No hand-written holiday rules live in this project.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Optional

import exchange_calendars
import pandas as pd

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
CALENDAR_START = "2018-01-01"
CALENDAR_END = "2030-12-31"
NEW_YORK = "America/New_York"


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


def minutes_between(start: str | datetime, end: str | datetime) -> list[str]:
    """Bar-start minutes of regular sessions with start <= minute <= end."""
    lo, hi = parse_utc(start), parse_utc(end)
    minutes = nyse().minutes
    window = minutes[(minutes >= lo) & (minutes <= hi)]
    return list(window.strftime(TIMESTAMP_FORMAT))


def all_minutes() -> pd.DatetimeIndex:
    return nyse().minutes


def is_open(at: str | datetime) -> bool:
    """True while a regular session is trading at ``at``."""
    return bool(nyse().is_trading_minute(parse_utc(at).floor("min")))


def next_open(at: str | datetime) -> pd.Timestamp:
    """The first open strictly after ``at``."""
    return nyse().next_open(parse_utc(at).floor("min"))


def next_close(at: str | datetime) -> pd.Timestamp:
    """The first close strictly after ``at``."""
    return nyse().next_close(parse_utc(at).floor("min"))


def session_bounds(day: str) -> Optional[tuple[pd.Timestamp, pd.Timestamp]]:
    """(open, close) in UTC of the session on ``day`` (YYYY-MM-DD), or None on a closed day."""
    cal = nyse()
    if not cal.is_session(day):
        return None
    return cal.session_open(day), cal.session_close(day)


def market_minutes_between(earlier: str | datetime, later: str | datetime) -> int:
    """Market minutes from the minute ``earlier`` to the minute ``later`` (0: the same minute)."""
    minutes = nyse().minutes
    lo, hi = parse_utc(earlier).floor("min"), parse_utc(later).floor("min")
    return int(minutes.searchsorted(hi) - minutes.searchsorted(lo))


def same_session(first: str | datetime, second: str | datetime) -> bool:
    """Whether two moments fall on the same New York day (a session never spans two)."""
    return parse_utc(first).tz_convert(NEW_YORK).date() == parse_utc(second).tz_convert(NEW_YORK).date()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
