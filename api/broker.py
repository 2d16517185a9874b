"""The API's only door to the broker: cash, tradable symbols and the market clock, with caches.

The reader (``api.broker_reader.BrokerReader``: three REST reads, no alpaca-py) is built lazily
by ``config["BROKER_FACTORY"]`` (tests point it at a paper exchange or at a dead port). Every broker failure, including missing keys, becomes ``BrokerDown``, which
views turn into a 503 for the endpoints that truly need the broker; the rest of the API keeps
answering from the databases. The clock is asked at most once a minute; when the broker cannot
answer, the exchange calendar decides ``market_open`` and the answer says so.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any, Callable, Optional

from database import market_calendar
from shared.broker_errors import BrokerError
from shared.clock import ClockUnavailable, computer_now
from shared.config import ConfigError, Settings

logger = logging.getLogger(__name__)



class BrokerDown(Exception):
    """The broker could not answer (unreachable, erroring or not configured)."""


def broker_factory(settings: Settings) -> Callable[[], Any]:
    """Builds the real reader on first use from the process's settings (ConfigError: no keys).

    One attempt per read with a short timeout: the page polls again anyway, and a hung broker
    must not hold a listing for half a minute.
    """
    def build():
        from api.broker_reader import BrokerReader

        return BrokerReader(settings.broker, request_timeout=5.0)

    return build


ASSET_CACHE_TTL = timedelta(hours=1)
iso = market_calendar.to_utc_string  # "YYYY-MM-DDTHH:MM:SSZ" of an aware datetime


class BrokerGateway:
    def __init__(self, factory: Callable[[], Any], now: Callable[[], datetime], cash_ttl_seconds: float):
        self._factory = factory
        self._now = now  # the computer's clock: cache ages
        self.market_now: Callable[[], datetime] = computer_now  # the trading clock (``api.clock``) once built
        self.observe_clock: Callable[[datetime], Any] = lambda reading: None  # ... which learns from each reading
        self._cash_ttl = timedelta(seconds=cash_ttl_seconds)
        self._wrapper = None
        self._lock = threading.Lock()
        self._clock_lock = threading.Lock()
        self._cash: Optional[tuple[float, datetime]] = None
        self._market: Optional[tuple[datetime, dict]] = None
        self._assets: dict[str, tuple[bool, datetime]] = {}

    def _call(self, what: str, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(wrapper)``; any failure becomes BrokerDown with a message safe to show."""
        try:
            with self._lock:
                if self._wrapper is None:
                    self._wrapper = self._factory()
            return fn(self._wrapper)
        except ConfigError as exc:
            raise BrokerDown(f"broker not configured: {exc}") from None
        except BrokerError as exc:
            logger.warning("broker %s failed: %s", what, exc)
            raise BrokerDown(f"broker {what} failed: {exc}") from None
        except Exception as exc:  # an SDK error the wrapper did not classify: still the broker's
            logger.exception("unexpected broker error during %s", what)
            raise BrokerDown(f"broker error ({what}): {type(exc).__name__}") from None

    def account_cash(self, *, max_age: Optional[timedelta] = None) -> tuple[float, datetime]:
        """Broker cash and when it was read; reuses a reading younger than ``max_age``."""
        max_age = self._cash_ttl if max_age is None else max_age
        now = self._now()
        cached = self._cash
        if cached is not None and now - cached[1] < max_age:
            return cached
        cash = float(self._call("account cash", lambda w: w.get_account_cash()))
        self._cash = (cash, now)
        return self._cash

    def validate_ticker(self, symbol: str) -> bool:
        """Whether the broker trades ``symbol``; answers are kept for an hour (assets rarely change),
        so the wall's dialog costs the account's request budget almost nothing."""
        now, key = self._now(), str(symbol).strip().upper()
        cached = self._assets.get(key)
        if cached is not None and now - cached[1] < ASSET_CACHE_TTL:
            return cached[0]
        tradable = bool(self._call("asset lookup", lambda w: w.validate_ticker(symbol)))
        self._assets[key] = (tradable, now)
        return tradable

    def broker_time(self) -> datetime:
        """The broker's clock, asked now (the API's trading clock with ``AUTOTRADER_CLOCK=broker``)."""
        return self._call("clock", lambda w: w.get_clock().timestamp)

    def market_status(self) -> dict:
        """``{"is_open", "source", "timestamp", "next_open", "next_close", "error"}``, cached per minute."""
        now = self._now()
        minute = now.replace(second=0, microsecond=0)
        with self._clock_lock:
            if self._market is not None and self._market[0] == minute:
                return dict(self._market[1])
            try:
                clock = self._call("clock", lambda w: w.get_clock())
                self.observe_clock(clock.timestamp)
                status = {"is_open": bool(clock.is_open), "source": "broker", "timestamp": iso(clock.timestamp),
                          "next_open": iso(clock.next_open), "next_close": iso(clock.next_close), "error": None}
            except BrokerDown as exc:
                status = calendar_status(self._market_now(now), str(exc))
            self._market = (minute, status)
            return dict(status)


    def _market_now(self, fallback: datetime) -> datetime:
        """The trading clock (extrapolated, no request), or ``fallback`` if it was never read."""
        try:
            return self.market_now()
        except ClockUnavailable:
            return fallback


def calendar_status(now: datetime, error: str) -> dict:
    """Market status from the NYSE calendar, for when the broker's clock is out of reach."""
    next_open, next_close = market_calendar.next_open_and_close(now)
    return {"is_open": market_calendar.is_open(now), "source": "calendar", "timestamp": iso(now),
            "next_open": iso(next_open), "next_close": iso(next_close),
            "error": error}
