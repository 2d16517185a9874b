"""A small, obviously-right broker for the money model (``tests/money_model.py``): the world the
ledger must agree with.

It keeps an account as Alpaca does, in exact arithmetic: cash in ``Decimal`` dollars, each
position in nano-shares (``shared.shares``), and every order by its ``client_order_id`` with
what filled of it. It speaks the trader's ``Broker`` protocol in-process (no threads, no
network). How each order goes is set per ticker before a minute (``moods``): filled at once,
partly filled then cancelled, filled only as the cancel arrives, left working (its first cancel
fails; it has filled when the next one arrives), rejected, or its answer lost (received or
not). Market orders fill at the minute's price (no slippage: a card's cash check is exact). A
split multiplies the position to nine decimals (the paper exchange's arithmetic), a dividend
pays ``qty x rate`` in cents (half up), the owner may sell at the broker behind the cards' backs,
and the process that calls it may die at any call (``Fate``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Dict, List, Optional

from orchestra.alpaca_wrapper import BrokerError, OrderRejected, OrderResult
from shared.clock import stamp
from shared.shares import NANO, from_nano, to_nano

CENT = Decimal("0.01")
MOODS = ("fill", "fill", "fill", "partial", "late", "slow", "nothing", "reject", "reject_later", "lost_answer",
         "never_received")
FINAL = frozenset({"filled", "canceled", "expired", "rejected"})


class Dead(BaseException):
    """The process calling the broker died here (a BaseException: no ``except Exception`` in the
    code under test may swallow a power cut)."""


class Fate:
    """When the process dies: at the ``at``-th event of one kind (``where``): a broker call, before
    or after it took effect, or a slice of SQLite work (a progress handler on its connections).
    Once dead, every later broker call raises ``Dead`` and every SQLite statement is interrupted,
    so nothing more happens until the machine starts the process again."""

    SQLITE_SLICE = 20  # virtual machine instructions between two SQLite events

    def __init__(self, at: Optional[int] = None, where: str = "broker"):
        self.at, self.where, self.events, self.dead = at, where, 0, False

    def tick(self, where: str) -> bool:
        """One more event of ``where``; True once the process is dead."""
        if where == self.where and self.at is not None and not self.dead:
            self.events += 1
            self.dead = self.events >= self.at
        return self.dead

    def sqlite_handler(self) -> int:
        return 1 if self.tick("sqlite") else 0

    def watch(self, conn) -> None:
        conn.set_progress_handler(self.sqlite_handler, self.SQLITE_SLICE)


@dataclass
class Order:
    client_order_id: str
    ticker: str
    side: str
    qty: int            # nano-shares
    price: Decimal      # the minute's price: market orders fill at it in this world
    mood: str
    broker_order_id: str
    filled: int = 0     # nano-shares
    status: str = "new"
    filled_at: Optional[str] = None
    cancels: int = 0

    @property
    def is_open(self) -> bool:
        return self.status not in FINAL

    def result(self) -> OrderResult:
        return OrderResult(self.client_order_id, self.broker_order_id, self.ticker, self.side, from_nano(self.qty),
                           from_nano(self.filled), float(self.price) if self.filled else None, self.status,
                           self.filled_at)


class ModelBroker:
    """The account: ``cash`` (Decimal), ``positions`` (ticker -> nano-shares), ``orders``."""

    def __init__(self, cash: Decimal, clock: Callable[[], datetime]):
        self.cash = cash
        self.clock = clock
        self.positions: Dict[str, int] = {}
        self.orders: Dict[str, Order] = {}
        self.prices: Dict[str, float] = {}
        self.moods: Dict[str, str] = {}           # how the next order of a ticker goes
        self.partial: Dict[str, float] = {}       # its share when it fills in part (0..1)
        self.on_submit: Callable[[str], None] = lambda ticker: None  # the wall's STOP landing meanwhile
        self.overdrawn: List[str] = []           # orders the account could not cover (the daemon must send none)
        self.fate = Fate()

    # -- the trader's Broker protocol

    def submit_market_order(self, ticker: str, side: str, shares, client_order_id: str) -> OrderResult:
        self._alive()
        mood = self.moods.get(ticker, "fill")
        qty, price = to_nano(shares), self.price_of(ticker)
        if mood == "reject":
            raise OrderRejected("model broker: this order is refused")
        if side == "sell" and qty > self.positions.get(ticker, 0):
            self.overdrawn.append(f"{client_order_id}: sell {shares} {ticker}, the account holds "
                                  f"{from_nano(self.positions.get(ticker, 0))}")
            raise OrderRejected(f"insufficient qty available for order (requested {shares})")
        if side == "buy" and Decimal(qty) * price / NANO > self.cash:
            self.overdrawn.append(f"{client_order_id}: buy {shares} {ticker} at {price}, the account has {self.cash}")
            raise OrderRejected("insufficient buying power")
        if mood == "never_received":
            raise BrokerError("submit: read timed out")
        order = Order(client_order_id, ticker, side, qty, price, mood, f"b-{len(self.orders) + 1}")
        self.orders[client_order_id] = order
        self.on_submit(ticker)
        if mood == "lost_answer":  # received, and filled while its answer was lost
            self._fill(order, order.qty)
            raise BrokerError("submit: connection reset")
        self._after()
        return order.result()

    def get_order_by_client_id(self, client_order_id: str) -> Optional[OrderResult]:
        self._alive()
        order = self.orders.get(client_order_id)
        self._after()
        return None if order is None else order.result()

    def wait_for_terminal(self, client_order_id: str, timeout: float = 30.0) -> OrderResult:
        self._alive()
        order = self.orders[client_order_id]
        if order.is_open and order.mood == "fill":
            self._fill(order, order.qty)
        elif order.is_open and order.mood == "partial" and not order.filled:
            self._fill(order, self._part(order), stay_open=True)
        elif order.is_open and order.mood == "reject_later":
            order.status = "rejected"
        self._after()
        return order.result()

    def cancel_order(self, client_order_id: str, timeout: float = 10.0) -> OrderResult:
        self._alive()
        order = self.orders[client_order_id]
        order.cancels += 1
        if order.is_open and order.mood == "slow" and order.cancels == 1:
            self._after()
            raise BrokerError("cancel: broker answered 503")
        if order.is_open and order.mood in ("late", "slow"):
            self._fill(order, order.qty - order.filled)  # it filled just before the cancel arrived
        if order.is_open:
            order.status = "canceled"
        self._after()
        return order.result()

    def get_positions(self) -> dict:
        self._alive()
        return {ticker: from_nano(nano) for ticker, nano in sorted(self.positions.items()) if nano}

    # -- what happens at the broker between the daemon's looks

    def progress(self, order: Order, what: str) -> None:
        """A working order fills some more, fills, or ends (cancelled at the owner's request, or
        expired at the close)."""
        if not order.is_open:
            return
        left = order.qty - order.filled
        if what == "fill_more":
            half = max(NANO, left // NANO // 2 * NANO) if order.qty % NANO == 0 else max(1, left // 2)
            self._fill(order, min(left, half), stay_open=True)
        elif what == "fill":
            self._fill(order, left)
        else:
            order.status = "expired" if what == "expire" else "canceled"

    def close_of_day(self) -> None:
        """Day orders still working expire at the close (what filled of them stays)."""
        for order in self.orders.values():
            if order.is_open:
                order.status = "expired"

    def split(self, ticker: str, new: int, old: int) -> int:
        """Alpaca's (and the paper exchange's) arithmetic: qty x new/old to nine decimals."""
        held = Decimal(self.positions.get(ticker, 0)) / NANO
        after = to_nano((held * new / old).quantize(Decimal("0.000000001")))
        self.positions[ticker] = after
        return after

    def dividend(self, ticker: str, rate: Decimal) -> Decimal:
        paid = (Decimal(self.positions.get(ticker, 0)) / NANO * rate).quantize(CENT, rounding=ROUND_HALF_UP)
        self.cash += paid
        return paid

    def manual_sale(self, ticker: str, qty: int) -> None:
        """The owner sells at the broker by hand (the cards know nothing of it)."""
        self.positions[ticker] -= qty
        self.cash += Decimal(qty) * self.price_of(ticker) / NANO

    # -- reading the world

    def price_of(self, ticker: str) -> Decimal:
        return Decimal(repr(self.prices[ticker]))

    def open_orders(self, ticker: Optional[str] = None) -> List[Order]:
        return [o for o in self.orders.values() if o.is_open and ticker in (None, o.ticker)]

    # -- inside

    def _fill(self, order: Order, qty: int, *, stay_open: bool = False) -> None:
        if order.side == "sell":
            qty = min(qty, self.positions.get(order.ticker, 0))  # sold by hand meanwhile: no short
        order.filled += qty
        sign = 1 if order.side == "buy" else -1
        self.positions[order.ticker] = self.positions.get(order.ticker, 0) + sign * qty
        self.cash -= sign * Decimal(qty) * order.price / NANO
        if qty:
            order.filled_at = stamp(self.clock())
        if order.filled == order.qty:
            order.status = "filled"
        elif stay_open:
            order.status = "partially_filled" if order.filled else order.status
        else:  # what could not fill is cancelled (a sell the position no longer covers)
            order.status = "canceled"

    def _part(self, order: Order) -> int:
        share = self.partial.get(order.ticker, 0.5)
        if order.qty % NANO == 0 and order.qty >= 2 * NANO:
            return min(order.qty - NANO, max(NANO, int(order.qty // NANO * share) * NANO))
        return min(order.qty - 1, max(1, int(order.qty * share)))

    def _alive(self) -> None:
        if self.fate.tick("broker"):
            raise Dead()

    def _after(self) -> None:
        """The call took effect; the process may still die before it hears the answer."""
        if self.fate.tick("broker"):
            raise Dead()
