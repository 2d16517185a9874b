"""Simulated time and the NYSE calendar the whole exchange runs on.

``sim_now = start + (real elapsed) * speed``: one knob drives prices, bars, the stream, order
fills, ``/v2/clock`` and ``/v2/calendar``. Sessions, early closes and holidays come from
``exchange-calendars`` (XNYS); nothing here hard-codes a holiday.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Callable, Optional

import exchange_calendars
import pandas as pd

CALENDAR_START = "2015-01-01"
CALENDAR_END = "2030-12-31"
NEW_YORK = "America/New_York"


def parse_utc(value: str | datetime | pd.Timestamp) -> datetime:
    """A tz-aware UTC datetime from an ISO string ("Z" or an offset) or an aware datetime."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return stamp.tz_convert("UTC").to_pydatetime()


def utc_z(moment: datetime, *, micros: bool = False) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (or with microseconds, as Alpaca's order timestamps are)."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micros else "%Y-%m-%dT%H:%M:%SZ")


class SimClock:
    """Simulated UTC time running ``speed`` times faster than the wall clock; thread-safe."""

    def __init__(self, start: datetime, speed: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._anchor_sim = start.astimezone(timezone.utc)
        self._anchor_real = monotonic()
        self._speed = float(speed)
        self.generation = 0  # bumped on every set(); the stream uses it to restart publishing

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        with self._lock:
            return self._at(self._monotonic())

    def _at(self, real: float) -> datetime:
        return self._anchor_sim + timedelta(seconds=(real - self._anchor_real) * self._speed)

    def at_real(self, real: float) -> datetime:
        """The simulated time at monotonic time ``real`` (under the current anchor)."""
        with self._lock:
            return self._at(real)

    def set(self, moment: Optional[datetime] = None, speed: Optional[float] = None) -> None:
        """Jump to ``moment`` and/or change speed, continuing from now."""
        if speed is not None and speed < 0:
            raise ValueError("speed must be >= 0")
        with self._lock:
            real = self._monotonic()
            self._anchor_sim = moment.astimezone(timezone.utc) if moment else self._at(real)
            self._anchor_real = real
            if speed is not None:
                self._speed = float(speed)
            self.generation += 1


@lru_cache(maxsize=1)
def _xnys() -> exchange_calendars.ExchangeCalendar:
    return exchange_calendars.get_calendar("XNYS", start=CALENDAR_START, end=CALENDAR_END)


class MarketCalendar:
    """NYSE regular sessions in UTC: is the market open, when next, which minutes trade."""

    def __init__(self) -> None:
        self._cal = _xnys()

    @property
    def first_day(self) -> str:
        return self._cal.first_session.strftime("%Y-%m-%d")

    @property
    def last_day(self) -> str:
        return self._cal.last_session.strftime("%Y-%m-%d")

    def is_open(self, moment: datetime) -> bool:
        return bool(self._cal.is_trading_minute(_minute(moment)))

    def next_open(self, moment: datetime) -> datetime:
        return self._cal.next_open(_minute(moment)).to_pydatetime()

    def next_close(self, moment: datetime) -> datetime:
        return self._cal.next_close(_minute(moment)).to_pydatetime()

    def session_bounds(self, day: str) -> Optional[tuple[datetime, datetime]]:
        """(open, close) of the session on ``day`` (YYYY-MM-DD), None on a closed day."""
        if not self._cal.is_session(day):
            return None
        return (self._cal.session_open(day).to_pydatetime(),
                self._cal.session_close(day).to_pydatetime())

    def trading_session(self, moment: datetime) -> Optional[tuple[datetime, datetime]]:
        """Bounds of the session trading at ``moment``, or None when the market is closed."""
        if not self.is_open(moment):
            return None
        day = self._cal.minute_to_session(_minute(moment)).strftime("%Y-%m-%d")
        return self.session_bounds(day)

    def next_session(self, moment: datetime) -> tuple[datetime, datetime]:
        """The session trading now, else the next one to open."""
        current = self.trading_session(moment)
        if current:
            return current
        opening = self.next_open(moment)
        return opening, self.next_close(opening)

    def sessions_between(self, first_day: str, last_day: str) -> list[str]:
        """Session dates (YYYY-MM-DD) with first_day <= date <= last_day, clipped to the calendar."""
        lo = max(pd.Timestamp(first_day), self._cal.first_session)
        hi = min(pd.Timestamp(last_day), self._cal.last_session)
        if lo > hi:
            return []
        return [d.strftime("%Y-%m-%d") for d in self._cal.sessions_in_range(lo, hi)]

    def minutes_between(self, start: datetime, end: datetime) -> pd.DatetimeIndex:
        """Bar-start minutes of regular sessions with start <= minute < end."""
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        first, last = self._cal.first_minute, self._cal.last_minute
        if hi <= first or lo > last:
            return pd.DatetimeIndex([], tz="UTC")
        return self._cal.minutes_in_range(max(lo, first).ceil("min"), min(hi - pd.Timedelta(seconds=1), last))

    def settlement_date(self, day: str) -> str:
        """T+1 settlement: the next session after ``day``."""
        return self._cal.next_session(day).strftime("%Y-%m-%d")


def _minute(moment: datetime) -> pd.Timestamp:
    return pd.Timestamp(moment).tz_convert("UTC").floor("min")
