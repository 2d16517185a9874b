"""Alpaca's account rules that sit in front of the order book: wash-trade protection and the
per-key request budget of the trading API.

Both are on by default, as at Alpaca, and each can be switched off through the test controls
(``wash_trade_rejection``, ``rate_limit_per_minute``) when a test is about something else.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Callable, Optional

from .broker import ApiError, Broker

WASH_TRADE_MESSAGE = "potential wash trade detected. use complex orders"
RATE_LIMIT_MESSAGE = "rate limit exceeded"
WINDOW_SECONDS = 60.0


def check_wash_trade(broker: Broker, body: object) -> None:
    """403 when an opposite-side order on the same symbol is still open (any market order would cross it).

    Called under the broker's lock before the order is booked, so a refused order leaves no trace.
    """
    if not isinstance(body, dict) or body.get("side") not in ("buy", "sell") or not isinstance(body.get("symbol"), str):
        return  # the order's own validation answers malformed requests
    broker.settle()
    symbol, opposite = body["symbol"].upper(), "sell" if body["side"] == "buy" else "buy"
    if any(o.is_open and o.symbol == symbol and o.side == opposite for o in broker.orders.values()):
        raise ApiError(403, WASH_TRADE_MESSAGE, 40310000)


class RateLimiter:
    """A fixed one-minute window per API key, like Alpaca's: ``limit`` requests, then 429 until it resets.

    The limit is read from the controls on every request; 0 switches the rule off (no headers, no
    refusals).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window end, requests used)
        self._lock = threading.Lock()

    def take(self, key: str, limit: int) -> tuple[bool, Optional[dict]]:
        """Count one request of ``key``: (allowed, the X-Ratelimit headers for its answer)."""
        if limit <= 0:
            return True, None
        with self._lock:
            now = self._clock()
            end, used = self._windows.get(key, (0.0, 0))
            if now >= end:
                end, used = now + WINDOW_SECONDS, 0
            allowed = used < limit
            used += 1 if allowed else 0
            self._windows[key] = (end, used)
        headers = {"X-Ratelimit-Limit": str(limit), "X-Ratelimit-Remaining": str(max(limit - used, 0)),
                   "X-Ratelimit-Reset": str(math.ceil(end))}
        return allowed, headers
