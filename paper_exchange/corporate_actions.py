"""Splits, reverse splits and cash dividends: scheduled per symbol and ex-date, served as Alpaca serves them.

At the open of the ex-date session, before any order fills there, an action is applied to the
account the way Alpaca applies it: a split multiplies the position by new_rate/old_rate (to 9
decimals, the fractional remainder kept), leaves the cost basis alone (so the average entry price
is divided) and cancels open orders in the symbol; a cash dividend credits qty x rate to cash.
Raw prices of the symbol are divided by the split ratio from the ex-date on; history before it
can be requested split-adjusted (``adjustment=split|all``) or dividend-adjusted
(``adjustment=dividend|all``). Market data serves them on ``GET /v1/corporate-actions``, the
path and shape alpaca-py's ``CorporateActionsClient.get_corporate_actions`` reads.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Iterable, Optional

from flask import Flask, jsonify, request

from .broker import ApiError
from .clock import MarketCalendar, utc_z
from .market import CENT, Bar, _ny_day
from .quantities import whole_if_possible

if TYPE_CHECKING:
    from .broker import Broker
    from .market import Market
    from .server import Exchange

logger = logging.getLogger(__name__)

KINDS = ("forward_split", "reverse_split", "cash_dividend")
JUST_BEFORE = timedelta(microseconds=1)
GROUPS = {"forward_split": "forward_splits", "reverse_split": "reverse_splits", "cash_dividend": "cash_dividends"}
ALPACA_TYPES = ("reverse_split", "forward_split", "unit_split", "cash_dividend", "stock_dividend", "spin_off",
                "cash_merger", "stock_merger", "stock_and_cash_merger", "redemption", "name_change",
                "worthless_removal", "rights_distribution")  # accepted as filters; only KINDS are simulated
ADJUSTMENTS = ("raw", "split", "dividend", "all")
NINE_PLACES = Decimal("0.000000001")
ACTION_NAMESPACE = uuid.UUID("0f8c3a52-6d0e-4c8e-a1f4-3b9d2e7c5a61")


class ActionError(ValueError):
    """A corporate action that cannot be scheduled (bad symbol, date or rate)."""


@dataclass(frozen=True)
class CorporateAction:
    kind: str
    symbol: str
    ex_date: str
    new_rate: Optional[Decimal] = None
    old_rate: Optional[Decimal] = None
    rate: Optional[Decimal] = None

    @property
    def id(self) -> str:
        return str(uuid.uuid5(ACTION_NAMESPACE, f"{self.kind}|{self.symbol}|{self.ex_date}"))

    @property
    def is_split(self) -> bool:
        return self.kind != "cash_dividend"

    @property
    def price_factor(self) -> float:
        """What raw prices from the ex-date on are multiplied by (old/new)."""
        return float(self.old_rate / self.new_rate) if self.is_split else 1.0

    def spec(self) -> dict:
        """The schedule request this action came from (what ``CorporateActions.parse`` takes)."""
        rates = {"rate": str(self.rate)} if not self.is_split else \
            {"new_rate": str(self.new_rate), "old_rate": str(self.old_rate)}
        return {"symbol": self.symbol, "type": self.kind, "ex_date": self.ex_date, **rates}

    def alpaca_json(self) -> dict:
        """One entry exactly as Alpaca's ``/v1/corporate-actions`` lists it."""
        dates = {"process_date": self.ex_date, "ex_date": self.ex_date, "record_date": self.ex_date,
                 "payable_date": self.ex_date}
        if self.kind == "forward_split":
            return {"id": self.id, "symbol": self.symbol, "cusip": cusip(self.symbol),
                    "new_rate": float(self.new_rate), "old_rate": float(self.old_rate), **dates}
        if self.kind == "reverse_split":
            return {"id": self.id, "symbol": self.symbol, "old_cusip": cusip(self.symbol),
                    "new_cusip": cusip(self.symbol + "/R"), "new_rate": float(self.new_rate),
                    "old_rate": float(self.old_rate), **dates}
        return {"id": self.id, "symbol": self.symbol, "cusip": cusip(self.symbol), "rate": float(self.rate),
                "special": False, "foreign": False, **dates}


def cusip(symbol: str) -> str:
    """A stable 9-character stand-in for the symbol's CUSIP."""
    return hashlib.sha1(symbol.encode()).hexdigest()[:9].upper()


