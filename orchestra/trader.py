"""Orders exactly once: journal the intent, submit, wait, record the fill and close the intent.

The ``client_order_id`` is deterministic (card, cycle minute, side), written to system.db
before the order is sent; the fill and the closing of the journal entry are one database
transaction (``system_db_manager.record_order_fill``). If the process dies anywhere in between,
``reconcile`` finds the order at the broker by that id on the next start or cycle: a fill is
recorded once, an order the broker never received is marked failed, and nothing is re-sent
(the broker also refuses a second order with the same id).
"""
from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional

from orchestra.alpaca_wrapper import BrokerError, OrderNotFound, OrderRejected, OrderResult
from system_databse import system_db_manager as ledger

logger = logging.getLogger(__name__)


def client_order_id(card_id: int, minute: datetime, side: str) -> str:
    """``at-<card>-<YYYYMMDDHHMM>-<side>``: the same decision always gets the same id."""
    return f"at-{card_id}-{minute:%Y%m%d%H%M}-{side}"


@dataclass(frozen=True)
class TradeOutcome:
    """What happened to one order: filled, failed (nothing executed), or still open at the broker."""

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


class Trader:
    """Places and reconciles a card's orders through the broker wrapper; records them in system.db."""

    def __init__(self, broker: Any, ledger_conn: sqlite3.Connection, *, fill_timeout: float = 30.0,
                 on_error: Optional[Callable[[str], None]] = None):
        self.broker = broker
        self.conn = ledger_conn
        self.fill_timeout = fill_timeout
        self._on_error = on_error or (lambda message: None)

    # -- placing

    def execute(self, card: Mapping[str, Any], side: str, shares: int, minute: datetime, reason: str,
                price: Optional[float] = None) -> TradeOutcome:
        """Journal, submit, wait for a terminal state and record the fill of one market order."""
        card_id, ticker = int(card["id"]), str(card["ticker"])
        coid = client_order_id(card_id, minute, side)
        if not ledger.journal_intent(card_id, coid, side, shares, reason, conn=self.conn):
            logger.warning("card %d %s: order %s was already journaled; not sending it again", card_id, ticker, coid)
            return TradeOutcome(coid, card_id, ticker, side, shares, "duplicate")
        logger.info("card %d %s: sending %s %d shares (last price %s; reason: %s) as %s",
                    card_id, ticker, side, shares, money(price), reason, coid)
        try:
            result = self.broker.submit_market_order(ticker, side, shares, coid)
        except OrderRejected as exc:
            ledger.mark_order_failed(coid, f"rejected: {exc}", conn=self.conn)
            self._error(f"card {card_id} {ticker}: broker rejected {side} {shares} shares: {exc}")
            return TradeOutcome(coid, card_id, ticker, side, shares, "failed", error=str(exc))
        except BrokerError as exc:
            self._error(f"card {card_id} {ticker}: {side} {shares} shares: outcome unknown ({exc}); "
                        "will reconcile by client_order_id")
            return TradeOutcome(coid, card_id, ticker, side, shares, "open", error=str(exc))
        ledger.mark_order_submitted(coid, result.broker_order_id, conn=self.conn)
        if not result.is_terminal:
            try:
                result = self.broker.wait_for_terminal(coid, timeout=self.fill_timeout)
            except BrokerError as exc:
                self._error(f"card {card_id} {ticker}: waiting for {coid} failed ({exc}); will reconcile")
                return TradeOutcome(coid, card_id, ticker, side, shares, "open", error=str(exc))
        return self._settle(card_id, ticker, result)

    # -- reconciling

    def reconcile(self) -> List[TradeOutcome]:
        """Settle every unfinished journal entry with what the broker knows about its id."""
        outcomes = []
        for entry in ledger.get_open_orders(conn=self.conn):
            coid, card_id = entry["client_order_id"], int(entry["algorithm_id"])
            card = ledger.get_algorithm(card_id, conn=self.conn) or {"ticker": "?"}
            try:
                result = self.broker.get_order_by_client_id(coid)
            except OrderNotFound:
                result = None
            except BrokerError as exc:
                logger.warning("reconcile %s: broker unavailable (%s); trying again next cycle", coid, exc)
                continue
            if result is None:
                ledger.mark_order_failed(coid, "the broker never received this order", conn=self.conn)
                logger.warning("card %d %s: order %s was never received by the broker; marked failed",
                               card_id, card["ticker"], coid)
                outcomes.append(TradeOutcome(coid, card_id, card["ticker"], entry["side"], entry["shares"], "failed",
                                             error="never received"))
            elif result.is_terminal:
                logger.info("card %d %s: reconciling %s (%s at the broker)", card_id, card["ticker"], coid,
                            result.status)
                outcomes.append(self._settle(card_id, card["ticker"], result))
            elif entry["status"] == "pending":
                ledger.mark_order_submitted(coid, result.broker_order_id, conn=self.conn)
        return outcomes

    def open_order_cards(self) -> set[int]:
        """Cards with an order still in flight: they make no new decision until it settles."""
        return {int(e["algorithm_id"]) for e in ledger.get_open_orders(conn=self.conn)}

    def _settle(self, card_id: int, ticker: str, result: OrderResult) -> TradeOutcome:
        coid = result.client_order_id
        if not result.is_terminal:
            logger.info("card %d %s: %s is still %s at the broker; will reconcile", card_id, ticker, coid, result.status)
            return TradeOutcome(coid, card_id, ticker, result.side, result.requested_shares, "open",
                                filled_shares=result.filled_shares)
        tx_id = ledger.record_order_fill(coid, result.filled_shares, result.filled_avg_price, result.filled_at,
                                         conn=self.conn)
        if tx_id is None:
            self._error(f"card {card_id} {ticker}: {result.side} {result.requested_shares} shares ended "
                        f"{result.status} with nothing filled ({coid})")
            return TradeOutcome(coid, card_id, ticker, result.side, result.requested_shares, "failed",
                                error=result.status)
        verb = "bought" if result.side == "buy" else "sold"
        logger.info("card %d %s: %s %d shares at %s (requested %d, %s, transaction %d)", card_id, ticker, verb,
                    result.filled_shares, money(result.filled_avg_price), result.requested_shares, coid, tx_id)
        return TradeOutcome(coid, card_id, ticker, result.side, result.requested_shares, "filled",
                            result.filled_shares, result.filled_avg_price, tx_id)

    def _error(self, message: str) -> None:
        logger.error(message)
        self._on_error(message)


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
