"""The API's trading clock: it stamps the cards the API creates and stops, and says "now" for the market.

``AUTOTRADER_CLOCK`` names it, as for the orchestrator: the computer's clock with a real broker,
the broker's ``/v2/clock`` with the embedded simulated exchange (read through the broker gateway
at most about once a second and extrapolated in between, ``shared.clock.BrokerClock``). Token
lifetimes, PIN lock-outs, caches and the heartbeat's age stay on the computer's clock
(``config["NOW"]``): they measure how long something has been, not when it happened in the market.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from flask import current_app

from api.errors import ApiError
from shared.clock import ClockUnavailable, make_clock, stamp

EXTENSION = "autotrader_clock"


def build(kind: str, gateway: Any):
    """The clock ``kind`` names (``Settings.daemon.clock``: ``system`` or ``broker``), reading the broker
    through ``gateway``."""
    return make_clock(kind, gateway.broker_time)


def trading_clock() -> Any:
    return current_app.extensions[EXTENSION]


def now_or_refuse(nothing_done: str) -> datetime:
    """The trading clock's now; a 503 saying ``nothing_done`` when the broker's clock cannot be read."""
    try:
        return trading_clock().now()
    except ClockUnavailable as exc:
        raise ApiError(503, f"{exc}; {nothing_done}") from None


def stamp_or_refuse(nothing_done: str) -> str:
    return stamp(now_or_refuse(nothing_done))


def now_if_known() -> Optional[datetime]:
    """The trading clock's now for a read-only figure (extrapolated: no request of its own once the
    market status has been read), or None when it cannot be read."""
    try:
        return trading_clock().peek()
    except ClockUnavailable:
        return None