def _rate(value, name: str) -> Decimal:
    try:
        rate = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ActionError(f"{name} must be a positive number, got {value!r}") from None
    if isinstance(value, bool) or not rate.is_finite() or rate <= 0:
        raise ActionError(f"{name} must be a positive number, got {value!r}")
    return rate


class CorporateActions:
    """The scheduled actions of one exchange and which of them the account has already been through."""

    def __init__(self, calendar: MarketCalendar, market: "Market") -> None:
        self.calendar, self.market = calendar, market
        self._actions: dict[str, CorporateAction] = {}
        self._applied: dict[str, str] = {}  # action id -> UTC time it was applied
        self._lock = threading.Lock()
        self._store = None
        market.price_factor = self.raw_factor

    def attach(self, store) -> None:
        """Keep the schedule in ``store`` (state.py) and take over what a previous run scheduled and applied."""
        for spec, applied_at in store.corporate_actions():
            action = self.parse(spec)
            with self._lock:
                self._actions[action.id] = action
                if applied_at:
                    self._applied[action.id] = applied_at
        with self._lock:
            self._store = store
            known = list(self._actions.values())
        for action in known:
            store.save_corporate_action(action.id, action.spec())
        self.market.forget_sessions()

    def knows(self, action: CorporateAction) -> bool:
        with self._lock:
            return action.id in self._actions

    # ---- scheduling ---------------------------------------------------------------------------
    def parse(self, spec) -> CorporateAction:
        """Validate ``{"symbol", "type", "ex_date", "new_rate"+"old_rate" | "rate"}``."""
        if not isinstance(spec, dict):
            raise ActionError("a corporate action must be a JSON object")
        unknown = set(spec) - {"symbol", "type", "ex_date", "new_rate", "old_rate", "rate"}
        if unknown:
            raise ActionError(f"unknown field(s): {', '.join(sorted(unknown))}")
        kind, symbol, ex_date = spec.get("type"), spec.get("symbol"), spec.get("ex_date")
        if kind not in KINDS:
            raise ActionError(f"type must be one of {', '.join(KINDS)}, got {kind!r}")
        asset = self.market.asset(symbol) if isinstance(symbol, str) else None
        if asset is None or not asset.active or asset.symbol != symbol.upper():
            raise ActionError(f"symbol must be an active asset, got {symbol!r}")
        if not isinstance(ex_date, str) or self._session(ex_date) is None:
            raise ActionError(f"ex_date must be a trading day (YYYY-MM-DD), got {ex_date!r}")
        if kind == "cash_dividend":
            return CorporateAction(kind, asset.symbol, ex_date, rate=_rate(spec.get("rate"), "rate"))
        new, old = _rate(spec.get("new_rate"), "new_rate"), _rate(spec.get("old_rate"), "old_rate")
        if (kind == "forward_split") != (new > old):
            raise ActionError(f"a {kind} needs new_rate {'>' if kind == 'forward_split' else '<'} old_rate")
        return CorporateAction(kind, asset.symbol, ex_date, new_rate=new, old_rate=old)

    def schedule(self, action: CorporateAction, now: datetime) -> CorporateAction:
        """Add an action whose ex-date session has not opened yet; raw prices change from then on."""
        opening = self._session(action.ex_date)[0]
        if opening <= now:
            raise ActionError(f"ex_date {action.ex_date} has already opened; schedule a later session")
        with self._lock:
            if action.id in self._actions:
                raise ActionError(f"a {action.kind} of {action.symbol} on {action.ex_date} is already scheduled")
            self._actions[action.id] = action
            store = self._store
        if store is not None:
            store.save_corporate_action(action.id, action.spec())
        self.market.forget_sessions()
        logger.info("scheduled %s of %s on %s", action.kind, action.symbol, action.ex_date)
        return action

    def _session(self, day: str):
        try:
            return self.calendar.session_bounds(datetime.strptime(day, "%Y-%m-%d").strftime("%Y-%m-%d"))
        except ValueError:
            return None

    # ---- prices -------------------------------------------------------------------------------
    def raw_factor(self, symbol: str, day: str) -> float:
        """Raw prices of ``symbol`` on ``day``: the model's price times this (splits up to and on that day)."""
        factor = 1.0
        for action in self._splits(symbol):
            if action.ex_date <= day:
                factor *= action.price_factor
        return factor

    def adjusted(self, bars: list[Bar], adjustment: str, now: datetime) -> list[Bar]:
        """``bars`` as Alpaca's ``adjustment`` asks: earlier prices scaled by every action known by now."""
        if adjustment not in ADJUSTMENTS:
            raise ApiError(400, f"invalid adjustment: {adjustment}")
        if adjustment == "raw" or not bars:
            return bars
        today = _ny_day(now)  # the ex-date is a New York day (at 20:00 New York it is tomorrow in UTC)
        with self._lock:
            actions = [a for a in self._actions.values() if a.ex_date <= today]
        splits = [a for a in actions if a.is_split and adjustment in ("split", "all")]
        dividends = [a for a in actions if not a.is_split and adjustment in ("dividend", "all")]
        return [self._scaled(bar, splits, dividends) for bar in bars]

    def _scaled(self, bar: Bar, splits: list, dividends: list) -> Bar:
        day = _ny_day(bar.timestamp)
        factor = 1.0
        for action in splits:
            if action.symbol == bar.symbol and day < action.ex_date:
                factor *= action.price_factor
        for action in dividends:
            if action.symbol == bar.symbol and day < action.ex_date:
                factor *= 1.0 - float(action.rate) / self._close_before(action)
        if factor == 1.0:
            return bar
        price = lambda value: round(value * factor, 2)
        return Bar(bar.symbol, bar.timestamp, price(bar.open), price(bar.high), price(bar.low), price(bar.close),
                   max(1, int(round(bar.volume / factor))) if any(day < a.ex_date for a in splits) else bar.volume,
                   bar.trade_count, round(bar.vwap * factor, 4))

    def _close_before(self, action: CorporateAction) -> float:
        opening, _ = self._session(action.ex_date)
        return float(self.market.previous_close(action.symbol, opening))

    def _splits(self, symbol: str) -> list[CorporateAction]:
        with self._lock:
            return [a for a in self._actions.values() if a.symbol == symbol and a.is_split]

    # ---- the account --------------------------------------------------------------------------
    def apply_due(self, broker: "Broker", now: datetime, real: float) -> None:
        """Called by the broker as it settles: apply each action whose ex-date session has opened."""
        for opening, action in self._due(now):
            # what filled before the open filled at the old price; an order due at the open itself (sent
            # after the last close) is still open when the split cancels it, as Alpaca cancels it
            broker.advance_orders(opening - JUST_BEFORE, real)
            self._apply(broker, action, opening)
            with self._lock:
                self._applied[action.id] = utc_z(opening)
            broker.corporate_action_applied(action.id, utc_z(opening))

    def _due(self, now: datetime) -> list[tuple[datetime, CorporateAction]]:
        with self._lock:
            waiting = [a for a in self._actions.values() if a.id not in self._applied]
        due = [(self._session(a.ex_date)[0], a) for a in waiting]
        return sorted((item for item in due if item[0] <= now), key=lambda item: (item[0], item[1].id))

    def _apply(self, broker: "Broker", action: CorporateAction, opening: datetime) -> None:
        position = broker.positions.get(action.symbol)
        if action.is_split:
            cancelled = broker.cancel_open_orders(action.symbol, opening)
            if position is not None:
                position.qty = whole_if_possible((Decimal(position.qty) * action.new_rate / action.old_rate)
                                                 .quantize(NINE_PLACES))
            logger.info("%s %s %s:%s applied at %s: position %s, %d open order(s) cancelled", action.kind,
                        action.symbol, action.new_rate, action.old_rate, utc_z(opening),
                        position.qty if position else 0, cancelled)
        elif position is not None:
            cash = (Decimal(position.qty) * action.rate).quantize(CENT, rounding=ROUND_HALF_UP)
            broker.cash += cash
            logger.info("dividend %s of %s on %s shares: %s credited", action.rate, action.symbol, position.qty, cash)

    # ---- reading ------------------------------------------------------------------------------
    def listed(self, *, symbols: Optional[Iterable[str]] = None, types: Optional[Iterable[str]] = None,
               ids: Optional[Iterable[str]] = None, start: Optional[str] = None,
               end: Optional[str] = None) -> list[CorporateAction]:
        """Actions matching Alpaca's filters (ex-date within [start, end]), oldest first."""
        wanted_symbols, wanted_types, wanted_ids = (set(x) if x else None for x in (symbols, types, ids))
        with self._lock:
            actions = list(self._actions.values())
        return sorted((a for a in actions
                       if (wanted_ids is None or a.id in wanted_ids)
                       and (wanted_symbols is None or a.symbol in wanted_symbols)
                       and (wanted_types is None or a.kind in wanted_types)
                       and (start is None or a.ex_date >= start) and (end is None or a.ex_date <= end)),
                      key=lambda a: (a.ex_date, a.symbol, a.kind))

    def snapshot(self) -> list[dict]:
        with self._lock:
            applied = dict(self._applied)
            actions = sorted(self._actions.values(), key=lambda a: (a.ex_date, a.symbol, a.kind))
        return [{"type": a.kind, **a.alpaca_json(), "applied_at": applied.get(a.id)} for a in actions]



