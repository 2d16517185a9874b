"""One market minute of the daemon, and its read-only twin for ``--once --dry-run``.

A cycle, in order: settle unfinished orders with the broker; read the running cards; sync the
stream's reference counts; backfill gaps of tickers that need it (new subscriptions, after a
stream reconnect); every card decides (pure: nothing is sent yet); the gate (``orchestra.controls``:
the PAUSE, the daily order limit, each card's limits) says which decisions may be sent; per ticker
those and any stopped card's liquidation become one net order, the rest crossing between cards
(``orchestra.allocation``), and the trader sends the tickers' orders concurrently; finally the
broker's positions are compared with the sum of the cards'. Every failure is confined to the
card, ticker or step it happened in; the cycle itself always finishes.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from database import db_manager
from orchestra.alpaca_wrapper import BrokerError
from orchestra import decision_log
from orchestra.alerts import Alerts
from orchestra.card_runner import CardDecision, CardRunner
from shared.clock import computer_now, stamp
from orchestra import stream_gaps
from orchestra.clock_check import ClockCheck
from orchestra.controls import Controls, Gate, pause_text
from orchestra.exceptions import AlgorithmError
from orchestra.heartbeat import ErrorLog
from orchestra.allocation import Intent, TickerPlan, net_ticker
from orchestra.trader import Trader, TradeOutcome, money
from orchestra.websocket_manager import WebSocketManager
from shared.shares import to_nano
from system_databse import positions, system_db_manager as ledger

logger = logging.getLogger(__name__)

LIQUIDATION_REASON = "card stopped: closing its position of {shares} shares"


@dataclass
class CycleReport:
    """What one cycle did, for logs, tests and the heartbeat."""

    minute: str
    trading: bool
    decisions: List[CardDecision] = field(default_factory=list)
    card_errors: Dict[int, str] = field(default_factory=dict)
    trades: List[TradeOutcome] = field(default_factory=list)
    reconciled: List[TradeOutcome] = field(default_factory=list)
    position_mismatches: Optional[List[Dict[str, Any]]] = None  # None: the broker could not be asked
    seconds: float = 0.0  # real time the cycle took (bar wait excluded)
    decide_seconds: float = 0.0  # real time every card's decision took (no broker round trips)
    orders_sent: int = 0
    no_orders_because: str = "the market is closed"
    held_back: Dict[int, str] = field(default_factory=dict)  # card -> why its trade decision was not sent
    paused: Optional[str] = None  # why nothing was sent (the PAUSE), None while trading


class Cycle:
    """Runs minutes against one ledger, one market database, one broker and (in the daemon) one stream."""

    def __init__(self, *, ledger_conn: sqlite3.Connection, market_conn: sqlite3.Connection, broker: Any,
                 trader: Trader, runner: CardRunner, errors: ErrorLog,
                 streams: Optional[WebSocketManager] = None,
                 backfill: Optional[Callable[[str], int]] = None):
        self.ledger_conn = ledger_conn
        self.market_conn = market_conn
        self.broker = broker
        self.trader = trader
        self.runner = runner
        self.errors = errors
        self.streams = streams
        self.backfill = backfill
        self.clock_check: Optional[ClockCheck] = None  # the daemon's, on the system clock
        self.stopping: Callable[[], bool] = lambda: False  # the daemon's stop request
        self.now: Callable[[], datetime] = computer_now  # the daemon sets its trading clock (``clock.peek``)
        # after the orders left open are settled, before any decision (the daemon applies the day's
        # corporate actions here, so an open order's fill is settled before a split or dividend)
        self.after_reconcile: Callable[[], None] = lambda: None
        self.pending_backfill: set[str] = set()
        self._reconnected = threading.Event()
        self._last_mismatches: Optional[List[Dict[str, Any]]] = None
        self._broker_positions: Optional[Dict[str, int]] = None
        self.alerts = Alerts(None, ledger_conn, market_conn)  # the daemon sets alerts.notifier (NOTIFY_URL)
        self.controls = Controls(ledger_conn, market_conn)  # the daemon sets its settings and notifier

    # -- the minute

    def run(self, minute: datetime, *, trading: bool = True) -> CycleReport:
        """Every running card decides for the bar that started at ``minute``; then, if ``trading``,
        one net order per ticker (see ``orchestra.trader``)."""
        started = time.monotonic()
        report = CycleReport(stamp(minute), trading)
        refusal = self.clock_check.refusal() if trading and self.clock_check else None
        if refusal:
            logger.warning("cycle %s: no orders: %s", report.minute, refusal)
            trading = report.trading = False
            report.no_orders_because = refusal
        report.reconciled = self.reconcile()
        self.after_reconcile()
        running = ledger.get_all_algorithms("running", conn=self.ledger_conn)
        self.sync_streams(running)
        self.heal({card["ticker"] for card in running})
        busy = self.trader.open_order_tickers()
        report.position_mismatches = self.compare_positions()
        decided = time.monotonic()
        self._decide_all(running, minute, busy, report)
        report.decide_seconds = time.monotonic() - decided
        if trading:
            self._trade(minute, busy, report, self._gate(running, minute, report))
        decision_log.record(self.ledger_conn, report, stamp(self.now()))
        self.alerts.after_cycle(report, minute)
        report.seconds = time.monotonic() - started
        logger.info("cycle %s: %d card(s), %d trade(s), %d order(s), %d error(s) in %.2fs%s", report.minute,
                    len(running), sum(1 for t in report.trades if t.status == "filled"), report.orders_sent,
                    len(report.card_errors), report.seconds,
                    "" if trading else f" (no orders: {report.no_orders_because})")
        if report.paused:
            logger.warning("cycle %s: %s; no orders, stopped cards wait", report.minute, report.paused)
        return report

    def reconcile(self) -> List[TradeOutcome]:
        """Settle unfinished journal entries; a broker or database failure waits for the next cycle."""
        try:
            return self.trader.reconcile()
        except (BrokerError, sqlite3.Error, ledger.LedgerError) as exc:
            self._error(f"reconciling open orders failed: {exc}")
            return []

    # -- deciding (pure: nothing is sent)

    def _decide_all(self, running: List[Mapping[str, Any]], minute: datetime, busy: set[str],
                    report: CycleReport) -> None:
        deciding = []
        for card in running:
            if card["ticker"] in busy:
                logger.info("card %d %s: an order on %s is still open at the broker; no new decision this minute",
                            card["id"], card["ticker"], card["ticker"])
            else:
                deciding.append(card)
        for card, outcome in self.runner.decide_all(deciding, minute):
            self._decided(card, outcome, report)

    def _decided(self, card: Mapping[str, Any], made: Any, report: CycleReport) -> None:
        card_id, ticker = int(card["id"]), card["ticker"]
        if isinstance(made, AlgorithmError):
            report.card_errors[card_id] = str(made)
            self._error(f"card {card_id} {ticker} ({card['algorithm_type']}): {made.message}")
            return
        if isinstance(made, BaseException):  # a bug or bad data: still confined to this card
            report.card_errors[card_id] = f"{type(made).__name__}: {made}"
            logger.error("card %d %s: unexpected failure", card_id, ticker, exc_info=made)
            self.errors.record(str(made))
            return
        report.decisions.append(made)
        decision = made.decision
        if not decision.accepted:
            logger.warning("card %d %s: refused %s %s shares at %s: %s", card_id, ticker, decision.requested_action,
                           decision.requested_shares, money(made.price), decision.reason)
        elif not decision.is_trade:
            logger.debug("card %d %s: hold at %s (%s)", card_id, ticker, money(made.price), decision.reason)
        elif not report.trading:
            logger.info("card %d %s: would %s %d shares at %s (%s) but %s: no order", card_id, ticker,
                        decision.action, decision.shares, money(made.price), decision.reason, report.no_orders_because)
        else:
            logger.info("card %d %s: wants to %s %d shares (last price %s; reason: %s)", card_id, ticker,
                        decision.action, decision.shares, money(made.price), decision.reason)

    # -- the gate: which decisions may be sent

    def _gate(self, running: List[Mapping[str, Any]], minute: datetime, report: CycleReport) -> Gate:
        """The PAUSE, the day's order limit and each card's limits (``orchestra.controls``): the trade
        decisions held back are still logged, with why."""
        gate = self.controls.gate(running, report.decisions, minute, self.now())
        report.paused, report.held_back = gate.paused, gate.held_trades(report.decisions)
        return gate

    # -- trading (one net order per ticker)

    def _trade(self, minute: datetime, busy: set[str], report: CycleReport, gate: Gate) -> None:
        """The minute's intents the gate lets through, per ticker, netted into plans, checked, and
        handed to the trader.

        Cards are read again after every decision: a card stopped meanwhile that holds shares has its
        liquidation (everything, the fraction included) as its one intent, unless trading is paused.
        The journal leaves out, in its own transaction, a card stopped meanwhile and a buy its free
        cash no longer covers (the owner withdrew some). A ticker whose plan cannot be made is
        confined to that ticker."""
        cards = ledger.get_all_algorithms(conn=self.ledger_conn)
        held = positions.positions(conn=self.ledger_conn, cards=cards, open_orders=False)
        intents: Dict[str, Dict[int, Intent]] = defaultdict(dict)
        prices: Dict[str, Optional[float]] = {}
        for made in report.decisions:
            decision, ticker, card_id = made.decision, made.card["ticker"], int(made.card["id"])
            if made.price is not None:
                prices.setdefault(ticker, made.price)
            if not (decision.accepted and decision.is_trade) or card_id in report.held_back:
                continue
            intents[ticker][card_id] = Intent(card_id, decision.action, decision.shares, decision.reason)
        for position in self._liquidations(held.values(), busy) if gate.liquidations else ():
            decided = intents[position.ticker].get(position.card_id)
            if decided is not None:  # stopped while deciding: its liquidation replaces its decision
                report.trades.append(TradeOutcome("", decided.card_id, position.ticker, decided.side, decided.shares,
                                                  "failed", error="stopped before its order was sent"))
            intents[position.ticker][position.card_id] = Intent(
                position.card_id, "sell", position.shares, LIQUIDATION_REASON.format(shares=position.shares),
                liquidation=True)
            if prices.get(position.ticker) is None:
                latest = db_manager.get_latest_price(self.market_conn, position.ticker)
                prices[position.ticker] = latest["price"] if latest else None
        tradable = lambda plan: self._tradable(plan, prices.get(plan.ticker))  # noqa: E731 - asked again on a re-net
        plans = []
        for ticker, wanted in sorted(intents.items()):
            try:
                plan = net_ticker(ticker, wanted.values())
            except ValueError as exc:  # a bug in what was decided: only this ticker waits
                self._error(f"{ticker}: the minute's decisions could not be netted: {exc}; no trades on it")
                continue
            if tradable(plan):
                plans.append(plan)
        sent_before = self.trader.orders_sent
        try:
            report.trades += self.trader.trade(plans, minute, prices, tradable)
        except (ledger.LedgerError, sqlite3.Error) as exc:
            self._error(f"trading the minute {stamp(minute)} failed: {exc}")
        report.orders_sent = self.trader.orders_sent - sent_before
        for outcome in report.trades:
            if outcome.status == "failed":
                report.card_errors.setdefault(outcome.card_id, outcome.error or "order failed")

    def _tradable(self, plan: TickerPlan, price: Optional[float]) -> bool:
        """Whether a ticker's minute may trade: the broker guard, a price to cross at; hooks that
        refuse a ticker's minute go here."""
        if not self._guard_allows(plan):
            return False
        if plan.crossed and price is None:
            self._error(f"{plan.ticker}: no price this minute to cross {sum(plan.crossed.values())} shares at; "
                        "no trades on it")
            return False
        return True

    def _guard_allows(self, plan: TickerPlan) -> bool:
        """No trades on a ticker whose cards and broker disagree; a net sell the broker's position
        does not cover is never sent (it would be refused, or open a short on a margin account)."""
        frozen = {m["ticker"]: m for m in self._last_mismatches or []}
        if plan.ticker in frozen:
            m = frozen[plan.ticker]
            logger.warning("%s frozen: broker holds %s shares, the cards %s; %d card decision(s) not traded "
                           "(accept the broker's count with python -m scripts.reconcile)", plan.ticker, m["broker"],
                           m["cards"], len(plan.intents))
            return False
        held = (self._broker_positions or {}).get(plan.ticker, 0)
        if plan.side == "sell" and (self._broker_positions is None or to_nano(plan.net_shares) > to_nano(held)):
            self._error(f"{plan.ticker}: net sell of {plan.net_shares} shares not sent: the broker's position "
                        f"({'unknown' if self._broker_positions is None else held}) does not cover it")
            return False
        return True

    @staticmethod
    def _liquidations(held: Iterable[positions.Position], busy: set[str]) -> List[positions.Position]:
        """Stopped cards still holding shares (a fraction included), on tickers with no open order:
        everything they hold is sold, recorded on them."""
        found = [p for p in held if not p.running and p.has_shares and p.ticker not in busy]
        for position in found:
            logger.info("card %d %s: stopped while holding %s shares; liquidating", position.card_id,
                        position.ticker, position.shares)
        return found

    # -- streams and data healing

    def sync_streams(self, running: Iterable[Mapping[str, Any]]) -> None:
        """Reference-count subscriptions; newly needed tickers are queued for a backfill."""
        if self.streams is None:
            return
        try:
            added, _removed = self.streams.update_subscriptions(running)
        except Exception as exc:  # the stream must never stop trading
            self._error(f"stream subscription update failed: {exc}")
            return
        self.pending_backfill.update(added)

    def request_backfill(self, tickers: Iterable[str]) -> None:
        """Queue ``tickers`` for a gap backfill before their algorithms next run."""
        self.pending_backfill.update(tickers)

    def stream_reconnected(self) -> None:
        """Called from the streamer's thread: bars may have been missed while it was down."""
        self._reconnected.set()

    def heal(self, tickers: Iterable[str]) -> None:
        """Backfill stocks.db gaps of ``tickers`` that need it, before any algorithm reads them."""
        needed = set(tickers)
        if self._reconnected.is_set():
            self._reconnected.clear()
            self.pending_backfill |= needed
            self._rewind_watermarks(needed)
            logger.info("stream reconnected: backfilling %s", ", ".join(sorted(needed)) or "nothing")
        if self.backfill is None:
            return
        for ticker in sorted(self.pending_backfill & needed):
            if self.stopping():  # the rest stays queued; a stop must not wait for every backfill
                break
            try:
                added = self.backfill(ticker)
            except Exception as exc:  # broker down: keep it queued for the next cycle
                self._error(f"backfill of {ticker} failed: {exc}")
                continue
            self.pending_backfill.discard(ticker)
            if added:
                logger.info("backfilled %d bar(s) of %s", added, ticker)
        self.pending_backfill &= needed

    def _rewind_watermarks(self, tickers: set[str]) -> None:
        try:
            stream_gaps.rewind_after_reconnect(self.market_conn, tickers, self.now())
        except Exception as exc:  # a record for the backfill: never stops a cycle
            logger.warning("checked minutes not rewound after the reconnect: %s", exc)

    # -- positions

    def compare_positions(self) -> Optional[List[Dict[str, Any]]]:
        """Broker vs cards per ticker (tickers with an order in flight are left out), once a minute
        before any trade: a ticker that disagrees is frozen (its cards make no trades) until they agree."""
        try:
            broker_positions = self.broker.get_positions()
        except BrokerError as exc:
            logger.warning("positions not compared: %s", exc)
            self._broker_positions = None
            return self._last_mismatches
        self._broker_positions = broker_positions
        busy_tickers = self.trader.open_order_tickers()
        card_positions = positions.by_ticker(positions.positions(conn=self.ledger_conn, open_orders=False).values())
        mismatches = [m for m in positions.mismatches(broker_positions, card_positions)
                      if m["ticker"] not in busy_tickers]
        if mismatches != self._last_mismatches and mismatches:
            for m in mismatches:
                logger.warning("position mismatch %s: broker holds %s shares, the cards add up to %s; "
                               "its cards are frozen (shown on the wall)", m["ticker"], m["broker"], m["cards"])
        elif mismatches != self._last_mismatches:
            logger.info("broker positions match the cards again")
        self._last_mismatches = mismatches
        return mismatches

    def _error(self, message: str) -> None:
        logger.error(message)
        self.errors.record(message)


