"""Send, wait, hand the event over: the broker side of one net order per ticker per minute.

For each ticker's plan (``allocation.net_ticker``) the order is journaled first
(``net_order.journal``), then sent with a deterministic ``client_order_id`` (ticker + minute +
ledger id). Tickers are sent concurrently; the fill comes from the trade updates stream (REST
only where the stream cannot vouch), and an order still open after the fill timeout is
cancelled. Every answer is handed to ``net_order.apply``, which alone changes the order and
writes its transactions. Only the calling thread touches the database: workers talk to the
broker and hand their answers back through a queue.

If the process dies anywhere in between, ``reconcile`` looks every open order up at the broker by
its id and applies what it finds; nothing is re-sent. Ages (the fill timeout) are measured on the
trading clock that stamped the orders.
"""
from __future__ import annotations

import logging
import queue
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, List, Mapping, Optional, Protocol

from orchestra import net_order
from orchestra.allocation import TickerPlan, net_ticker
from orchestra.alpaca_wrapper import BrokerError, OrderRejected, OrderResult
from shared.clock import stamp
from orchestra.exceptions import OperationalError
from orchestra.net_order import Applied, BrokerUpdate, Missing, Rejected
from orchestra.trade_updates import TradeUpdates
from shared.shares import Quantity
from system_databse import system_db_manager as ledger

logger = logging.getLogger(__name__)

MISSED_LOOKUP_BOUND = net_order.MISSED_LOOKUP_BOUND
CANCEL_TIMEOUT = 10.0
Tradable = Callable[[TickerPlan], bool]


class Broker(Protocol):
    """What the money path asks of the broker (``alpaca_wrapper.AlpacaWrapper``; a model or a test
    may give its own): send once, look up by our id, wait, cancel, and the positions for the guard."""

    def submit_market_order(self, ticker: str, side: str, shares: Quantity, client_order_id: str) -> OrderResult: ...
    def get_order_by_client_id(self, client_order_id: str) -> Optional[OrderResult]: ...
    def wait_for_terminal(self, client_order_id: str, timeout: float = 30.0) -> OrderResult: ...
    def cancel_order(self, client_order_id: str, timeout: float = 10.0) -> OrderResult: ...
    def get_positions(self) -> dict: ...


def client_order_id(ticker: str, minute: datetime, ledger_id: str) -> str:
    """``at-<TICKER>-<YYYYMMDDHHMM>-<ledger>``: one order per ticker per minute per ledger."""
    return f"at-{ticker}-{minute:%Y%m%d%H%M}-{ledger_id}"


@dataclass(frozen=True)
class TradeOutcome:
    """What one card got this minute: filled (by the broker or crossed), failed, still open, or a duplicate."""

    client_order_id: str
    card_id: int
    ticker: str
    side: str
    requested_shares: Quantity
    status: str  # 'filled' | 'failed' | 'open' | 'duplicate'
    filled_shares: Quantity = 0
    price: Optional[float] = None
    transaction_id: Optional[int] = None
    error: Optional[str] = None
    crossed: bool = False


