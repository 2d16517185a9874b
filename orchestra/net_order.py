"""Where money moves: one ticker's net order for one minute, from its plan to its last fill.

Read top to bottom, this module is the whole money path after the cards have decided:

1. ``journal``: before anything is sent, one transaction writes the order (``pending``), every
   card's part of it, and the shares that cancel out between cards (the crosses, filled at once
   at the minute's price). An order whose decisions all cancel out is ``crossed``: nothing goes to
   the broker. A card that is no longer running is left out (``CardsLeftOut``), except a stopped
   card's liquidation, and so is a buy the card's free cash no longer covers (the owner withdrew
   some since it decided); a sell never exceeds what the card holds (``system_databse.positions``).
2. The trader sends the order with the deterministic ``client_order_id`` that ties the journal,
   the request and the broker's answer, waits, and hands every answer back here as an event.
3. ``apply``: the one function that changes an order after it is journaled. Each broker event —
   an update (accepted, partially filled, filled, cancelled, expired, rejected), a refusal at
   submission, a look-up that found nothing — moves the order along ``orders.TRANSITIONS`` (the
   explicit table of allowed moves, checked on every write) in one transaction with everything
   it implies: when the order ends, its fill is split over the cards on its side (largest
   remainder) and each card's transaction is written. An event for an order that has already
   ended changes nothing, so an event seen twice (stream and REST, a restart) is applied once.

Live trading, the trade updates stream, start-up reconciliation and ``scripts.reconcile`` all
reach the ledger through ``apply``; nothing else writes an order's transactions. Everything here
runs on the caller's thread and is given the trading clock's ``now``: it can be driven in-process,
event by event, with no broker and no threads.
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from algorithms import CASH_TOLERANCE
from orchestra.allocation import TickerPlan, allocate_fill
from orchestra.exceptions import OperationalError
from shared.shares import Quantity, from_nano, to_nano
from system_databse import orders
from system_databse.connection import LedgerError, atomic, check_price
from system_databse.orders import (CANCELLED, CROSSED, FAILED, FILLED, OPEN_STATES, PARTIALLY_FILLED, PENDING,
                                   SUBMITTED, TRANSITIONS)
from system_databse.cards import get_algorithm
from system_databse.positions import positions
from system_databse.transactions import insert_transaction

logger = logging.getLogger(__name__)

__all__ = ["BrokerUpdate", "Rejected", "Missing", "Event", "NetOrder", "Applied", "CardFill", "CardsLeftOut",
           "journal", "apply", "load", "TRANSITIONS", "OPEN_STATES", "MISSED_LOOKUP_BOUND"]

MISSED_LOOKUP_BOUND = 10  # look-ups of an acknowledged order the broker cannot find before a person must act
BROKER_OPEN = frozenset({"new", "accepted", "pending_new", "accepted_for_bidding", "partially_filled", "held",
                         "pending_cancel", "pending_replace", "calculated", "stopped", "suspended"})


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class BrokerUpdate:
    """What the broker says about the order (its answer to the submission, a trade update, a REST
    look-up, a cancel's outcome): its status and cumulative fill."""

    status: str                        # the broker's word: new, partially_filled, filled, canceled, rejected, ...
    filled: Quantity = 0
    avg_price: Optional[float] = None
    filled_at: Optional[str] = None    # the broker's stamp of the (last) fill
    broker_order_id: Optional[str] = None

    @property
    def is_final(self) -> bool:
        return self.status not in BROKER_OPEN

    @classmethod
    def of(cls, result: Any) -> "BrokerUpdate":
        """From an ``alpaca_wrapper.OrderResult``."""
        return cls(result.status, result.filled_shares, result.filled_avg_price, result.filled_at,
                   result.broker_order_id)


@dataclass(frozen=True)
class Rejected:
    """The broker refused the submission: nothing was booked there."""

    reason: str


@dataclass(frozen=True)
class Missing:
    """A look-up by ``client_order_id`` found no such order at the broker."""


Event = Union[BrokerUpdate, Rejected, Missing]


# --------------------------------------------------------------------------- the order


@dataclass(frozen=True)
class NetOrder:
    """One journaled order as the ledger holds it now (a snapshot: ``load`` reads it again)."""

    client_order_id: str
    ticker: str
    minute: str
    side: Optional[str]
    shares: Quantity
    price: Optional[float]                       # the minute's price: crosses, and what it reserves
    state: str
    filled: Quantity = 0
    avg_price: Optional[float] = None
    parts: Dict[int, Quantity] = field(default_factory=dict)    # card -> its shares in the broker order
    crosses: Dict[int, Quantity] = field(default_factory=dict)  # card -> shares crossed inside the ledger
    transactions: Dict[int, int] = field(default_factory=dict)  # card -> the transaction of its fill
    fills: Dict[int, Quantity] = field(default_factory=dict)    # card -> shares its fill recorded
    missed_lookups: int = 0
    error: Optional[str] = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(frozen=True)
class CardFill:
    """What one card got from the order when it ended (0 shares: nothing allocated to it)."""

    card_id: int
    asked: Quantity
    filled: Quantity
    transaction_id: Optional[int]


@dataclass(frozen=True)
class Applied:
    """The outcome of one event: the order after it, whether it moved, and what each card got."""

    order: NetOrder
    before: str
    changed: bool
    cards: Tuple[CardFill, ...] = ()

    @property
    def ended(self) -> bool:
        return not self.order.is_open


class CardsLeftOut(LedgerError):
    """Cards whose intent no longer holds when it is journaled (stopped since they decided, or a buy
    their free cash no longer covers): the caller drops them and nets the rest again."""

    def __init__(self, reasons: Mapping[int, str]):
        self.reasons = dict(sorted(reasons.items()))
        self.card_ids = list(self.reasons)
        super().__init__("; ".join(f"card {card}: {why}" for card, why in self.reasons.items())
                         + "; their orders are not sent")


def _left_out(conn: sqlite3.Connection, plan: TickerPlan, price: Optional[float]) -> Dict[int, str]:
    """Why each card of the plan can no longer have its intent, read in the journal's transaction."""
    reasons = {i.card_id: "stopped before its order was sent" for i in plan.intents
               if orders.card_status(conn, i.card_id) != "running" and not (i.liquidation and i.side == "sell")}
    buyers = [i for i in plan.intents if i.side == "buy" and i.card_id not in reasons]
    if price is not None and buyers:
        free = positions(conn=conn, cards=[get_algorithm(i.card_id, conn=conn) for i in buyers])
        for intent in buyers:
            cost, cash = float(intent.shares) * price, free[intent.card_id].withdrawable()
            if cost > cash + CASH_TOLERANCE:  # as the decision checker compares them
                reasons[intent.card_id] = (f"its free cash {cash:,.2f} no longer covers the buy of {intent.shares} "
                                           f"shares at {price:,.2f} (withdrawn since it decided)")
    return reasons


# --------------------------------------------------------------------------- 1. journal


def journal(conn: sqlite3.Connection, plan: TickerPlan, client_order_id: str, *, minute: str,
            price: Optional[float], now: str) -> Optional[NetOrder]:
    """Write the plan's order, parts and crosses in one transaction; None if ``client_order_id`` is
    already journaled (the minute was decided before: nothing is sent twice).

    ``minute`` is the close of the bar decided on (crosses are stamped then, or after the newest
    fill of a crossing card); ``price`` the minute's last price (crosses fill at it)."""
    with atomic(conn):
        if not orders.insert_order(conn, client_order_id, plan.ticker, minute, plan.side, plan.net_shares, price, now):
            return None
        left_out = _left_out(conn, plan, price)
        if left_out:
            raise CardsLeftOut(left_out)
        newest = orders.newest_fill_at(conn, plan.crossed)
        crossed_at = newest if newest is not None and newest > minute else minute
        for card_id, shares in sorted(plan.crossed.items()):
            intent = plan.intent(card_id)
            _check_can_sell(conn, client_order_id, intent.side, card_id, to_nano(intent.shares))
            tx_id = insert_transaction(conn, card_id, intent.side, shares,
                                       check_price(price, "cross price"), crossed_at)
            orders.insert_allocation(conn, client_order_id, card_id, "cross", intent.side, shares, intent.reason, tx_id)
        for card_id, shares in sorted(plan.order_parts.items()):
            intent = plan.intent(card_id)
            _check_can_sell(conn, client_order_id, intent.side, card_id, to_nano(shares))
            orders.insert_allocation(conn, client_order_id, card_id, "order", intent.side, shares, intent.reason)
        state = PENDING if plan.net_shares else CROSSED
        orders.add_order_event(conn, client_order_id, "journaled", None, state, now)
        return load(conn, client_order_id)


def _check_can_sell(c: sqlite3.Connection, client_order_id: str, side: str, card_id: int, nano: int) -> None:
    """A card's sells this minute (crossed now, or sent) never exceed what it holds now."""
    if side == "sell" and nano > orders.held_nano(c, card_id):
        raise LedgerError(f"order {client_order_id}: card {card_id} holds {from_nano(orders.held_nano(c, card_id))} "
                          f"shares and cannot sell {from_nano(nano)}")


# --------------------------------------------------------------------------- 3. apply


def apply(conn: sqlite3.Connection, client_order_id: str, event: Event, *, now: str) -> Applied:
    """Apply one broker event to the order in one transaction (see the module's story).

    Raises OrderStateError for a move the table forbids, LedgerError when the fill cannot be
    recorded (nothing is written then), and OperationalError once an acknowledged order has been
    missing at the broker ``MISSED_LOOKUP_BOUND`` times (the count is kept)."""
    with atomic(conn):
        order = _row(conn, client_order_id)
        before = order["status"]
        if before not in OPEN_STATES:  # ended: an event seen again changes nothing
            applied = _applied(conn, client_order_id, before, False)
        elif isinstance(event, Missing):
            applied = _missing(conn, order, now)
        elif isinstance(event, Rejected):
            _move(conn, order, "rejected", FAILED, now, error=f"rejected: {event.reason}")
            applied = _applied(conn, client_order_id, before, True)
        else:
            applied = _update(conn, order, event, now)
    if isinstance(event, Missing) and applied.order.is_open and applied.order.missed_lookups >= MISSED_LOOKUP_BOUND:
        raise OperationalError(f"order {client_order_id} was acknowledged by the broker but it has not found it "
                               f"{applied.order.missed_lookups} times; check the account before trading on")
    return applied


def _update(conn: sqlite3.Connection, order: Dict[str, Any], update: BrokerUpdate, now: str) -> Applied:
    coid, before = order["client_order_id"], order["status"]
    ordered, filled = to_nano(order["shares"]), min(to_nano(update.filled or 0), to_nano(order["shares"]))
    if not update.is_final:
        target = PARTIALLY_FILLED if filled else SUBMITTED
        if filled < to_nano(order["filled_shares"]) or (target == before and filled == to_nano(order["filled_shares"])
                                                          and order["broker_order_id"]):
            return _applied(conn, coid, before, False)  # nothing new (or an older state than the one held)
        _move(conn, order, "broker_update", target, now, broker_order_id=update.broker_order_id,
              filled=from_nano(filled), avg_price=update.avg_price if filled else None, detail=update.status)
        return _applied(conn, coid, before, True)
    if filled == 0:
        target, error = (FAILED, f"rejected by the broker ({update.status})") if update.status == "rejected" else \
            (CANCELLED, f"broker {update.status} it with nothing filled")
        _move(conn, order, "broker_update", target, now, broker_order_id=update.broker_order_id, error=error,
              detail=update.status)
        return _applied(conn, coid, before, True)
    price = check_price(update.avg_price, "fill price")
    parts = {int(a["algorithm_id"]): a["shares"] for a in _allocations(conn, coid) if a["kind"] == "order"}
    for card_id, shares in sorted(allocate_fill(from_nano(filled), parts).items()):
        if shares:
            orders.record_card_fill(conn, coid, card_id, order["side"], shares, price, update.filled_at or now)
    _move(conn, order, "broker_update", FILLED if filled == ordered else CANCELLED, now,
          broker_order_id=update.broker_order_id, filled=from_nano(filled), avg_price=price, detail=update.status)
    return _applied(conn, coid, before, True)


def _missing(conn: sqlite3.Connection, order: Dict[str, Any], now: str) -> Applied:
    coid, before = order["client_order_id"], order["status"]
    if before == PENDING:  # never acknowledged and the broker holds nothing: it was never received
        _move(conn, order, "missing", FAILED, now, error="the broker never received this order")
        return _applied(conn, coid, before, True)
    missed = int(order["missed_lookups"]) + 1
    _move(conn, order, "missing", before, now, missed_lookups=missed, detail=f"{missed} of {MISSED_LOOKUP_BOUND}")
    return _applied(conn, coid, before, False)


def _move(conn: sqlite3.Connection, order: Dict[str, Any], event: str, target: str, now: str, *,
          broker_order_id: Optional[str] = None, filled: Quantity = 0, avg_price: Optional[float] = None,
          error: Optional[str] = None, missed_lookups: Optional[int] = None, detail: str = "") -> None:
    filled = (filled or order["filled_shares"]) if target != FAILED else 0
    orders.move_order(conn, order, target, now, broker_order_id=broker_order_id, filled=filled, avg_price=avg_price,
                      error=error, missed_lookups=missed_lookups)
    orders.add_order_event(conn, order["client_order_id"], event, order["status"], target, now, filled=filled,
                           avg_price=avg_price, detail=detail or (error or ""))


# --------------------------------------------------------------------------- reading it back


def load(conn: sqlite3.Connection, client_order_id: str) -> NetOrder:
    order = orders.get_order(client_order_id, conn=conn)
    if order is None:
        raise LedgerError(f"no journaled order {client_order_id!r}")
    return _snapshot(order)


def _snapshot(order: Mapping[str, Any]) -> NetOrder:
    allocations = order.get("allocations", [])
    parts = {int(a["algorithm_id"]): a["shares"] for a in allocations if a["kind"] == "order"}
    crosses = {int(a["algorithm_id"]): a["shares"] for a in allocations if a["kind"] == "cross"}
    made = {int(a["algorithm_id"]): a for a in allocations if a["kind"] == "order" and a["transaction_id"]}
    return NetOrder(order["client_order_id"], order["ticker"], order["minute"], order["side"], order["shares"],
                    order["cross_price"], order["status"], order["filled_shares"], order["filled_avg_price"],
                    parts, crosses, {card: int(a["transaction_id"]) for card, a in made.items()},
                    {card: a["filled_shares"] for card, a in made.items()}, int(order["missed_lookups"]),
                    order["error"])


def _row(conn: sqlite3.Connection, client_order_id: str) -> Dict[str, Any]:
    row = conn.execute("SELECT * FROM broker_orders WHERE client_order_id = ?", (client_order_id,)).fetchone()
    if row is None:
        raise LedgerError(f"no journaled order {client_order_id!r}")
    return dict(row)


def _allocations(conn: sqlite3.Connection, client_order_id: str) -> List[Dict[str, Any]]:
    return orders.get_allocations(client_order_id, conn=conn)


def _applied(conn: sqlite3.Connection, client_order_id: str, before: str, changed: bool) -> Applied:
    order = load(conn, client_order_id)
    return Applied(order, before, changed, _card_fills(order) if not order.is_open else ())


def _card_fills(order: NetOrder) -> Tuple[CardFill, ...]:
    return tuple(CardFill(card, asked, order.fills.get(card, 0), order.transactions.get(card))
                 for card, asked in sorted(order.parts.items()))
