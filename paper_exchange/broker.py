"""One paper account: cash, positions and market orders, with Alpaca's order life cycle.

A market order is ``accepted`` when it arrives, ``new`` once the market is open and it waits on
the fill delay, then ``filled`` (or ``partially_filled`` and later ``canceled`` for the rest, or
``rejected``) at the simulated price of the moment it became due. As at Alpaca, a quantity may
carry a fraction (up to 9 decimals) in a DAY market order, e.g. to sell a reverse split's
remainder; a GTC order must be whole shares. Orders that arrive while the
market is closed wait for the next open, as Alpaca queues DAY market orders; a DAY order that
cannot fill before its session closes expires. State advances lazily: every caller runs
``settle()`` first, which computes what has happened since, with the times it happened.
Money is Decimal throughout, so cash + cost of positions always adds up to the cent.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Callable, Optional

from .clock import MarketCalendar, SimClock, utc_z
from .market import CENT, Market
from .quantities import QuantityError, order_quantity, whole_if_possible
from .state import Fill, Saved, Store

OPEN_STATUSES = ("pending_new", "accepted", "new", "partially_filled")
TIME_IN_FORCE = ("day", "gtc")


class ApiError(Exception):
    """An Alpaca-style error answer: HTTP status plus JSON body (``code`` and ``message``)."""

    def __init__(self, status: int, message: str, code: Optional[int] = None, **extra) -> None:
        super().__init__(message)
        self.status = status
        self.body = ({"code": code} if code is not None else {}) | {"message": message} | extra


@dataclass(frozen=True)
class OrderBehaviour:
    """How the exchange will treat one order, fixed by the controls at submission."""

    fill_delay_seconds: float = 0.0
    partial_fill_ratio: Optional[float] = None
    partial_fill_hold_seconds: float = 1.0
    reject: bool = False


@dataclass
class Order:
    id: str
    client_order_id: str
    symbol: str
    asset_id: str
    side: str
    qty: int | Decimal  # a Decimal only for a fractional (DAY) order
    time_in_force: str
    created_at: datetime
    behaviour: OrderBehaviour
    ready_real: float              # monotonic time at which the fill delay has passed
    session: tuple[datetime, datetime]
    reserve_price: Decimal
    status: str = "accepted"
    updated_at: Optional[datetime] = None
    filled_qty: int | Decimal = 0
    filled_avg_price: Optional[Decimal] = None
    filled_at: Optional[datetime] = None
    canceled_at: Optional[datetime] = None
    expired_at: Optional[datetime] = None
    failed_at: Optional[datetime] = None
    partial_until_real: Optional[float] = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> int:
        return self.qty - self.filled_qty if self.is_open else 0


@dataclass
class Position:
    symbol: str
    qty: int | Decimal = 0  # a Decimal only when a reverse split left a fractional remainder
    cost_basis: Decimal = field(default_factory=lambda: Decimal("0"))

    @property
    def avg_entry_price(self) -> Decimal:
        return (self.cost_basis / self.qty).quantize(Decimal("0.0001")) if self.qty else Decimal("0")


class Broker:
    """The account's books. All public methods take the lock and settle first."""

    def __init__(self, clock: SimClock, calendar: MarketCalendar, market: Market, cash: Decimal,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.clock, self.calendar, self.market = clock, calendar, market
        self.initial_cash = Decimal(cash).quantize(CENT)
        self.cash = self.initial_cash
        self.orders: dict[str, Order] = {}
        self.by_client_id: dict[str, Order] = {}
        self.positions: dict[str, Position] = {}
        self.account_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"paper-exchange-account-{market.seed}"))
        self.created_at = clock.now()
        self._monotonic = monotonic
        self.lock = threading.RLock()
        self.corporate_actions = None  # applies splits and dividends as sessions open (corporate_actions.py)
        self._store: Optional[Store] = None
        self._dirty: dict[str, Order] = {}
        self._new_fills: list[Fill] = []
        self._applied_actions: list[tuple[str, str]] = []  # corporate actions applied, not yet saved

    # ---- persistence ------------------------------------------------------------------------
    def attach(self, store: Store, saved: Optional[Saved]) -> None:
        """Write every change to ``store`` from now on, after taking over what it ``saved``."""
        with self.lock:
            self._store = store
            if saved is None:
                store.create_account(self.account_id, self.created_at, self.initial_cash, self.market.seed,
                                     self.clock.now())
                return
            self.account_id, self.created_at = saved.account_id, saved.created_at
            self.initial_cash, self.cash = saved.initial_cash, saved.cash
            known = {f.name for f in dataclasses.fields(Order)}
            for fields in saved.orders:  # fields added since the file was written take their defaults
                fields["behaviour"] = OrderBehaviour(**fields["behaviour"])
                order = Order(**{k: v for k, v in fields.items() if k in known})
                self.orders[order.id] = order
                self.by_client_id[order.client_order_id] = order
            self.positions = {s: Position(s, q, c) for s, q, c in saved.positions}

    def _persist(self) -> None:
        """Write what changed since the last call, before anyone is told about it."""
        if self._store is not None and (self._dirty or self._new_fills or self._applied_actions):
            positions = [(p.symbol, p.qty, p.cost_basis) for p in self.positions.values()]
            self._store.save_books(self.cash, list(self._dirty.values()), positions, self._new_fills,
                                   self._applied_actions)
        self._dirty.clear()
        self._new_fills = []
        self._applied_actions = []

    def corporate_action_applied(self, action_id: str, at: str) -> None:
        """Saved with the positions and cash the action changed, in the same transaction."""
        self._applied_actions.append((action_id, at))

    # ---- submitting -----------------------------------------------------------------------
    def submit(self, body: dict, behaviour: OrderBehaviour) -> Order:
        """Validate an order request as Alpaca does and book it; raises ApiError."""
        with self.lock:
            self.settle()
            now = self.clock.now()
            symbol, side, qty, tif, client_order_id = self._validate(body)
            price = self.market.price_at(symbol, now)
            self._check_funds(symbol, side, qty, price)
            order = Order(
                id=str(uuid.uuid4()), client_order_id=client_order_id, symbol=symbol,
                asset_id=self.market.asset(symbol).id, side=side, qty=qty, time_in_force=tif,
                created_at=now, updated_at=now, behaviour=behaviour,
                ready_real=self._monotonic() + max(behaviour.fill_delay_seconds, 0.0),
                session=self.calendar.next_session(now), reserve_price=price,
            )
            self.orders[order.id] = order
            self.by_client_id[client_order_id] = order
            self._dirty[order.id] = order
            try:
                self._persist()
            except Exception:
                del self.orders[order.id], self.by_client_id[client_order_id], self._dirty[order.id]
                raise
            return order

    def _validate(self, body: dict) -> tuple[str, str, int, str, str]:
        if not isinstance(body, dict):
            raise ApiError(400, "request body format is invalid", 40010000)
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise ApiError(422, "symbol is required", 40010001)
        asset = self.market.asset(symbol)
        if asset is None or asset.symbol != symbol.upper():
            raise ApiError(422, f'asset "{symbol}" not found', 40010001)
        if not asset.active:
            raise ApiError(422, f"asset {asset.symbol} is not active", 42210000)
        side = body.get("side")
        if side not in ("buy", "sell"):
            raise ApiError(422, "invalid side", 40010001)
        order_type = body.get("type", body.get("order_type"))
        if order_type != "market":
            raise ApiError(422, f"order type {order_type!r} is not supported by the paper exchange "
                                "(market orders only)", 40010001)
        if body.get("notional") is not None:
            raise ApiError(422, "notional orders are not supported by the paper exchange", 40010001)
        try:
            qty = order_quantity(body.get("qty"))
        except QuantityError as exc:
            raise ApiError(422, str(exc), 40010001) from None
        tif = body.get("time_in_force")
        if tif not in TIME_IN_FORCE:
            raise ApiError(422, "invalid time_in_force (the paper exchange takes day or gtc)", 40010001)
        if isinstance(qty, Decimal) and tif != "day":
            raise ApiError(422, "fractional orders must be DAY orders", 42210000)
        client_order_id = body.get("client_order_id") or str(uuid.uuid4())
        if not isinstance(client_order_id, str) or len(client_order_id) > 128:
            raise ApiError(422, "client_order_id must be no more than 128 characters", 40010001)
        if client_order_id in self.by_client_id:
            raise ApiError(422, "client_order_id must be unique", 40010001)
        return asset.symbol, side, qty, tif, client_order_id

    def _check_funds(self, symbol: str, side: str, qty: int | Decimal, price: Decimal) -> None:
        if side == "buy":
            cost = price * qty
            buying_power = self.buying_power()
            if cost > buying_power:
                raise ApiError(403, "insufficient buying power", 40310000,
                               buying_power=str(buying_power), cost_basis=str(cost))
            return
        position = self.positions.get(symbol)
        existing = position.qty if position else 0
        held = sum(o.remaining for o in self.orders.values() if o.symbol == symbol and o.side == "sell")
        available = existing - held
        if qty > available:
            raise ApiError(403, f"insufficient qty available for order (requested: {qty}, available: {available})",
                           40310000, available=str(available), existing_qty=str(existing),
                           held_for_orders=str(held), symbol=symbol, related_orders=[])

    def buying_power(self) -> Decimal:
        reserved = sum((o.reserve_price * o.remaining for o in self.orders.values() if o.side == "buy"),
                       Decimal("0"))
        return max(self.cash - reserved, Decimal("0")).quantize(CENT)

    # ---- time passing ---------------------------------------------------------------------
    def settle(self) -> None:
        """Bring every open order up to date with the simulated clock."""
        with self.lock:
            now, real = self.clock.now(), self._monotonic()
            if self.corporate_actions is not None:
                self.corporate_actions.apply_due(self, now, real)
            self.advance_orders(now, real)
            self._persist()

    def advance_orders(self, now: datetime, real: float) -> None:
        """Bring every open order up to ``now`` (a corporate action settles orders up to its open first)."""
        for order in list(self.orders.values()):
            if order.is_open:
                before = (order.status, order.filled_qty, order.session)
                self._advance(order, now, real)
                if (order.status, order.filled_qty, order.session) != before:
                    self._dirty[order.id] = order

    def cancel_open_orders(self, symbol: str, moment: datetime) -> int:
        """Cancel every open order in ``symbol`` (a split does this at the open); returns how many."""
        open_orders = [o for o in self.orders.values() if o.symbol == symbol and o.is_open]
        for order in open_orders:
            self._finish(order, "canceled", moment)
            self._dirty[order.id] = order
        return len(open_orders)

    def _advance(self, order: Order, now: datetime, real: float) -> None:
        if order.status == "partially_filled":
            if order.partial_until_real is not None and real >= order.partial_until_real:
                self._finish(order, "canceled", now)
            return
        opening, closing = order.session
        if now >= opening and order.status == "accepted":
            order.status, order.updated_at = "new", max(opening, order.created_at)
        due = max(opening, order.created_at, self.clock.at_real(order.ready_real)) if real >= order.ready_real else None
        if due is None:
            if now >= closing:
                self._expire_or_roll(order, closing)
            return
        if due >= closing:
            self._expire_or_roll(order, closing)
            if order.is_open:
                self._advance(order, now, real)
            return
        if due > now:
            return
        if order.behaviour.reject:
            order.status, order.failed_at, order.updated_at = "rejected", due, due
            return
        self._fill(order, due, real)

    def _expire_or_roll(self, order: Order, closing: datetime) -> None:
        if order.time_in_force == "gtc":
            order.session = self.calendar.next_session(closing)
            order.status = "accepted"
        else:
            self._finish(order, "expired", closing)

    def _fill(self, order: Order, moment: datetime, real: float) -> None:
        ratio = order.behaviour.partial_fill_ratio  # a partial fill is whole shares, rounded down
        quantity = order.qty if ratio is None else int(math.floor(Decimal(order.qty) * Decimal(str(ratio))))
        if quantity <= 0:
            self._finish(order, "canceled", moment)
            return
        price = self.market.price_at(order.symbol, moment)
        self._book(order.symbol, order.side, quantity, price)
        self._new_fills.append(Fill(order.id, order.symbol, order.side, quantity, price, moment))
        order.filled_qty, order.filled_avg_price = quantity, price
        order.filled_at = order.updated_at = moment
        if quantity == order.qty:
            order.status = "filled"
        else:
            order.status = "partially_filled"
            order.partial_until_real = real + max(order.behaviour.partial_fill_hold_seconds, 0.0)

    def _finish(self, order: Order, status: str, moment: datetime) -> None:
        order.status, order.updated_at = status, moment
        if status == "canceled":
            order.canceled_at = moment
        elif status == "expired":
            order.expired_at = moment

    def _book(self, symbol: str, side: str, quantity: int | Decimal, price: Decimal) -> None:
        position = self.positions.setdefault(symbol, Position(symbol))
        amount = (price * quantity).quantize(CENT)
        if side == "buy":
            self.cash -= amount
            position.qty += quantity
            position.cost_basis += amount
        else:
            self.cash += amount
            position.cost_basis -= (position.cost_basis * quantity / position.qty).quantize(CENT)
            position.qty -= quantity
        position.qty = whole_if_possible(position.qty)
        if position.qty == 0:
            del self.positions[symbol]

    # ---- cancel ---------------------------------------------------------------------------
    def cancel(self, order_id: str) -> None:
        with self.lock:
            self.settle()
            order = self.orders.get(order_id)
            if order is None:
                raise ApiError(404, f"order not found for {order_id}", 40410000)
            if not order.is_open:
                raise ApiError(422, "order is not cancelable", 42210000)
            self._finish(order, "canceled", self.clock.now())
            self._dirty[order.id] = order
            self._persist()

    # ---- reading --------------------------------------------------------------------------
    def find(self, order_id: str) -> Order:
        with self.lock:
            self.settle()
            order = self.orders.get(order_id)
            if order is None:
                raise ApiError(404, f"order not found for {order_id}", 40410000)
            return order

    def find_by_client_id(self, client_order_id: str) -> Order:
        with self.lock:
            self.settle()
            order = self.by_client_id.get(client_order_id)
            if order is None:
                raise ApiError(404, "order not found", 40410000)
            return order

    def list_orders(self) -> list[Order]:
        with self.lock:
            self.settle()
            return list(self.orders.values())

    def open_positions(self) -> list[Position]:
        with self.lock:
            self.settle()
            return sorted(self.positions.values(), key=lambda p: p.symbol)