# --------------------------------------------------------------------------- dry run


def preview(runner: CardRunner, ledger_conn: sqlite3.Connection, market_conn: sqlite3.Connection,
            minute: datetime) -> List[str]:
    """What each running card would do now and why, and which stopped cards would be liquidated.

    Reads only: no orders, no writes (the caller passes read-only connections).
    """
    pause = ledger.get_pause(conn=ledger_conn)
    lines = [f"PAUSED: {pause_text(pause)}; no order would be sent"] if pause["paused"] else []
    for card in ledger.get_all_algorithms("running", conn=ledger_conn):
        label = f"card {card['id']} {card['ticker']} {card['algorithm_type']}"
        try:
            made = runner.decide(card, minute)
        except AlgorithmError as exc:
            lines.append(f"{label}: ERROR - {exc.message}")
            continue
        decision = made.decision
        age = f", {made.price_age.minutes} market min old" if made.price_age else ""
        data = f"[{made.bars} bars, last {made.last_bar or 'none'}, price {money(made.price)}{age}]"
        if not decision.accepted:
            lines.append(f"{label}: REFUSED {decision.requested_action} {decision.requested_shares} - "
                         f"{decision.reason} {data}")
        elif decision.is_trade:
            lines.append(f"{label}: would {decision.action.upper()} {decision.shares} shares - {decision.reason} {data}")
        else:
            lines.append(f"{label}: HOLD - {decision.reason} {data}")
    for position in positions.positions(conn=ledger_conn, open_orders=False).values():
        if not position.running and position.has_shares:
            lines.append(f"card {position.card_id} {position.ticker} (stopped): would SELL {position.shares} shares - "
                         + LIQUIDATION_REASON.format(shares=position.shares))
    return lines
