"""The order journal: one broker order per ticker per minute ("broker_orders") and its allocations
to the cards ("order_allocations"). The intent is written before the order is sent; the fill,
every card's transaction and the closing of the order in one transaction after."""
from __future__ import annotations

import sqlite3
from typing import Any, Dict, List, Optional

from system_databse.connection import (LedgerError, atomic, check_price, check_shares, ledger_stamp, use_connection)
from system_databse.transactions import get_position_totals, insert_transaction

OPEN_ORDER_STATUSES = ("pending", "submitted")


def journal_net_order(client_order_id: str, ticker: str, minute: str, side: Optional[str], shares: int,
                      cross_price: Optional[float], allocations: List[Dict[str, Any]], *, at: Optional[str] = None,
                      conn: Optional[sqlite3.Connection] = None) -> bool:
    """Write one ticker's minute before anything is sent: the net order, every card's allocation,
    and the crosses (recorded at once, at ``cross_price``). False if that id is already journaled.

    Each allocation: ``algorithm_id``, ``kind`` ('order' | 'cross'), ``side``, ``shares``, ``reason``,
    ``liquidation``. A card that is no longer running is refused (LedgerError), except for a
    liquidation of a stopped card. ``at`` (here and in the other writers of the journal) is the
    trading clock's stamp; the computer's clock for a call without one.
    """
    if side not in (None, "buy", "sell") or (side is None) != (shares == 0):
        raise LedgerError(f"a net order needs a side exactly when it has shares, got {side!r} {shares!r}")
    now = ledger_stamp(at)
    with use_connection(conn) as c, atomic(c):
        cur = c.execute(
            "INSERT OR IGNORE INTO broker_orders (client_order_id, ticker, minute, side, shares, cross_price, status,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (client_order_id, ticker, minute, side, shares, cross_price, "pending" if shares else "crossed", now, now))
        if cur.rowcount != 1:
            return False
        crossed_at = _cross_time(c, minute, [int(p["algorithm_id"]) for p in allocations if p["kind"] == "cross"])
        for part in allocations:
            _journal_allocation(c, client_order_id, part, cross_price, crossed_at)
        return True


def _cross_time(c: sqlite3.Connection, minute: str, card_ids: List[int]) -> str:
    """When the minute's crosses are stamped: ``minute`` (the bar's close), or the newest fill of a
    crossing card if the broker stamped that one later (a fill that came after the bar closed, as
    in a cycle that ran late), so that every card's fills stay in time order for its FIFO lots."""
    if not card_ids:
        return minute
    marks = ", ".join("?" * len(card_ids))
    newest = c.execute(f"SELECT MAX(timestamp) FROM transactions WHERE algorithm_id IN ({marks})",
                       card_ids).fetchone()[0]
    return newest if newest is not None and newest > minute else minute


def _journal_allocation(c: sqlite3.Connection, client_order_id: str, part: Dict[str, Any],
                        cross_price: Optional[float], crossed_at: str) -> None:
    card_id, kind, side = int(part["algorithm_id"]), part["kind"], part["side"]
    shares = check_shares(part["shares"])
    card = c.execute("SELECT status FROM algorithm_instances WHERE id = ?", (card_id,)).fetchone()
    if card is None:
        raise LedgerError(f"algorithm {card_id} does not exist")
    if card["status"] != "running" and not (part.get("liquidation") and side == "sell"):
        raise LedgerError(f"algorithm {card_id} is no longer running; its {side} is not sent")
    tx_id = None
    if kind == "cross":
        price = check_price(cross_price, "cross price")
        if side == "sell" and shares > get_position_totals(card_id, conn=c)["shares"]:
            raise LedgerError(f"algorithm {card_id} cannot sell {shares} shares it does not hold")
        tx_id = insert_transaction(c, card_id, side, shares, price, crossed_at)
    c.execute(
        "INSERT INTO order_allocations (client_order_id, algorithm_id, kind, side, shares, reason, filled_shares,"
        " transaction_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (client_order_id, card_id, kind, side, shares, part.get("reason", ""), shares if tx_id else 0, tx_id))


def mark_order_submitted(client_order_id: str, broker_order_id: str, *, at: Optional[str] = None,
                         conn: Optional[sqlite3.Connection] = None) -> None:
    """The broker acknowledged the order: from now on one missing look-up never closes it."""
    with use_connection(conn) as c, atomic(c):
        c.execute(
            "UPDATE broker_orders SET status = 'submitted', broker_order_id = ?, missed_lookups = 0, updated_at = ?"
            " WHERE client_order_id = ? AND status = 'pending'",
            (broker_order_id, ledger_stamp(at), client_order_id),
        )


def record_order_fill(client_order_id: str, filled_shares: int, avg_price: Optional[float],
                      filled_at: Optional[str], split: Dict[int, int], *, at: Optional[str] = None,
                      conn: Optional[sqlite3.Connection] = None) -> Dict[int, int]:
    """Record the net order's fill on every card of its side (``split``: card -> shares) and close
    the order, in one transaction; returns card -> transaction id.

    Exactly once: an order already closed returns its existing transactions and writes nothing.
    A zero fill closes the order as failed. Stopped cards are allowed: the broker already executed.
    ``filled_at`` is the broker's; without it the fill is stamped ``at``.
    """
    now = ledger_stamp(at)
    with use_connection(conn) as c, atomic(c):
        order = c.execute("SELECT * FROM broker_orders WHERE client_order_id = ?", (client_order_id,)).fetchone()
        if order is None:
            raise LedgerError(f"no journaled order {client_order_id!r}")
        if order["status"] not in OPEN_ORDER_STATUSES:
            return _order_transactions(c, client_order_id)
        if filled_shares == 0:
            _close_order(c, client_order_id, "failed", 0, None, "broker filled nothing", now)
            return {}
        price = check_price(avg_price, "fill price")
        parts = {int(r["algorithm_id"]): r for r in c.execute(
            "SELECT * FROM order_allocations WHERE client_order_id = ? AND kind = 'order'", (client_order_id,))}
        if sum(split.values()) != filled_shares or set(split) - set(parts) or \
                any(shares > parts[card]["shares"] or shares < 0 for card, shares in split.items()):
            raise LedgerError(f"order {client_order_id}: split {split} does not fit its fill of {filled_shares}")
        for card_id, shares in sorted(split.items()):
            if shares:
                tx_id = insert_transaction(c, card_id, order["side"], shares, price, filled_at or now)
                c.execute("UPDATE order_allocations SET filled_shares = ?, transaction_id = ?"
                          " WHERE client_order_id = ? AND algorithm_id = ? AND kind = 'order'",
                          (shares, tx_id, client_order_id, card_id))
        _close_order(c, client_order_id, "filled", filled_shares, price, None, now)
        return _order_transactions(c, client_order_id)


def mark_order_failed(client_order_id: str, error: str, *, at: Optional[str] = None,
                      conn: Optional[sqlite3.Connection] = None) -> None:
    """Close an open order that never executed (its crosses stay: they were never the broker's)."""
    now = ledger_stamp(at)
    with use_connection(conn) as c, atomic(c):
        _close_order(c, client_order_id, "failed", 0, None, error, now)


def note_missed_lookup(client_order_id: str, *, at: Optional[str] = None,
                       conn: Optional[sqlite3.Connection] = None) -> int:
    """Count one look-up of an acknowledged order that the broker did not find; returns the count."""
    with use_connection(conn) as c, atomic(c):
        c.execute("UPDATE broker_orders SET missed_lookups = missed_lookups + 1, updated_at = ?"
                  " WHERE client_order_id = ?", (ledger_stamp(at), client_order_id))
        row = c.execute("SELECT missed_lookups FROM broker_orders WHERE client_order_id = ?",
                        (client_order_id,)).fetchone()
    return int(row["missed_lookups"]) if row else 0


def _close_order(c: sqlite3.Connection, client_order_id: str, status: str, filled: int,
                 price: Optional[float], error: Optional[str], at: str) -> None:
    c.execute(
        "UPDATE broker_orders SET status = ?, filled_shares = ?, filled_avg_price = ?, error = ?, updated_at = ?"
        " WHERE client_order_id = ? AND status IN ('pending', 'submitted')",
        (status, filled, price, error, at, client_order_id),
    )


def _order_transactions(c: sqlite3.Connection, client_order_id: str) -> Dict[int, int]:
    rows = c.execute("SELECT algorithm_id, transaction_id FROM order_allocations WHERE client_order_id = ?"
                     " AND kind = 'order' AND transaction_id IS NOT NULL", (client_order_id,)).fetchall()
    return {int(r["algorithm_id"]): int(r["transaction_id"]) for r in rows}


def get_open_orders(*, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Net orders still pending or submitted, oldest first, each with its 'order' allocations."""
    with use_connection(conn) as c:
        rows = c.execute("SELECT * FROM broker_orders WHERE status IN ('pending', 'submitted')"
                         " ORDER BY created_at, rowid").fetchall()
        orders = [dict(r) for r in rows]
        for order in orders:
            order["allocations"] = [dict(a) for a in c.execute(
                "SELECT * FROM order_allocations WHERE client_order_id = ? AND kind = 'order' ORDER BY algorithm_id",
                (order["client_order_id"],))]
    return orders


def record_broker_count(algo_id: int, broker_shares: int, ticker_shares: int, price: float, *,
                        at: Optional[str] = None, conn: Optional[sqlite3.Connection] = None) -> Optional[int]:
    """The owner accepts the broker's count for a ticker on one card: one buy or sell of the
    difference (``broker_shares - ticker_shares``, the cards' total) at ``price``, stopped cards
    included, never below zero shares. Returns the transaction id (None: nothing to change)."""
    difference = int(broker_shares) - int(ticker_shares)
    if difference == 0:
        return None
    price = check_price(price)
    now = ledger_stamp(at)
    with use_connection(conn) as c, atomic(c):
        if c.execute("SELECT 1 FROM algorithm_instances WHERE id = ?", (algo_id,)).fetchone() is None:
            raise LedgerError(f"algorithm {algo_id} does not exist")
        held = get_position_totals(algo_id, conn=c)["shares"]
        if held + difference < 0:
            raise LedgerError(f"algorithm {algo_id} holds {held} shares; it cannot give up {-difference}")
        last = c.execute("SELECT MAX(timestamp) FROM transactions WHERE algorithm_id = ?", (algo_id,)).fetchone()[0]
        when = max(now, last or "")  # never before the card's own trades
        return insert_transaction(c, algo_id, "buy" if difference > 0 else "sell", abs(difference), price, when)


def get_allocations(client_order_id: str, *, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """One order's allocations ('order' and 'cross'), by card."""
    with use_connection(conn) as c:
        rows = c.execute("SELECT * FROM order_allocations WHERE client_order_id = ? ORDER BY kind, algorithm_id",
                         (client_order_id,)).fetchall()
    return [dict(r) for r in rows]


def get_net_orders(ticker: Optional[str] = None, *,
                   conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Net orders (with crossed-only minutes), of one ticker or all, oldest first."""
    with use_connection(conn) as c:
        if ticker is None:
            rows = c.execute("SELECT * FROM broker_orders ORDER BY created_at, rowid").fetchall()
        else:
            rows = c.execute("SELECT * FROM broker_orders WHERE ticker = ? ORDER BY created_at, rowid",
                             (ticker,)).fetchall()
    return [dict(r) for r in rows]


def get_orders(algo_id: Optional[int] = None, *, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Allocations with their order's state (``status`` and ``error`` are the order's), of one card or
    all, oldest first: what each card asked for and what it got."""
    sql = ("SELECT a.client_order_id, a.algorithm_id, a.kind, a.side, a.shares, a.reason, a.filled_shares,"
           " a.transaction_id, o.ticker, o.minute, o.status, o.error, o.broker_order_id, o.shares AS order_shares,"
           " o.filled_avg_price, o.created_at FROM order_allocations a"
           " JOIN broker_orders o ON o.client_order_id = a.client_order_id")
    with use_connection(conn) as c:
        if algo_id is None:
            rows = c.execute(sql + " ORDER BY o.created_at, o.rowid, a.algorithm_id, a.kind").fetchall()
        else:
            rows = c.execute(sql + " WHERE a.algorithm_id = ? ORDER BY o.created_at, o.rowid, a.kind",
                             (algo_id,)).fetchall()
    return [dict(r) for r in rows]