def order_json(order: Order) -> dict:
    """An order exactly as Alpaca's REST API renders it."""
    stamp = lambda moment: utc_z(moment, micros=True) if moment else None
    return {
        "id": order.id, "client_order_id": order.client_order_id,
        "created_at": stamp(order.created_at), "updated_at": stamp(order.updated_at or order.created_at),
        "submitted_at": stamp(order.created_at), "filled_at": stamp(order.filled_at),
        "expired_at": stamp(order.expired_at), "canceled_at": stamp(order.canceled_at),
        "failed_at": stamp(order.failed_at), "replaced_at": None, "replaced_by": None, "replaces": None,
        "asset_id": order.asset_id, "symbol": order.symbol, "asset_class": "us_equity",
        "notional": None, "qty": str(order.qty), "filled_qty": str(order.filled_qty),
        "filled_avg_price": str(order.filled_avg_price) if order.filled_avg_price is not None else None,
        "order_class": "", "order_type": "market", "type": "market", "side": order.side,
        "position_intent": "buy_to_open" if order.side == "buy" else "sell_to_close",
        "time_in_force": order.time_in_force, "limit_price": None, "stop_price": None,
        "status": order.status, "extended_hours": False, "legs": None, "trail_percent": None,
        "trail_price": None, "hwm": None, "subtag": None, "source": None, "expires_at": None,
    }
