"""The broker: orders, cash, positions, assets and the market clock through alpaca-py's TradingClient.

Exactly-once trading rests on the caller's ``client_order_id``: an order is submitted once; when
the answer is lost (timeout, 5xx, dropped connection) the outcome is settled by looking the id
up, and only an id the broker confirms it does not hold is sent again (the broker refuses a
second order with the same id, which is also answered by a look-up). Reads are retried a few
times; order submission is never re-sent by the SDK itself (see ``broker_sdk``).

Every failure surfaces as a ``BrokerError`` subclass the caller can act on. Keys are never
logged and never part of an error message.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Optional

from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AssetClass, AssetStatus, OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest
from pydantic import ValidationError
from requests.exceptions import RequestException

from shared.broker_errors import BrokerAuthError, BrokerError, BrokerUnavailable  # noqa: F401 (re-exported)
from shared.broker_sdk import configure_rest_client
from shared.config import AlpacaSettings, ConfigError
from shared.shares import quantity, to_nano
from shared.request_budget import RequestBudget

logger = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({"filled", "canceled", "expired", "rejected", "done_for_day", "replaced"})
SIDES = ("buy", "sell")
_SYMBOL = re.compile(r"[A-Z][A-Z0-9.\-]{0,11}")
_SDK_FAILURES = (APIError, RequestException, ValidationError)


class OrderRejected(BrokerError):
    """The broker refused the order (unknown symbol, insufficient buying power, ...): no fill."""


class OrderNotFound(BrokerError):
    """No order with that id exists at the broker."""


class UnknownOrderOutcome(BrokerError):
    """A submission's answer was lost and the look-up could not settle it: reconcile later by id."""


class PartialFill(BrokerError):
    """``place_market_buy/sell`` filled fewer shares than asked; ``result`` says how many, at what price.

    Raised so that a caller recording "shares at price" cannot record shares that never filled.
    """

    def __init__(self, message: str, result: "OrderResult") -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class OrderResult:
    """What the broker says about one order; a partial fill is a fill of ``filled_shares``."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: str
    requested_shares: int | float  # a float only for a fractional order (9 decimals at most)
    filled_shares: int | float
    filled_avg_price: Optional[float]
    status: str
    filled_at: Optional[str]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class MarketClock:
    """The broker's clock; all datetimes are tz-aware UTC."""

    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


def new_client_order_id(prefix: str = "at") -> str:
    """A fresh id for one order intent (Alpaca accepts up to 128 characters)."""
    return f"{prefix}-{uuid.uuid4().hex}"


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


def _utc_string(value: Optional[datetime]) -> Optional[str]:
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _quantity(value: Any) -> int | float:
    """A quantity exactly as the broker sent it (up to 9 decimals): an int when whole, else a float."""
    try:
        return quantity(Decimal(str(value or 0)))
    except (InvalidOperation, ValueError) as exc:
        raise BrokerError(f"broker sent a quantity that is not a number: {value!r}") from exc


def _enum_value(value: Any) -> str:
    return str(getattr(value, "value", value))


def order_result(order: Any) -> OrderResult:
    """An ``OrderResult`` from alpaca-py's ``Order`` model."""
    filled = _quantity(order.filled_qty)
    price = float(order.filled_avg_price) if filled > 0 and order.filled_avg_price is not None else None
    filled_at = order.filled_at or (order.updated_at if filled > 0 else None)
    return OrderResult(
        client_order_id=order.client_order_id,
        broker_order_id=str(order.id),
        symbol=order.symbol or "",
        side=_enum_value(order.side),
        requested_shares=_quantity(order.qty),
        filled_shares=filled,
        filled_avg_price=price,
        status=_enum_value(order.status),
        filled_at=_utc_string(filled_at),
    )


def _api_message(exc: APIError) -> str:
    try:
        return str(exc.message)
    except (ValueError, KeyError, TypeError):
        return str(exc)[:200]


