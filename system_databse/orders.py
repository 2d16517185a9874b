"""The order journal's SQL: one net order per ticker per minute ("broker_orders"), its allocations
to the cards ("order_allocations") and the events applied to it ("order_events").

An order's life is a small state machine, checked here in Python on every write (never only by a
``WHERE status IN (...)``)::

    pending --> submitted --> partially_filled --> filled
       |            |                |        \\-> cancelled (what filled is kept)
       |            |                \\------------------^
       \\------------+--> filled | cancelled | failed
    crossed: the minute's decisions cancelled out between cards; nothing went to the broker

Only ``orchestra.net_order`` writes an order and its transactions, each event inside one
``atomic``; these functions are its SQL and the reads everyone else makes. Stamps are given by
the caller (the trading clock), never read here.
"""
from __future__ import annotations

import sqlite3
from typing import Any, Dict, Iterable, List, Optional

from shared.shares import from_nano, to_nano
from system_databse.connection import LedgerError, atomic, check_price, check_quantity, use_connection
from system_databse.transactions import EMPTY, holdings, insert_transaction

PENDING, SUBMITTED, PARTIALLY_FILLED = "pending", "submitted", "partially_filled"
FILLED, CANCELLED, FAILED, CROSSED = "filled", "cancelled", "failed", "crossed"
TRANSITIONS: Dict[str, frozenset] = {
    PENDING: frozenset({SUBMITTED, PARTIALLY_FILLED, FILLED, CANCELLED, FAILED}),
    SUBMITTED: frozenset({SUBMITTED, PARTIALLY_FILLED, FILLED, CANCELLED, FAILED}),
    PARTIALLY_FILLED: frozenset({PARTIALLY_FILLED, FILLED, CANCELLED}),
    FILLED: frozenset(), CANCELLED: frozenset(), FAILED: frozenset(), CROSSED: frozenset(),
}
OPEN_STATES = frozenset(state for state, onward in TRANSITIONS.items() if onward)
_OPEN_SQL = "status IN ({})".format(", ".join(f"'{s}'" for s in sorted(OPEN_STATES)))  # from the table only


class OrderStateError(LedgerError):
    """A write the state machine does not allow (an order moved from a state it is not in, or to
    one its state cannot reach): nothing is written."""


def check_transition(client_order_id: str, state: str, target: str) -> None:
    if target not in TRANSITIONS.get(state, ()):
        raise OrderStateError(f"order {client_order_id} cannot go from {state!r} to {target!r}")


# --------------------------------------------------------------------------- writes (net_order only)


