"""Orders exactly once, one net order per ticker per minute.

For each ticker's plan (``allocation.net_ticker``) the journal first records, in one
transaction, the order, every card's allocation and the internal crosses; then the order is sent
with a deterministic ``client_order_id`` (ticker + minute + ledger id). Tickers are sent
concurrently; the fill comes from the trade updates stream (REST only where the stream cannot
vouch), an order still open after the fill timeout is cancelled, and the fill is split over the
cards on its side (largest remainder) and recorded with the closing of the order in one
transaction. Only the calling thread touches the database: workers talk to the broker and hand
their results back through a queue.

If the process dies anywhere in between, ``reconcile`` finds the order at the broker by its id:
a fill is recorded once, an order the broker never acknowledged and does not hold is marked
failed, an acknowledged one is looked for again (an operational error after a bound), and
nothing is re-sent.
"""
from __future__ import annotations

import logging
import queue
import sqlite3
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from orchestra.allocation import TickerPlan, allocate_fill, net_ticker
from orchestra.alpaca_wrapper import BrokerError, OrderNotFound, OrderRejected, OrderResult
from orchestra.exceptions import OperationalError
from orchestra.trade_updates import TradeUpdates
from shared.clock import SystemClock, stamp
from system_databse import system_db_manager as ledger

logger = logging.getLogger(__name__)

MISSED_LOOKUP_BOUND = 10  # look-ups of an acknowledged order the broker cannot find before a person must act
CANCEL_TIMEOUT = 10.0


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
    requested_shares: int
    status: str  # 'filled' | 'failed' | 'open' | 'duplicate'
    filled_shares: int = 0
    price: Optional[float] = None
    transaction_id: Optional[int] = None
    error: Optional[str] = None
    crossed: bool = False