def translate_error(exc: Exception, action: str) -> BrokerError:
    """The typed error for an SDK failure; messages carry the broker's words, never headers."""
    if isinstance(exc, RequestException):
        return BrokerUnavailable(f"{action}: broker unreachable ({type(exc).__name__}: {str(exc)[:200]})")
    if isinstance(exc, APIError):
        status, message = exc.status_code, _api_message(exc)
        if status is None or status >= 500 or status == 429:
            return BrokerUnavailable(f"{action}: broker answered {status}: {message}", status=status)
        if status in (401, 403):
            return BrokerAuthError(
                f"{action}: broker refused the credentials ({status}: {message}); "
                "check ALPACA_API_KEY and ALPACA_SECRET", status=status)
        if status == 404:
            return OrderNotFound(f"{action}: not found ({message})", status=status)
        return BrokerError(f"{action}: broker answered {status}: {message}", status=status)
    return BrokerError(f"{action}: unexpected answer from the broker ({type(exc).__name__})")


def _is_duplicate_id(exc: APIError) -> bool:
    message = _api_message(exc).lower()
    return "client_order_id" in message and ("unique" in message or "duplicate" in message)


class AlpacaWrapper:
    """The project's only door to the broker's trading API."""

    def __init__(self, settings: AlpacaSettings, *, request_timeout: float = 10.0,
                 read_attempts: int = 3, submit_attempts: int = 2, fill_timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep, budget: Optional[RequestBudget] = None,
                 stopping: Callable[[], bool] = lambda: False) -> None:
        """``stopping``: true once the process is shutting down; a read that fails then is not retried
        (with the broker unreachable, each retry held a SIGTERM up another request timeout)."""
        self.settings = settings
        self._stopping = stopping
        try:
            client = TradingClient(self.settings.api_key, self.settings.secret, paper=self.settings.paper,
                                   url_override=self.settings.trading_url)
        except ValueError as exc:
            raise ConfigError(f"ALPACA_API_KEY / ALPACA_SECRET rejected by alpaca-py: {exc}") from None
        self._client = configure_rest_client(client, timeout=request_timeout, sdk_retries=0, budget=budget)
        self._read_attempts = max(1, read_attempts)
        self._submit_attempts = max(1, submit_attempts)
        self._fill_timeout = fill_timeout
        self._sleep = sleep
        line = f"✅ Alpaca client initialized in {self.settings.mode} mode with {self.settings.feed} feed"
        print(line, flush=True)
        logger.info("%s (trading endpoint: %s)", line, self.settings.trading_url or "Alpaca")

    # ---------------------------------------------------------------- reads
    def _read(self, action: str, call: Callable[..., Any], *args: Any) -> Any:
        """``call`` with a few retries on BrokerUnavailable; reads never change anything."""
        delay = 0.5
        for attempt in range(1, self._read_attempts + 1):
            try:
                return call(*args)
            except _SDK_FAILURES as exc:
                error = translate_error(exc, action)
                if not isinstance(error, BrokerUnavailable) or attempt == self._read_attempts or self._stopping():
                    raise error from None
                logger.warning("%s; retry %d of %d in %.1fs", error, attempt, self._read_attempts - 1, delay)
                self._sleep(delay)
                delay *= 2

    def validate_ticker(self, symbol: str) -> bool:
        """True for an active, tradable US stock; False for anything the broker does not know."""
        symbol = symbol.strip().upper() if isinstance(symbol, str) else ""
        if not _SYMBOL.fullmatch(symbol):
            return False
        try:
            asset = self._read(f"look up asset {symbol}", self._client.get_asset, symbol)
        except BrokerError as error:
            if error.status in (404, 422):
                return False
            raise
        return (asset.status == AssetStatus.ACTIVE and bool(asset.tradable)
                and asset.asset_class == AssetClass.US_EQUITY)

    def get_account_cash(self) -> float:
        """The account's total cash (not what is free for new cards: the API computes that)."""
        account = self._read("read account", self._client.get_account)
        if account.cash is None:
            raise BrokerError("read account: the broker sent no cash figure")
        return float(account.cash)

    def get_positions(self) -> dict[str, int | float]:
        """Shares held per symbol (negative for a short position); a reverse split's fractional
        remainder is kept (``3.333333333``), whole positions are ints."""
        positions = self._read("read positions", self._client.get_all_positions)
        return {p.symbol: _quantity(p.qty) for p in positions}

    def get_clock(self) -> MarketClock:
        clock = self._read("read market clock", self._client.get_clock)
        return MarketClock(timestamp=_utc(clock.timestamp), is_open=bool(clock.is_open),
                           next_open=_utc(clock.next_open), next_close=_utc(clock.next_close))

    def get_order_by_client_id(self, client_order_id: str) -> Optional[OrderResult]:
        """The order with this id, or None when the broker holds none."""
        try:
            order = self._read(f"look up order {client_order_id}", self._client.get_order_by_client_id,
                               client_order_id)
        except OrderNotFound:
            return None
        return order_result(order)

    # --------------------------------------------------------------- orders
    def submit_market_order(self, ticker: str, side: str, shares: int | float, client_order_id: str) -> OrderResult:
        """Place a DAY market order once, whatever happens to the answer (a fractional quantity, up
        to 9 decimals, is allowed: Alpaca takes fractions in market DAY orders).

        A lost answer is settled by looking ``client_order_id`` up; only when the broker confirms it
        holds no such order is the same id sent again (it would refuse a duplicate anyway).
        Raises OrderRejected, BrokerAuthError, or UnknownOrderOutcome when it cannot be settled.
        """
        request = self._order_request(ticker, side, shares, client_order_id)
        for attempt in range(1, self._submit_attempts + 1):
            try:
                return order_result(self._client.submit_order(request))
            except APIError as exc:
                lost = translate_error(exc, f"submit {client_order_id}")
                if not isinstance(lost, BrokerUnavailable):
                    return self._refused(exc, request)
            except (RequestException, ValidationError) as exc:
                lost = translate_error(exc, f"submit {client_order_id}")
            logger.warning("answer to order %s lost (%s); looking it up", client_order_id, lost)
            found = self._settle_lost_submit(client_order_id)
            if found is not None:
                return found
            if attempt < self._submit_attempts:
                logger.warning("broker holds no order %s; sending it again (attempt %d of %d)",
                               client_order_id, attempt + 1, self._submit_attempts)
        raise UnknownOrderOutcome(
            f"order {client_order_id} ({side} {shares} {request.symbol}): no answer from the broker; "
            "look it up by client_order_id later")

    @staticmethod
    def _order_request(ticker: str, side: str, shares: int | float, client_order_id: str) -> MarketOrderRequest:
        symbol = ticker.strip().upper() if isinstance(ticker, str) else ""
        if not _SYMBOL.fullmatch(symbol):
            raise ValueError(f"not a stock symbol: {ticker!r}")
        if side not in SIDES:
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        if isinstance(shares, bool) or not isinstance(shares, (int, float)) or not to_nano(shares) > 0 \
                or quantity(shares) != shares:
            raise ValueError(f"shares must be a positive number with 9 decimals at most, got {shares!r}")
        if not isinstance(client_order_id, str) or not 0 < len(client_order_id) <= 128:
            raise ValueError("client_order_id must be a string of 1 to 128 characters")
        return MarketOrderRequest(symbol=symbol, qty=shares, side=OrderSide(side),
                                  time_in_force=TimeInForce.DAY, client_order_id=client_order_id)

    def _refused(self, exc: APIError, request: MarketOrderRequest) -> OrderResult:
        """A 4xx answer to a submission: a duplicate id means "look it up", anything else is final."""
        cid = request.client_order_id
        if not _is_duplicate_id(exc):
            what = f"order {cid} ({request.side.value} {quantity(request.qty)} {request.symbol})"
            if exc.status_code == 401:
                raise translate_error(exc, what) from None
            raise OrderRejected(f"{what} refused by the broker ({exc.status_code}): {_api_message(exc)}",
                                status=exc.status_code) from None
        existing = self.get_order_by_client_id(cid)
        if existing is None:
            raise UnknownOrderOutcome(f"order {cid}: broker calls the id a duplicate but cannot find it")
        if (existing.symbol, existing.side, to_nano(existing.requested_shares)) != (
                request.symbol, request.side.value, to_nano(request.qty)):
            raise BrokerError(f"client_order_id {cid} already names a different order "
                              f"({existing.side} {existing.requested_shares} {existing.symbol})")
        logger.info("order %s was already placed; using the broker's copy", cid)
        return existing

    def _settle_lost_submit(self, client_order_id: str) -> Optional[OrderResult]:
        """The order if the broker holds it, None if it confirms it does not; else UnknownOrderOutcome."""
        try:
            return self.get_order_by_client_id(client_order_id)
        except BrokerError as error:
            raise UnknownOrderOutcome(
                f"order {client_order_id}: submission answer lost and look-up failed ({error}); "
                "look it up by client_order_id later", status=error.status) from None

    def wait_for_terminal(self, client_order_id: str, timeout: float = 30.0) -> OrderResult:
        """Poll until the order is final or ``timeout`` seconds pass; returns the last state seen.

        A result with ``is_terminal`` False means the wait timed out (the order may still fill).
        Raises OrderNotFound for an unknown id, BrokerUnavailable if the broker never answered.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        interval, last, last_error = 0.1, None, None
        while True:
            try:
                result = self.get_order_by_client_id(client_order_id)
            except BrokerUnavailable as error:
                last_error = error
            else:
                if result is None:
                    raise OrderNotFound(f"no order with client_order_id {client_order_id}", status=404)
                last = result
                if result.is_terminal:
                    return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._sleep(min(interval, remaining))
            interval = min(interval * 1.5, 2.0)
        if last is None:
            raise last_error or BrokerUnavailable(f"order {client_order_id}: no answer within {timeout}s")
        logger.warning("order %s still %s after %.1fs", client_order_id, last.status, timeout)
        return last

    def cancel_order(self, client_order_id: str, timeout: float = 10.0) -> OrderResult:
        """Cancel what is still open of an order and return its final state (fills are kept)."""
        current = self.get_order_by_client_id(client_order_id)
        if current is None:
            raise OrderNotFound(f"no order with client_order_id {client_order_id}", status=404)
        if current.is_terminal:
            return current
        try:
            self._client.cancel_order_by_id(current.broker_order_id)
        except _SDK_FAILURES as exc:
            error = translate_error(exc, f"cancel order {client_order_id}")
            if error.status != 422:  # 422: no longer cancelable, i.e. it just became final
                raise error from None
        return self.wait_for_terminal(client_order_id, timeout)

    def place_market_buy(self, ticker: str, shares: int) -> float:
        """Buy ``shares`` now; the average fill price (the spec's API).

        Raises OrderRejected when nothing filled and PartialFill when only some shares did.
        """
        return self._filled_price(self.place_market_order(ticker, "buy", shares), shares)

    def place_market_sell(self, ticker: str, shares: int) -> float:
        """Sell ``shares`` now; the average fill price. Raises like ``place_market_buy``."""
        return self._filled_price(self.place_market_order(ticker, "sell", shares), shares)

    def place_market_order(self, ticker: str, side: str, shares: int) -> OrderResult:
        """Submit with a fresh id, wait for the end, and cancel any remainder still open then.

        The remainder is cancelled so that nothing can fill later without being recorded.
        """
        client_order_id = new_client_order_id()
        self.submit_market_order(ticker, side, shares, client_order_id)
        result = self.wait_for_terminal(client_order_id, self._fill_timeout)
        return result if result.is_terminal else self.cancel_order(client_order_id)

    @staticmethod
    def _filled_price(result: OrderResult, shares: int) -> float:
        what = f"{result.side} {shares} {result.symbol}"
        if result.filled_shares <= 0 or result.filled_avg_price is None:
            raise OrderRejected(f"{what}: nothing filled (order {result.status})")
        if result.filled_shares < shares:
            raise PartialFill(f"{what}: only {result.filled_shares} filled at "
                              f"{result.filled_avg_price} (order {result.status})", result)
        return result.filled_avg_price