class Trader:
    """Journals, sends and settles the minute's net orders; reconciles what a crash left open."""

    def __init__(self, broker: Broker, ledger_conn: sqlite3.Connection, *, now: Callable[[], datetime],
                 fill_timeout: float = 30.0, on_error: Optional[Callable[[str], None]] = None,
                 updates: Optional[TradeUpdates] = None, workers: int = 8):
        self.broker = broker
        self.conn = ledger_conn
        self.now = now  # the trading clock: every stamp and age of an order
        self.fill_timeout = fill_timeout
        self.updates = updates
        self.workers = workers  # tickers sent at once; 1: in the calling thread, no threads at all
        self.orders_sent = 0
        self._on_error = on_error or (lambda message: None)
        self._ledger_id: Optional[str] = None

    @property
    def ledger_id(self) -> str:
        if self._ledger_id is None:
            self._ledger_id = ledger.get_ledger_id(conn=self.conn)
        return self._ledger_id

    # -- the minute

    def trade(self, plans: Iterable[TickerPlan], minute: datetime, prices: Mapping[str, Optional[float]],
              tradable: Tradable = lambda plan: True) -> List[TradeOutcome]:
        """Journal every plan, send the net orders concurrently, record every fill. ``tradable`` is
        the caller's check of a plan (the broker guard): asked again of a plan re-netted here."""
        outcomes: List[TradeOutcome] = []
        sending: List[tuple[TickerPlan, str]] = []
        for plan in plans:
            coid = client_order_id(plan.ticker, minute, self.ledger_id)
            plan = self._journal(plan, coid, minute, prices.get(plan.ticker), outcomes, tradable)
            if plan is not None and plan.net_shares:
                sending.append((plan, coid))
        outcomes += self._send_all(sending)
        return outcomes

    def _journal(self, plan: TickerPlan, coid: str, minute: datetime, price: Optional[float],
                 outcomes: List[TradeOutcome], tradable: Tradable) -> Optional[TickerPlan]:
        """Write the plan's order; a card stopped meanwhile, or whose cash was withdrawn meanwhile, is
        left out (its order is never sent) and what is left is netted and checked again."""
        for attempt in (1, 2):
            try:
                order = net_order.journal(self.conn, plan, coid, minute=stamp(minute + timedelta(minutes=1)),
                                          price=price, now=stamp(self.now()))
            except net_order.CardsLeftOut as exc:
                if attempt == 2:
                    return self._not_journaled(plan, coid, exc, outcomes)
                for dropped in (i for i in plan.intents if i.card_id in exc.card_ids):
                    why = exc.reasons[dropped.card_id]
                    logger.warning("card %d %s: its %s of %s shares is not sent: %s",
                                   dropped.card_id, plan.ticker, dropped.side, dropped.shares, why)
                    outcomes.append(_outcome(coid, plan.ticker, dropped.card_id, dropped.side, dropped.shares,
                                             "failed", error=why))
                plan = net_ticker(plan.ticker, [i for i in plan.intents if i.card_id not in exc.card_ids])
                if not tradable(plan):
                    return None
                continue
            except ledger.LedgerError as exc:
                return self._not_journaled(plan, coid, exc, outcomes)
            if order is None:
                logger.warning("%s: order %s was already journaled; not sending it again", plan.ticker, coid)
                outcomes += [_outcome(coid, plan.ticker, i.card_id, i.side, i.shares, "duplicate") for i in plan.intents]
                return None
            for card_id, shares in sorted(plan.crossed.items()):
                intent = plan.intent(card_id)
                logger.info("card %d %s: %s %s shares crossed inside the ledger at %s (%s)", card_id, plan.ticker,
                            "bought" if intent.side == "buy" else "sold", shares, money(price), intent.reason)
                outcomes.append(_outcome(coid, plan.ticker, card_id, intent.side, intent.shares, "filled", shares,
                                         price, crossed=True))
            for card_id, fraction in sorted(plan.held_back.items()):
                logger.info("card %d %s: the fraction %s of its sell waits for a minute whose net order is a sell",
                            card_id, plan.ticker, fraction)
            return plan
        return None

    def _not_journaled(self, plan: TickerPlan, coid: str, exc: Exception, outcomes: List[TradeOutcome]) -> None:
        self._error(f"{plan.ticker}: the minute's orders were not journaled: {exc}")
        outcomes += [_outcome(coid, plan.ticker, i.card_id, i.side, i.shares, "failed", error=str(exc))
                     for i in plan.intents]
        return None

    # -- sending (workers: broker only) and recording (this thread: database only)

    def _send_all(self, sending: List[tuple[TickerPlan, str]]) -> List[TradeOutcome]:
        if not sending:
            return []
        events: "queue.Queue[tuple]" = queue.Queue()
        outcomes: List[TradeOutcome] = []
        plans = {coid: plan for plan, coid in sending}
        if self.workers <= 1:  # one ticker after another on this thread (a model, a dry harness): no threads
            for plan, coid in sending:
                self._execute(plan, coid, events)
                while not events.empty():
                    kind, coid_, payload = events.get()
                    outcomes += self._hand_over(kind, coid_, payload, plans[coid_])
            return outcomes
        with ThreadPoolExecutor(max_workers=min(self.workers, len(sending)), thread_name_prefix="order") as pool:
            futures = [pool.submit(self._execute, plan, coid, events) for plan, coid in sending]
            while not (all(f.done() for f in futures) and events.empty()):
                try:
                    kind, coid, payload = events.get(timeout=0.05)
                except queue.Empty:
                    continue
                outcomes += self._hand_over(kind, coid, payload, plans[coid])
            for future in futures:
                future.result()  # a bug in a worker is not swallowed
        return outcomes

    def _execute(self, plan: TickerPlan, coid: str, events: "queue.Queue[tuple]") -> None:
        logger.info("%s: sending %s %s shares for %d card(s) as %s", plan.ticker, plan.side, plan.net_shares,
                    len(plan.order_parts), coid)
        try:
            result = self.broker.submit_market_order(plan.ticker, plan.side, plan.net_shares, coid)
        except OrderRejected as exc:
            events.put(("rejected", coid, str(exc)))
            return
        except BrokerError as exc:
            events.put(("unknown", coid, str(exc)))
            return
        self.orders_sent += 1
        events.put(("update", coid, result))
        events.put(("final", coid, self._final_state(result)))

    def _final_state(self, result: OrderResult) -> OrderResult:
        """Wait for the fill (stream first); after the fill timeout cancel what is still open."""
        coid = result.client_order_id
        if self.updates is not None:
            self.updates.record(result)
            waited = self.updates.wait(coid, self.fill_timeout, lambda: self.broker.get_order_by_client_id(coid))
        else:
            try:
                waited = self.broker.wait_for_terminal(coid, timeout=self.fill_timeout)
            except BrokerError as exc:
                logger.warning("order %s: waiting for the fill failed (%s)", coid, exc)
                waited = None
        if waited is not None and waited.is_terminal:
            return waited
        logger.warning("order %s still open after %.0fs: cancelling the rest", coid, self.fill_timeout)
        try:
            return self.broker.cancel_order(coid, timeout=CANCEL_TIMEOUT)
        except BrokerError as exc:
            logger.warning("order %s: cancel failed (%s); will reconcile", coid, exc)
            return waited or result

    def _hand_over(self, kind: str, coid: str, payload: Any, plan: TickerPlan) -> List[TradeOutcome]:
        """A worker's news of one order, applied to it (``net_order.apply``)."""
        if kind == "unknown":
            self._error(f"{plan.ticker}: {plan.side} {plan.net_shares} shares: outcome unknown ({payload}); "
                        "will reconcile by client_order_id")
            return self._part_outcomes(plan, coid, "open", error=payload)
        if kind == "rejected":
            self._error(f"{plan.ticker}: broker rejected {plan.side} {plan.net_shares} shares: {payload}")
            self._apply(coid, Rejected(payload))
            return self._part_outcomes(plan, coid, "failed", error=payload)
        if kind == "final" and self.updates is not None:
            self.updates.forget(coid)
        applied = self._apply(coid, BrokerUpdate.of(payload))
        return self.outcomes(applied, payload.status) if kind == "final" else []

    def _apply(self, coid: str, event: net_order.Event) -> Applied:
        return net_order.apply(self.conn, coid, event, now=stamp(self.now()))

    def _part_outcomes(self, plan: TickerPlan, coid: str, status: str, error: Optional[str] = None):
        return [_outcome(coid, plan.ticker, card, plan.side, shares, status, error=error)
                for card, shares in sorted(plan.order_parts.items())]

    def outcomes(self, applied: Applied, broker_status: str = "") -> List[TradeOutcome]:
        """What each card of the order got, once the order ended (or that it is still open)."""
        order = applied.order
        if order.is_open:
            logger.info("%s: %s is still %s at the broker; will reconcile", order.ticker, order.client_order_id,
                        broker_status or order.state)
            return [_outcome(order.client_order_id, order.ticker, card, order.side, shares, "open")
                    for card, shares in sorted(order.parts.items())]
        if not order.filled:
            self._error(f"{order.ticker}: {order.side} {order.shares} shares ended {order.state} with nothing "
                        f"filled ({order.client_order_id})")
            return [_outcome(order.client_order_id, order.ticker, card.card_id, order.side, card.asked, "failed",
                             error=broker_status or order.error or order.state) for card in applied.cards]
        verb = "bought" if order.side == "buy" else "sold"
        outcomes = []
        for card in applied.cards:
            if card.filled:
                logger.info("card %d %s: %s %s shares at %s (asked %s; order %s, %s of %s filled)", card.card_id,
                            order.ticker, verb, card.filled, money(order.avg_price), card.asked,
                            order.client_order_id, order.filled, order.shares)
            outcomes.append(_outcome(order.client_order_id, order.ticker, card.card_id, order.side, card.asked,
                                     "filled" if card.filled else "failed", card.filled, order.avg_price,
                                     card.transaction_id, None if card.filled else "nothing allocated"))
        return outcomes

    # -- reconciling

    def reconcile(self, tickers: Optional[set[str]] = None) -> List[TradeOutcome]:
        """Settle every open journaled order (of ``tickers``, or all) with what the broker knows
        about its id. One order's failure is logged and never keeps the others from settling; an
        order that needs a person (``OperationalError``) is raised after all the others were tried."""
        outcomes: List[TradeOutcome] = []
        needs_a_person: Optional[OperationalError] = None
        for order in ledger.get_open_orders(conn=self.conn):
            if tickers is not None and order["ticker"] not in tickers:
                continue
            try:
                outcomes += self._reconcile_one(order)
            except OperationalError as exc:
                needs_a_person = needs_a_person or exc
                self._error(str(exc))
            except (BrokerError, ledger.LedgerError, sqlite3.Error, ValueError) as exc:
                self._error(f"reconciling {order['client_order_id']} failed: {exc}; trying again next cycle")
        if needs_a_person is not None:
            raise needs_a_person
        return outcomes

    def _reconcile_one(self, order: Mapping[str, Any]) -> List[TradeOutcome]:
        coid, ticker = order["client_order_id"], order["ticker"]
        result = self.broker.get_order_by_client_id(coid)
        if result is None:
            applied = self._apply(coid, Missing())
            if applied.ended:
                logger.warning("%s: order %s was never received by the broker; marked failed", ticker, coid)
                return [_outcome(coid, ticker, card, order["side"], shares, "failed", error="never received")
                        for card, shares in sorted(applied.order.parts.items())]
            logger.warning("%s: acknowledged order %s not found at the broker (%d of %d look-ups); looking again",
                           ticker, coid, applied.order.missed_lookups, MISSED_LOOKUP_BOUND)
            return []
        applied = self._apply(coid, BrokerUpdate.of(result))
        if not applied.ended and self._age_seconds(order["created_at"]) > self.fill_timeout:
            logger.warning("%s: %s still %s after the fill timeout; cancelling the rest", ticker, coid, result.status)
            result = self.broker.cancel_order(coid, timeout=CANCEL_TIMEOUT)
            applied = self._apply(coid, BrokerUpdate.of(result))
        if applied.ended:
            logger.info("%s: reconciling %s (%s at the broker)", ticker, coid, result.status)
            return self.outcomes(applied, result.status)
        return []

    def _age_seconds(self, created_at: str) -> float:
        """Seconds on the trading clock since the order was journaled (stamped by the same clock)."""
        created = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        return (self.now() - created).total_seconds()

    def open_order_tickers(self) -> set[str]:
        """Tickers with an order still open: no new order on them until it settles (never two at once)."""
        return ledger.open_order_tickers(conn=self.conn)

    def open_order_cards(self) -> set[int]:
        """Cards with a share in an order still open."""
        return {int(a["algorithm_id"]) for o in ledger.get_open_orders(conn=self.conn) for a in o["allocations"]}

    def _error(self, message: str) -> None:
        logger.error(message)
        self._on_error(message)


def _outcome(coid: str, ticker: str, card: int, side: Optional[str], shares: Quantity, status: str,
             filled: Quantity = 0, price: Optional[float] = None, tx: Optional[int] = None,
             error: Optional[str] = None, crossed: bool = False) -> TradeOutcome:
    return TradeOutcome(coid, card, ticker, side or "", shares, status, filled, price, tx, error, crossed)


def money(value: Optional[float]) -> str:
    return "n/a" if value is None else f"${value:,.2f}"
