"""One market minute of the daemon, and its read-only twin for ``--once --dry-run``.

A cycle, in order: settle unfinished orders with the broker; read the running cards; sync the
stream's reference counts; backfill gaps of tickers that need it (new subscriptions, after a
stream reconnect); run each card's algorithm and execute accepted trades; sell the shares of
stopped cards; compare the broker's positions with the sum of the cards'. Every failure is
confined to the card (or step) it happened in; the cycle itself always finishes.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from database import db_manager
from orchestra.alpaca_wrapper import BrokerError
from orchestra import decision_log
from orchestra.alerts import Alerts
from orchestra.card_runner import CardDecision, CardRunner
from orchestra.clock import stamp
from orchestra.coverage import StreamCoverage
from orchestra import stream_gaps
from orchestra.clock_check import ClockCheck
from orchestra.exceptions import AlgorithmError
from orchestra.heartbeat import ErrorLog
from orchestra.trader import Trader, TradeOutcome, card_positions_by_ticker, money, position_mismatches
from orchestra.websocket_manager import WebSocketManager
from system_databse import system_db_manager as ledger

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
    no_orders_because: str = "the market is closed"


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
        self.now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)  # the daemon's clock
        self.pending_backfill: set[str] = set()
        self.coverage = StreamCoverage()  # minutes a connected stream watched count as checked
        self._reconnected = threading.Event()
        self._last_mismatches: Optional[List[Dict[str, Any]]] = None
        self.alerts = Alerts(None, ledger_conn, market_conn)  # the daemon sets alerts.notifier (NOTIFY_URL)

    # -- the minute

    def run(self, minute: datetime, *, trading: bool = True) -> CycleReport:
        """Run every running card for the bar that started at ``minute``; orders only if ``trading``."""
        started = time.monotonic()
        report = CycleReport(stamp(minute), trading)
        refusal = self.clock_check.refusal() if trading and self.clock_check else None
        if refusal:
            logger.warning("cycle %s: no orders: %s", report.minute, refusal)
            trading = report.trading = False
            report.no_orders_because = refusal
        report.reconciled = self.reconcile()
        running = ledger.get_all_algorithms("running", conn=self.ledger_conn)
        self.sync_streams(running)
        self.heal({card["ticker"] for card in running})
        if self.streams is not None:
            self.coverage.observe(self.market_conn, self.streams.status(), minute)
        in_flight = self.trader.open_order_cards()
        for card in running:
            self._run_card(card, minute, trading, in_flight, report)
        if trading:
            self._liquidate_stopped(minute, in_flight, report)
        report.position_mismatches = self.compare_positions()
        decision_log.record(self.ledger_conn, report)
        self.alerts.after_cycle(report, minute)
        report.seconds = time.monotonic() - started
        logger.info("cycle %s: %d card(s), %d trade(s), %d error(s) in %.2fs%s", report.minute, len(running),
                    sum(1 for t in report.trades if t.status == "filled"), len(report.card_errors), report.seconds,
                    "" if trading else f" (no orders: {report.no_orders_because})")
        return report

    def reconcile(self) -> List[TradeOutcome]:
        """Settle unfinished journal entries; a broker or database failure waits for the next cycle."""
        try:
            return self.trader.reconcile()
        except (BrokerError, sqlite3.Error, ledger.LedgerError) as exc:
            self._error(f"reconciling open orders failed: {exc}")
            return []

    def _run_card(self, card: Mapping[str, Any], minute: datetime, trading: bool, in_flight: set[int],
                  report: CycleReport) -> None:
        card_id, ticker = int(card["id"]), card["ticker"]
        if card_id in in_flight:
            logger.info("card %d %s: an order is still open at the broker; no new decision this minute",
                        card_id, ticker)
            return
        try:
            made = self.runner.decide(card, minute)
        except AlgorithmError as exc:
            report.card_errors[card_id] = str(exc)
            self._error(f"card {card_id} {ticker} ({card['algorithm_type']}): {exc.message}")
            return
        except Exception as exc:  # a bug or bad data: still confined to this card
            report.card_errors[card_id] = f"{type(exc).__name__}: {exc}"
            logger.exception("card %d %s: unexpected failure", card_id, ticker)
            self.errors.record(str(exc))
            return
        report.decisions.append(made)
        self._act(made, minute, trading, report)

    def _act(self, made: CardDecision, minute: datetime, trading: bool, report: CycleReport) -> None:
        card, decision = made.card, made.decision
        card_id, ticker = int(card["id"]), card["ticker"]
        if not decision.accepted:
            logger.warning("card %d %s: refused %s %s shares at %s: %s", card_id, ticker, decision.requested_action,
                           decision.requested_shares, money(made.price), decision.reason)
            return
        if not decision.is_trade:
            logger.debug("card %d %s: hold at %s (%s)", card_id, ticker, money(made.price), decision.reason)
            return
        if not trading:
            logger.info("card %d %s: would %s %d shares at %s (%s) but %s: no order", card_id, ticker,
                        decision.action, decision.shares, money(made.price), decision.reason, report.no_orders_because)
            return
        self._execute(card, decision.action, decision.shares, minute, decision.reason, made.price, report)

    def _execute(self, card: Mapping[str, Any], side: str, shares: int, minute: datetime, reason: str,
                 price: Optional[float], report: CycleReport) -> None:
        try:
            report.trades.append(self.trader.execute(card, side, shares, minute, reason, price))
        except (ledger.LedgerError, sqlite3.Error, ValueError) as exc:
            report.card_errors[int(card["id"])] = str(exc)
            self._error(f"card {card['id']} {card['ticker']}: {side} {shares} shares failed: {exc}")

    def _liquidate_stopped(self, minute: datetime, in_flight: set[int], report: CycleReport) -> None:
        """Sell every share still held by a stopped card, recorded on that card."""
        totals = ledger.get_all_position_totals(conn=self.ledger_conn)
        for card in ledger.get_all_algorithms("stopped", conn=self.ledger_conn):
            shares = totals.get(card["id"], {"shares": 0})["shares"]
            if shares <= 0 or card["id"] in in_flight:
                continue
            latest = db_manager.get_latest_price(self.market_conn, card["ticker"])
            logger.info("card %d %s: stopped while holding %d shares; liquidating", card["id"], card["ticker"], shares)
            self._execute(card, "sell", shares, minute, LIQUIDATION_REASON.format(shares=shares),
                          latest["price"] if latest else None, report)

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
        """Broker vs cards per ticker (tickers with an order in flight are left out); never trades."""
        try:
            broker_positions = self.broker.get_positions()
        except BrokerError as exc:
            logger.warning("positions not compared: %s", exc)
            return self._last_mismatches
        cards = ledger.get_all_algorithms(conn=self.ledger_conn)
        in_flight = self.trader.open_order_cards()
        busy_tickers = {card["ticker"] for card in cards if card["id"] in in_flight}
        card_positions = card_positions_by_ticker(self.ledger_conn, cards)
        mismatches = [m for m in position_mismatches(broker_positions, card_positions) if m["ticker"] not in busy_tickers]
        if mismatches != self._last_mismatches and mismatches:
            for m in mismatches:
                logger.warning("position mismatch %s: broker holds %s shares, the cards add up to %s "
                               "(recorded for /api/health; not traded away)", m["ticker"], m["broker"], m["cards"])
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
    lines = []
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
    totals = ledger.get_all_position_totals(conn=ledger_conn)
    for card in ledger.get_all_algorithms("stopped", conn=ledger_conn):
        shares = totals.get(card["id"], {"shares": 0})["shares"]
        if shares > 0:
            lines.append(f"card {card['id']} {card['ticker']} (stopped): would SELL {shares} shares - "
                         + LIQUIDATION_REASON.format(shares=shares))
    return lines