def insert_order(c: sqlite3.Connection, client_order_id: str, ticker: str, minute: str, side: Optional[str],
                 shares: int | float, price: Optional[float], now: str) -> bool:
    """The order's row, pending (or crossed when nothing goes to the broker); False if that id exists."""
    if side not in (None, "buy", "sell") or (side is None) != (shares == 0):
        raise LedgerError(f"a net order needs a side exactly when it has shares, got {side!r} {shares!r}")
    shares = check_quantity(shares) if shares else 0
    cur = c.execute(
        "INSERT OR IGNORE INTO broker_orders (client_order_id, ticker, minute, side, shares, cross_price, status,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (client_order_id, ticker, minute, side, shares, price, PENDING if shares else CROSSED, now, now))
    return cur.rowcount == 1


def card_status(c: sqlite3.Connection, card_id: int) -> str:
    row = c.execute("SELECT status FROM algorithm_instances WHERE id = ?", (card_id,)).fetchone()
    if row is None:
        raise LedgerError(f"algorithm {card_id} does not exist")
    return row["status"]


def held_nano(c: sqlite3.Connection, card_id: int) -> int:
    """What a card holds now, whole and fractional, in nano-shares (``transactions.holdings``)."""
    return holdings(c, [card_id]).get(card_id, EMPTY)["nano"]


def newest_fill_at(c: sqlite3.Connection, card_ids: Iterable[int]) -> Optional[str]:
    """The newest fill stamp of any of these cards (crosses are never stamped before it)."""
    ids = sorted({int(i) for i in card_ids})
    if not ids:
        return None
    return c.execute(f"SELECT MAX(timestamp) FROM transactions WHERE algorithm_id IN ({','.join('?' * len(ids))})",
                     ids).fetchone()[0]


def insert_allocation(c: sqlite3.Connection, client_order_id: str, card_id: int, kind: str, side: str,
                      shares: int | float, reason: str, transaction_id: Optional[int] = None) -> None:
    shares = check_quantity(shares)
    c.execute(
        "INSERT INTO order_allocations (client_order_id, algorithm_id, kind, side, shares, reason, filled_shares,"
        " transaction_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (client_order_id, card_id, kind, side, shares, reason, shares if transaction_id else 0, transaction_id))


def record_card_fill(c: sqlite3.Connection, client_order_id: str, card_id: int, side: str, shares: int | float,
                     price: float, at: str) -> int:
    """One card's part of the order's fill: its transaction and its allocation, never selling more
    than the card holds (a card's position cannot go below zero, whatever the broker did)."""
    if side == "sell" and to_nano(shares) > held_nano(c, card_id):
        raise LedgerError(f"order {client_order_id}: card {card_id} holds {from_nano(held_nano(c, card_id))} "
                          f"shares and cannot sell {shares}")
    tx_id = insert_transaction(c, card_id, side, shares, check_price(price, "fill price"), at)
    c.execute("UPDATE order_allocations SET filled_shares = ?, transaction_id = ?"
              " WHERE client_order_id = ? AND algorithm_id = ? AND kind = 'order'",
              (check_quantity(shares), tx_id, client_order_id, card_id))
    return tx_id


def move_order(c: sqlite3.Connection, order: Dict[str, Any], target: str, now: str, *,
               broker_order_id: Optional[str] = None, filled: int | float = 0, avg_price: Optional[float] = None,
               error: Optional[str] = None, missed_lookups: Optional[int] = None) -> None:
    """Move ``order`` (as read in this transaction) to ``target`` if the table allows it; the row
    must still be in the state it was read in, so two writers can never both move it."""
    check_transition(order["client_order_id"], order["status"], target)
    cur = c.execute(
        "UPDATE broker_orders SET status = ?, broker_order_id = COALESCE(?, broker_order_id), filled_shares = ?,"
        " filled_avg_price = COALESCE(?, filled_avg_price), error = COALESCE(?, error),"
        " missed_lookups = COALESCE(?, missed_lookups), updated_at = ? WHERE client_order_id = ? AND status = ?",
        (target, broker_order_id, filled, avg_price, error, missed_lookups, now, order["client_order_id"],
         order["status"]))
    if cur.rowcount != 1:
        raise OrderStateError(f"order {order['client_order_id']} is no longer {order['status']!r}")


def add_order_event(c: sqlite3.Connection, client_order_id: str, event: str, before: Optional[str], after: str,
                    at: str, *, filled: int | float = 0, avg_price: Optional[float] = None, detail: str = "") -> None:
    c.execute("INSERT INTO order_events (client_order_id, event, state_before, state_after, filled_shares, avg_price,"
              " detail, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
              (client_order_id, event, before, after, filled, avg_price, detail, at))


# --------------------------------------------------------------------------- reads


def get_order(client_order_id: str, *, conn: Optional[sqlite3.Connection] = None) -> Optional[Dict[str, Any]]:
    """One order with its allocations (``order`` parts and ``cross`` parts, by card), or None."""
    with use_connection(conn) as c:
        row = c.execute("SELECT * FROM broker_orders WHERE client_order_id = ?", (client_order_id,)).fetchone()
        if row is None:
            return None
        order = dict(row)
        order["allocations"] = [dict(a) for a in c.execute(
            "SELECT * FROM order_allocations WHERE client_order_id = ? ORDER BY kind, algorithm_id",
            (client_order_id,))]
    return order


def get_open_orders(*, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Net orders still open (``OPEN_STATES``), oldest first, each with its 'order' allocations."""
    with use_connection(conn) as c:
        rows = c.execute(f"SELECT * FROM broker_orders WHERE {_OPEN_SQL} ORDER BY created_at, rowid").fetchall()
        orders = [dict(r) for r in rows if r["status"] in OPEN_STATES]
        for order in orders:
            order["allocations"] = [dict(a) for a in c.execute(
                "SELECT * FROM order_allocations WHERE client_order_id = ? AND kind = 'order' ORDER BY algorithm_id",
                (order["client_order_id"],))]
    return orders


def open_order_tickers(*, conn: Optional[sqlite3.Connection] = None) -> set[str]:
    """Tickers with an order still open: no new order, no corporate action, no hand reconcile on them."""
    with use_connection(conn) as c:
        rows = c.execute(f"SELECT ticker, status FROM broker_orders WHERE {_OPEN_SQL}").fetchall()
    return {r["ticker"] for r in rows if r["status"] in OPEN_STATES}


def open_order_claims(*, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Every card's part of every open order: card, side, shares, and the minute's price it was sent at."""
    with use_connection(conn) as c:
        rows = c.execute(
            "SELECT a.algorithm_id, a.side, a.shares, o.cross_price AS price, o.status FROM order_allocations a"
            f" JOIN broker_orders o ON o.client_order_id = a.client_order_id WHERE a.kind = 'order' AND o.{_OPEN_SQL}"
        ).fetchall()
    return [dict(r) for r in rows if r["status"] in OPEN_STATES]


def get_order_events(client_order_id: str, *, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """The events applied to one order, oldest first."""
    with use_connection(conn) as c:
        rows = c.execute("SELECT * FROM order_events WHERE client_order_id = ? ORDER BY id",
                         (client_order_id,)).fetchall()
    return [dict(r) for r in rows]


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


# --------------------------------------------------------------------------- accepting the broker's count


def record_broker_count(algo_id: int, broker_shares: int | float, ticker_shares: int | float, price: float, *,
                        at: str, conn: Optional[sqlite3.Connection] = None) -> Optional[int]:
    """The owner accepts the broker's count for a ticker on one card: one buy or sell of the exact
    difference (``broker_shares - ticker_shares``, the cards' total, a fraction included) at
    ``price``, stamped ``at`` (never before the card's own fills), stopped cards included, never
    below zero shares. Refused while an order on the ticker is open (its fill would count twice).
    Returns the transaction id (None: nothing to change)."""
    difference = to_nano(broker_shares) - to_nano(ticker_shares)
    if difference == 0:
        return None
    price = check_price(price)
    with use_connection(conn) as c, atomic(c):
        card = c.execute("SELECT ticker FROM algorithm_instances WHERE id = ?", (algo_id,)).fetchone()
        if card is None:
            raise LedgerError(f"algorithm {algo_id} does not exist")
        if card["ticker"] in open_order_tickers(conn=c):
            raise LedgerError(f"an order on {card['ticker']} is still open; let the orchestrator settle it first")
        held = held_nano(c, algo_id)
        if held + difference < 0:
            raise LedgerError(f"algorithm {algo_id} holds {from_nano(held)} shares; it cannot give up "
                              f"{from_nano(-difference)}")
        last = c.execute("SELECT MAX(timestamp) FROM transactions WHERE algorithm_id = ?", (algo_id,)).fetchone()[0]
        return insert_transaction(c, algo_id, "buy" if difference > 0 else "sell", from_nano(abs(difference)), price,
                                  max(at, last or ""))

