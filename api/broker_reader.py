"""The API's read-only door to the broker: account cash, one asset, the market clock.

Three GETs of Alpaca's trading REST API (``/v2/account``, ``/v2/assets/{symbol}``,
``/v2/clock``, the endpoints alpaca-py's ``TradingClient`` calls), made with ``requests``. The
API process never trades, and loading alpaca-py for three JSON reads would cost it about 50 MB
(its request models import pandas), a quarter of a small Pi's budget for both daemons. Orders
and everything else go through alpaca-py in the orchestrator (``orchestra/alpaca_wrapper.py``).
Failures are the wrapper's own types (``shared.broker_errors``), with the broker's words.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import requests

from shared.broker_errors import BrokerAuthError, BrokerError, BrokerUnavailable
from shared.config import AlpacaSettings

logger = logging.getLogger(__name__)

PAPER_URL = "https://paper-api.alpaca.markets"  # alpaca-py's BaseURL.TRADING_PAPER
LIVE_URL = "https://api.alpaca.markets"          # alpaca-py's BaseURL.TRADING_LIVE
_SYMBOL = re.compile(r"[A-Z][A-Z0-9.\-]{0,11}")
_FRACTION = re.compile(r"(\.\d{6})\d+")          # Alpaca may send nanoseconds; datetime keeps micro


@dataclass(frozen=True)
class MarketClock:
    """The broker's clock; all datetimes are tz-aware UTC (the wrapper's ``MarketClock`` fields)."""

    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


def parse_time(value: Any) -> datetime:
    """An RFC 3339 time from the broker (offset or Z, any fraction) as an aware UTC datetime."""
    text = _FRACTION.sub(r"\1", str(value)).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a zone: {value!r}")
    return parsed.astimezone(timezone.utc)


class BrokerReader:
    """Cash, asset and clock reads for the API, one attempt each with a short timeout."""

    def __init__(self, settings: AlpacaSettings, *, request_timeout: float = 5.0):
        self.settings = settings
        self.base_url = self.settings.trading_url or (PAPER_URL if self.settings.paper else LIVE_URL)
        self.timeout = request_timeout
        self._session = requests.Session()
        self._session.headers.update({"APCA-API-KEY-ID": self.settings.api_key,
                                      "APCA-API-SECRET-KEY": self.settings.secret})

    def _get(self, action: str, path: str) -> dict:
        try:
            response = self._session.get(self.base_url + path, timeout=self.timeout)
        except requests.RequestException as exc:
            raise BrokerUnavailable(f"{action}: broker unreachable ({type(exc).__name__}: {str(exc)[:200]})") from None
        status = response.status_code
        if status < 300:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise BrokerError(f"{action}: unexpected answer from the broker (not a JSON object)")
            return body
        message = _message(response)
        if status >= 500 or status == 429:
            raise BrokerUnavailable(f"{action}: broker answered {status}: {message}", status=status)
        if status in (401, 403):
            raise BrokerAuthError(f"{action}: broker refused the credentials ({status}: {message}); "
                                  "check ALPACA_API_KEY and ALPACA_SECRET", status=status)
        raise BrokerError(f"{action}: broker answered {status}: {message}", status=status)

    def get_account_cash(self) -> float:
        """The account's total cash (not what is free for new cards: the API computes that)."""
        cash = self._get("read account", "/v2/account").get("cash")
        try:
            return float(cash)
        except (TypeError, ValueError):
            raise BrokerError("read account: the broker sent no cash figure") from None

    def validate_ticker(self, symbol: str) -> bool:
        """True for an active, tradable US stock; False for anything the broker does not know."""
        symbol = symbol.strip().upper() if isinstance(symbol, str) else ""
        if not _SYMBOL.fullmatch(symbol):
            return False
        try:
            asset = self._get(f"look up asset {symbol}", f"/v2/assets/{symbol}")
        except BrokerError as error:
            if error.status in (404, 422):
                return False
            raise
        return asset.get("status") == "active" and asset.get("tradable") is True and asset.get("class") == "us_equity"

    def get_clock(self) -> MarketClock:
        body = self._get("read market clock", "/v2/clock")
        try:
            return MarketClock(timestamp=parse_time(body["timestamp"]), is_open=bool(body["is_open"]),
                               next_open=parse_time(body["next_open"]), next_close=parse_time(body["next_close"]))
        except (KeyError, ValueError) as exc:
            raise BrokerError(f"read market clock: unexpected answer from the broker ({exc})") from None


def _message(response: requests.Response) -> str:
    """The broker's own words (``message`` of its JSON error), never the request's headers."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message", body))[:200] if isinstance(body, dict) else str(body)[:200]