class Trader:
    """Journals, sends and settles the minute's net orders; reconciles what a crash left open."""

    def __init__(self, broker: Any, ledger_conn: sqlite3.Connection, *, fill_timeout: float = 30.0,
                 on_error: Optional[Callable[[str], None]] = None, updates: Optional[TradeUpdates] = None,
                 workers: int = 8, clock: Any = None):
        self.broker = broker
        self.conn = ledger_conn
        self.clock = clock if clock is not None else SystemClock()  # the trading clock: the journal's stamps
        self.fill_timeout = fill_timeout
        self.updates = updates
        self.workers = workers
        self.orders_sent = 0
        self._on_error = on_error or (lambda message: None)
        self._ledger_id: Optional[str] = None

    @property
    def ledger_id(self) -> str:
        if self._ledger_id is None:
            self._ledger_id = ledger.get_ledger_id(conn=self.conn)
        return self._ledger_id

    # -- the minute

    def trade(self, plans: Iterable[TickerPlan], minute: datetime, prices: Mapping[str, Optional[float]]
              ) -> List[TradeOutcome]:
        """Journal every plan, send the net orders concurrently, record every fill."""
        outcomes: List[TradeOutcome] = []
        sending: List[tuple[TickerPlan, str]] = []
        for plan in plans:
            coid = client_order_id(plan.ticker, minute, self.ledger_id)
            plan = self._journal(plan, coid, minute, prices.get(plan.ticker), outcomes)
            if plan is not None and plan.net_shares:
                sending.append((plan, coid))
        outcomes += self._send_all(sending)
        return outcomes

    def _journal(self, plan: TickerPlan, coid: str, minute: datetime, price: Optional[float],
                 outcomes: List[TradeOutcome]) -> Optional[TickerPlan]:
        """Write the plan's intent; a card stopped meanwhile is left out (its buy is never sent)."""
        for attempt in (1, 2):
            try:
                decided_at = _stamp(minute + timedelta(minutes=1))  # the bar's close: crosses are stamped then
                journaled = ledger.journal_net_order(coid, plan.ticker, decided_at, plan.side, plan.net_shares,
                                                     price, _allocations(plan), at=self._now(), conn=self.conn)
            except ledger.LedgerError as exc:
                kept = self._still_allowed(plan)
                if attempt == 2 or len(kept) == len(plan.intents):
                    self._error(f"{plan.ticker}: the minute's orders were not journaled: {exc}")
                    outcomes += [_outcome(coid, plan.ticker, i.card_id, i.side, i.shares, "failed", error=str(exc))
                                 for i in plan.intents]
                    return None
                for dropped in set(plan.intents) - set(kept):
                    logger.warning("card %d %s: stopped before its %s of %d shares was sent; not sent",
                                   dropped.card_id, plan.ticker, dropped.side, dropped.shares)
                    outcomes.append(_outcome(coid, plan.ticker, dropped.card_id, dropped.side, dropped.shares,
                                             "failed", error="card stopped before the order was sent"))
                plan = net_ticker(plan.ticker, kept)
                continue
            if not journaled:
                logger.warning("%s: order %s was already journaled; not sending it again", plan.ticker, coid)
                outcomes += [_outcome(coid, plan.ticker, i.card_id, i.side, i.shares, "duplicate") for i in plan.intents]
                return None
            for card_id, shares in sorted(plan.crossed.items()):
                intent = plan.intent(card_id)
                logger.info("card %d %s: %s %d shares crossed inside the ledger at %s (%s)", card_id, plan.ticker,
                            "bought" if intent.side == "buy" else "sold", shares, money(price), intent.reason)
                outcomes.append(_outcome(coid, plan.ticker, card_id, intent.side, intent.shares, "filled", shares,
                                         price, crossed=True))
            return plan
        return None

    def _still_allowed(self, plan: TickerPlan) -> list:
        cards = {c["id"]: c["status"] for c in ledger.get_all_algorithms(conn=self.conn)}
        return [i for i in plan.intents if cards.get(i.card_id) == "running" or (i.liquidation and i.side == "sell")]

    # -- sending (workers: broker only) and recording (this thread: database only)

    def _send_all(self, sending: List[tuple[TickerPlan, str]]) -> List[TradeOutcome]:
        if not sending:
            return []
        events: "queue.Queue[tuple]" = queue.Queue()
        outcomes: List[TradeOutcome] = []
        plans = {coid: plan for plan, coid in sending}
        with ThreadPoolExecutor(max_workers=min(self.workers, len(sending)), thread_name_prefix="order") as pool:
            futures = [pool.submit(self._execute, plan, coid, events) for plan, coid in sending]
            while not (all(f.done() for f in futures) and events.empty()):
                try:
                    kind, coid, payload = events.get(timeout=0.05)
                except queue.Empty:
                    continue
                outcomes += self._on_event(kind, coid, payload, plans[coid])
            for future in futures:
                future.result()  # a bug in a worker is not swallowed
        return outcomes

    def _execute(self, plan: TickerPlan, coid: str, events: "queue.Queue[tuple]") -> None:
        logger.info("%s: sending %s %d shares for %d card(s) as %s", plan.ticker, plan.side, plan.net_shares,
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
        events.put(("submitted", coid, result))
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

    def _on_event(self, kind: str, coid: str, payload: Any, plan: TickerPlan) -> List[TradeOutcome]:
        if kind == "submitted":
            ledger.mark_order_submitted(coid, payload.broker_order_id, at=self._now(), conn=self.conn)
            return []
        if kind == "rejected":
            ledger.mark_order_failed(coid, f"rejected: {payload}", at=self._now(), conn=self.conn)
            self._error(f"{plan.ticker}: broker rejected {plan.side} {plan.net_shares} shares: {payload}")
            return self._plan_outcomes(plan, coid, "failed", error=payload)
        if kind == "unknown":
            self._error(f"{plan.ticker}: {plan.side} {plan.net_shares} shares: outcome unknown ({payload}); "
                        "will reconcile by client_order_id")
            return self._plan_outcomes(plan, coid, "open", error=payload)
        if self.updates is not None:
            self.updates.forget(coid)
        return self.settle(plan.ticker, payload)

    def _plan_outcomes(self, plan: TickerPlan, coid: str, status: str, error: Optional[str] = None):
        return [_outcome(coid, plan.ticker, card, plan.side, shares, status, error=error)
                for card, shares in sorted(plan.order_parts.items())]

    # -- recording a final state

    def settle(self, ticker: str, result: OrderResult) -> List[TradeOutcome]:
        """Record a final (or partly filled, cancelled) order on its cards; open orders wait."""
        coid = result.client_order_id
        parts = {int(a["algorithm_id"]): int(a["shares"]) for a in ledger.get_allocations(coid, conn=self.conn)
                 if a["kind"] == "order"}
        if not result.is_terminal:
            logger.info("%s: %s is still %s at the broker; will reconcile", ticker, coid, result.status)
            return [_outcome(coid, ticker, card, result.side, shares, "open") for card, shares in sorted(parts.items())]
        split = allocate_fill(min(result.filled_shares, sum(parts.values())), parts)
        txs = ledger.record_order_fill(coid, sum(split.values()), result.filled_avg_price, result.filled_at, split,
                                       at=self._now(), conn=self.conn)
        if not txs:
            self._error(f"{ticker}: {result.side} {result.requested_shares} shares ended {result.status} "
                        f"with nothing filled ({coid})")
            return [_outcome(coid, ticker, card, result.side, shares, "failed", error=result.status)
                    for card, shares in sorted(parts.items())]
        verb = "bought" if result.side == "buy" else "sold"
        outcomes = []
        for card, shares in sorted(parts.items()):
            got = split.get(card, 0)
            if got:
                logger.info("card %d %s: %s %d shares at %s (asked %d; order %s, %d of %d filled)", card, ticker, verb,
                            got, money(result.filled_avg_price), shares, coid, result.filled_shares,
                            result.requested_shares)
            outcomes.append(_outcome(coid, ticker, card, result.side, shares, "filled" if got else "failed", got,
                                     result.filled_avg_price, txs.get(card), None if got else "nothing allocated"))
        return outcomes

    # -- reconciling

    def reconcile(self) -> List[TradeOutcome]:
        """Settle every open journaled order with what the broker knows about its id."""
        outcomes = []
        for order in ledger.get_open_orders(conn=self.conn):
            coid, ticker = order["client_order_id"], order["ticker"]
            try:
                result = self.broker.get_order_by_client_id(coid)
            except BrokerError as exc:
                logger.warning("reconcile %s: broker unavailable (%s); trying again next cycle", coid, exc)
                continue
            if result is None:
                outcomes += self._missing(order)
                continue
            if order["status"] == "pending":
                ledger.mark_order_submitted(coid, result.broker_order_id, at=self._now(), conn=self.conn)
            if not result.is_terminal and _age_seconds(order["created_at"], self.clock.peek()) > self.fill_timeout:
                logger.warning("%s: %s still %s after the fill timeout; cancelling the rest", ticker, coid,
                               result.status)
                try:
                    result = self.broker.cancel_order(coid, timeout=CANCEL_TIMEOUT)
                except BrokerError as exc:
                    logger.warning("reconcile %s: cancel failed (%s); trying again next cycle", coid, exc)
            if result.is_terminal:
                logger.info("%s: reconciling %s (%s at the broker)", ticker, coid, result.status)
                outcomes += self.settle(ticker, result)
        return outcomes

    def _missing(self, order: Mapping[str, Any]) -> List[TradeOutcome]:
        coid, ticker = order["client_order_id"], order["ticker"]
        if order["status"] == "pending":
            ledger.mark_order_failed(coid, "the broker never received this order", at=self._now(), conn=self.conn)
            logger.warning("%s: order %s was never received by the broker; marked failed", ticker, coid)
            return [_outcome(coid, ticker, int(a["algorithm_id"]), a["side"], int(a["shares"]), "failed",
                             error="never received") for a in order["allocations"]]
        missed = ledger.note_missed_lookup(coid, at=self._now(), conn=self.conn)
        if missed >= MISSED_LOOKUP_BOUND:
            raise OperationalError(f"order {coid} was acknowledged by the broker but it has not found it "
                                   f"{missed} times; check the account before trading on")
        logger.warning("%s: acknowledged order %s not found at the broker (%d of %d look-ups); looking again",
                       ticker, coid, missed, MISSED_LOOKUP_BOUND)
        return []

    def open_order_tickers(self) -> set[str]:
        """Tickers with an order still open: no new order on them until it settles (never two at once)."""
        return {o["ticker"] for o in ledger.get_open_orders(conn=self.conn)}

    def open_order_cards(self) -> set[int]:
        """Cards with a share in an order still open."""
        return {int(a["algorithm_id"]) for o in ledger.get_open_orders(conn=self.conn) for a in o["allocations"]}

    def _now(self) -> str:
        """The trading clock's stamp, extrapolated (never a broker request in the middle of an order)."""
        return stamp(self.clock.peek())

    def _error(self, message: str) -> None:
        logger.error(message)
        self._on_error(message)


def _allocations(plan: TickerPlan) -> List[Dict[str, Any]]:
    rows = []
    for kind, shares_by_card in (("cross", plan.crossed), ("order", plan.order_parts)):
        for card, shares in sorted(shares_by_card.items()):
            intent = plan.intent(card)
            rows.append({"algorithm_id": card, "kind": kind, "side": intent.side, "shares": shares,
                         "reason": intent.reason, "liquidation": intent.liquidation})
    return rows


def _outcome(coid: str, ticker: str, card: int, side: Optional[str], shares: int, status: str, filled: int = 0,
             price: Optional[float] = None, tx: Optional[int] = None, error: Optional[str] = None,
             crossed: bool = False) -> TradeOutcome:
    return TradeOutcome(coid, card, ticker, side or "", shares, status, filled, price, tx, error, crossed)


def _stamp(minute: datetime) -> str:
    return minute.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age_seconds(created_at: str, now: datetime) -> float:
    created = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return (now - created).total_seconds()


# --------------------------------------------------------------------------- positions


SHARE_TOLERANCE = 1e-6  # fractional quantities are exact to 9 decimals at the broker and in the ledger


def card_positions_by_ticker(conn: sqlite3.Connection, cards: Optional[List[Mapping[str, Any]]] = None) -> Dict[str, float]:
    """Sum of every card's shares (running and stopped) per ticker, from the transaction history and
    corporate actions (split shares, a reverse split's fractional remainder)."""
    totals = ledger.get_all_position_totals(conn=conn)
    positions: Dict[str, float] = defaultdict(int)
    for card in cards if cards is not None else ledger.get_all_algorithms(conn=conn):
        held = totals.get(card["id"], {"shares": 0})
        shares = held["shares"] + held.get("fractional_shares", 0.0) if held.get("fractional_shares") else held["shares"]
        if shares:
            positions[card["ticker"]] += shares
    return {t: _whole(q) for t, q in positions.items()}


def _whole(qty: float) -> int | float:
    return int(round(qty)) if abs(qty - round(qty)) < SHARE_TOLERANCE else round(qty, 9)


def position_mismatches(broker_positions: Mapping[str, float], card_positions: Mapping[str, float]) -> List[Dict[str, Any]]:
    """Tickers where the broker holds a different number of shares than the cards add up to
    (fractional remainders compared to within a millionth of a share)."""
    tickers = sorted(set(broker_positions) | set(card_positions))
    return [
        {"ticker": t, "broker": _whole(broker_positions.get(t, 0)), "cards": _whole(card_positions.get(t, 0))}
        for t in tickers if abs(broker_positions.get(t, 0) - card_positions.get(t, 0)) > SHARE_TOLERANCE
    ]


def money(value: Optional[float]) -> str:
    return "n/a" if value is None else f"${value:,.2f}"