# --------------------------------------------------------------------------- HTTP


def register(app: Flask, exchange: "Exchange") -> None:
    """``GET /v1/corporate-actions`` (Alpaca market data) and ``/_sim/corporate_actions`` (test control)."""
    actions = exchange.corporate_actions

    @app.get("/v1/corporate-actions")
    def corporate_actions():
        args = request.args
        today = _ny_day(exchange.clock.now())
        if args.get("ids"):  # ids exclude every other filter, as on Alpaca
            listed = actions.listed(ids=_list(args["ids"]))
        else:
            listed = actions.listed(symbols=_list(args.get("symbols")), types=_types(args.get("types")),
                                    start=_day(args.get("start"), "start", today),
                                    end=_day(args.get("end"), "end", today))
        if args.get("sort", "asc") not in ("asc", "desc"):
            raise ApiError(400, f"invalid sort: {args.get('sort')}")
        if args.get("sort") == "desc":
            listed.reverse()
        offset, limit = _offset(args.get("page_token")), _limit(args.get("limit"))
        page = listed[offset:offset + limit]
        grouped: dict[str, list] = {}
        for action in page:
            grouped.setdefault(GROUPS[action.kind], []).append(action.alpaca_json())
        more = offset + limit < len(listed)
        return jsonify({"corporate_actions": grouped, "next_page_token": _token(offset + limit) if more else None})

    @app.get("/_sim/corporate_actions")
    def scheduled():
        with exchange.broker.lock:
            exchange.broker.settle()
            return jsonify(actions.snapshot())

    @app.post("/_sim/corporate_actions")
    def schedule():
        body = request.get_json(silent=True)
        specs = body if isinstance(body, list) else [body]
        try:
            parsed = [actions.parse(spec) for spec in specs]
            with exchange.broker.lock:
                exchange.broker.settle()  # what was due before now happens before the new schedule
                for action in parsed:
                    actions.schedule(action, exchange.clock.now())
        except ActionError as error:
            return jsonify({"error": str(error)}), 400
        return jsonify({"scheduled": [{"type": a.kind, **a.alpaca_json()} for a in parsed]})


def _list(raw: Optional[str]) -> Optional[list[str]]:
    return [item.strip() for item in raw.split(",") if item.strip()] if raw else None


def _types(raw: Optional[str]) -> Optional[list[str]]:
    types = _list(raw)
    for kind in types or []:
        if kind not in ALPACA_TYPES:
            raise ApiError(400, f"invalid types: {kind}")
    return types


def _day(raw: Optional[str], name: str, default: str) -> str:
    if not raw:
        return default
    try:
        return datetime.strptime(raw, "%Y-%m-%d").strftime("%Y-%m-%d")
    except ValueError:
        raise ApiError(400, f"invalid {name}: {raw}") from None


def _limit(raw: Optional[str]) -> int:
    try:
        value = int(raw) if raw else 1000
    except ValueError:
        raise ApiError(400, f"invalid limit: {raw}") from None
    if not 1 <= value <= 1000:
        raise ApiError(400, f"invalid limit: {raw} (1 to 1000)")
    return value


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"ca|{offset}".encode()).decode().rstrip("=")


def _offset(token: Optional[str]) -> int:
    if not token:
        return 0
    try:
        tag, offset = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split("|")
        if tag != "ca" or int(offset) < 0:
            raise ValueError(token)
        return int(offset)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid page token") from None
