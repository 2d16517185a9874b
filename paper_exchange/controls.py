"""Test and operations switches of the paper exchange.

``price_path`` scripts one symbol's prices from a moment on (a crash, a slow slide), for stories
about what the system does when prices move a certain way; it is not kept across restarts.

Faults are off by default; Alpaca's own rules (fill latency, wash-trade rejection, the request
budget) are on by default, and a test switches one off only when it is about something else.

They are set through ``POST /_sim/control`` (plain JSON, not part of Alpaca's API). A request
is validated completely before anything changes, so a bad value changes nothing.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Optional

from .broker import OrderBehaviour
from .clock import CALENDAR_END, CALENDAR_START, parse_utc

FAIL_STATUSES = (500, 502, 503, 504)
MAX_PATH_POINTS = 1000


class ControlError(ValueError):
    """A control request that names an unknown switch or carries a bad value."""


@dataclass
class Switches:
    fill_delay_seconds: float = 0.3  # Alpaca fills a market order in a few hundred milliseconds
    partial_fill_ratio: Optional[float] = None
    partial_fill_hold_seconds: float = 1.0
    reject_orders: int = 0
    fail_requests: int = 0
    fail_status: int = 500
    fail_after_processing: bool = False
    fail_path: str = "/"  # only requests whose path starts with this fail (e.g. "/v2/orders")
    stream_connection_limit: int = 1
    stream_symbol_limit: int = 30
    stream_linger_seconds: float = 0.0
    stream_subscribe_delay_seconds: float = 0.0
    wash_trade_rejection: bool = True
    rate_limit_per_minute: int = 200  # per API key, trading API; 0 = off


@dataclass(frozen=True)
class Actions:
    """One-shot effects of a control request, carried out by the exchange."""

    drop_streams: bool = False
    silence_streams_seconds: Optional[float] = None
    clock_set: Optional[datetime] = None
    clock_speed: Optional[float] = None
    price_path: Optional[tuple] = None  # (symbol, ((moment, price), ...)); no points: the model's prices again


class Controls:
    """The current switches; thread-safe, read by the REST app and the stream server."""

    def __init__(self, **initial: Any) -> None:
        self._lock = threading.Lock()
        self._switches = Switches(**initial)

    def snapshot(self) -> dict:
        with self._lock:
            return asdict(self._switches)

    def apply(self, request: Any) -> Actions:
        """Validate ``request`` fully, then update switches; returns the one-shot actions."""
        if not isinstance(request, dict):
            raise ControlError("control body must be a JSON object")
        unknown = set(request) - set(Switches.__dataclass_fields__) - {"drop_streams", "silence_streams_seconds", "clock",
                                                                       "price_path"}
        if unknown:
            raise ControlError(f"unknown control(s): {', '.join(sorted(unknown))}")
        updates = {key: _validated(key, value) for key, value in request.items()
                   if key in Switches.__dataclass_fields__}
        actions = _actions(request)
        with self._lock:
            for key, value in updates.items():
                setattr(self._switches, key, value)
        return actions

    def order_behaviour(self) -> OrderBehaviour:
        """Behaviour for the order being submitted now (uses up one pending rejection)."""
        with self._lock:
            s = self._switches
            reject = s.reject_orders > 0
            if reject:
                s.reject_orders -= 1
            return OrderBehaviour(s.fill_delay_seconds, s.partial_fill_ratio, s.partial_fill_hold_seconds, reject)

    def take_failure(self, path: str) -> Optional[tuple[int, bool]]:
        """(status, after_processing) if this request is to fail, using up one failure."""
        with self._lock:
            s = self._switches
            if s.fail_requests <= 0 or not path.startswith(s.fail_path):
                return None
            s.fail_requests -= 1
            return s.fail_status, s.fail_after_processing

    @property
    def wash_trade_rejection(self) -> bool:
        with self._lock:
            return self._switches.wash_trade_rejection

    @property
    def rate_limit_per_minute(self) -> int:
        with self._lock:
            return self._switches.rate_limit_per_minute

    @property
    def stream_connection_limit(self) -> int:
        with self._lock:
            return self._switches.stream_connection_limit

    @property
    def stream_symbol_limit(self) -> int:
        with self._lock:
            return self._switches.stream_symbol_limit

    @property
    def stream_linger_seconds(self) -> float:
        with self._lock:
            return self._switches.stream_linger_seconds

    @property
    def stream_subscribe_delay_seconds(self) -> float:
        with self._lock:
            return self._switches.stream_subscribe_delay_seconds


def _number(key: str, value: Any, *, low: float, high: float = float("inf"), integer: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ControlError(f"{key} must be a number between {low} and {high}, got {value!r}")
    if integer and int(value) != value:
        raise ControlError(f"{key} must be a whole number, got {value!r}")
    return int(value) if integer else float(value)


def _validated(key: str, value: Any) -> Any:
    if key == "partial_fill_ratio":
        if value is None:
            return None
        ratio = _number(key, value, low=0.0, high=1.0)
        if ratio in (0.0, 1.0):
            raise ControlError("partial_fill_ratio must be strictly between 0 and 1 (or null to turn it off)")
        return ratio
    if key in ("fill_delay_seconds", "partial_fill_hold_seconds"):
        return _number(key, value, low=0.0, high=3600.0)
    if key in ("reject_orders", "fail_requests"):
        return _number(key, value, low=0, high=10_000, integer=True)
    if key == "stream_connection_limit":
        return _number(key, value, low=1, high=100, integer=True)
    if key == "stream_symbol_limit":
        return _number(key, value, low=1, high=100_000, integer=True)
    if key in ("stream_linger_seconds", "stream_subscribe_delay_seconds"):
        return _number(key, value, low=0.0, high=3600.0)
    if key == "fail_path":
        if not isinstance(value, str) or not value.startswith("/"):
            raise ControlError(f"fail_path must be a path starting with /, got {value!r}")
        return value
    if key == "fail_status":
        if value not in FAIL_STATUSES or isinstance(value, bool):
            raise ControlError(f"fail_status must be one of {FAIL_STATUSES}, got {value!r}")
        return value
    if key in ("fail_after_processing", "wash_trade_rejection"):
        if not isinstance(value, bool):
            raise ControlError(f"{key} must be true or false, got {value!r}")
        return value
    if key == "rate_limit_per_minute":
        return _number(key, value, low=0, high=100_000, integer=True)
    raise ControlError(f"unknown control {key}")


def _actions(request: dict) -> Actions:
    drop = request.get("drop_streams", False)
    if not isinstance(drop, bool):
        raise ControlError("drop_streams must be true or false")
    silence = request.get("silence_streams_seconds")
    if silence is not None:
        silence = _number("silence_streams_seconds", silence, low=0.0, high=86_400.0)
    clock = request.get("clock")
    moment = speed = None
    if clock is not None:
        if not isinstance(clock, dict) or not clock or set(clock) - {"set", "speed"}:
            raise ControlError('clock must be an object with "set" and/or "speed"')
        if clock.get("set") is not None:
            try:
                moment = parse_utc(clock["set"])
            except (ValueError, TypeError):
                raise ControlError(f"clock.set must be a UTC timestamp like 2026-11-23T14:25:00Z, got {clock['set']!r}") from None
            if not CALENDAR_START < moment.strftime("%Y-%m-%d") < CALENDAR_END:
                raise ControlError(f"clock.set must lie between {CALENDAR_START} and {CALENDAR_END}")
        if clock.get("speed") is not None:
            speed = _number("clock.speed", clock["speed"], low=0.0, high=1_000_000.0)
    return Actions(drop, silence, moment, speed, _price_path(request.get("price_path")))


def _price_path(path: Any) -> Optional[tuple]:
    """``{"symbol": "AAPL", "points": [["2026-11-23T15:00:00Z", 100.0], ...]}``: from the first point on,
    the symbol's minute closes follow the points (straight lines between them, flat after the last)."""
    if path is None:
        return None
    if not isinstance(path, dict) or set(path) != {"symbol", "points"}:
        raise ControlError('price_path must be an object with "symbol" and "points"')
    symbol, points = path["symbol"], path["points"]
    if not isinstance(symbol, str) or not symbol.isalpha() or not symbol.isupper():
        raise ControlError(f"price_path.symbol must be a symbol like AAPL, got {symbol!r}")
    if not isinstance(points, list) or len(points) > MAX_PATH_POINTS:
        raise ControlError(f"price_path.points must be a list of at most {MAX_PATH_POINTS} [time, price] pairs")
    parsed = []
    for point in points:
        if not isinstance(point, list) or len(point) != 2:
            raise ControlError(f"each price_path point must be [time, price], got {point!r}")
        try:
            moment = parse_utc(point[0])
        except (ValueError, TypeError):
            raise ControlError(f"a price_path time must be a UTC timestamp, got {point[0]!r}") from None
        if parsed and moment <= parsed[-1][0]:
            raise ControlError("price_path times must increase")
        parsed.append((moment, _number("price_path price", point[1], low=0.01, high=1_000_000.0)))
    return symbol, tuple(parsed)
