"""All SQL for system.db: cards, their transactions, the PIN, the order journal, heartbeats.

Every public function takes an optional ``conn``; without one it opens a connection to the
database named by ``AUTOTRADER_SYSTEM_DB`` (default: ``system.db`` beside this file) and closes it.
Writes run inside ``atomic()`` (``BEGIN IMMEDIATE`` ... ``COMMIT``, rollback on any error).
The manager records what the broker filled; it does not police cash (the caller checks
allocations before an order is sent), but it refuses impossible rows: shorting, non-positive
shares or prices, trades on stopped or unknown cards.
"""
from __future__ import annotations

import json
import math
import os
import re
import secrets
import sqlite3
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TICKER_PATTERN = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
PIN_PATTERN = re.compile(r"^[0-9]{4,8}$")
DEFAULT_PIN = "2020"  # seeded by migration 0001; the API refuses live trading actions while it is unchanged


class LedgerError(ValueError):
    """A write the ledger refuses: it would make the history impossible or wrong."""


def default_db_path() -> Path:
    """system.db's path: ``AUTOTRADER_SYSTEM_DB`` if set, else beside this file."""
    override = os.environ.get("AUTOTRADER_SYSTEM_DB")
    return Path(override) if override else Path(__file__).resolve().parent / "system.db"


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime(TIMESTAMP_FORMAT)


# --------------------------------------------------------------------------- connections


def get_connection(db_path: str | Path | None = None, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection with dict-like rows, foreign keys on and a busy timeout.

    Autocommit mode: reads see the latest commit, and writes group themselves with ``atomic``.
    ``read_only`` opens the file with ``mode=ro`` so a reader can never take a write lock.
    """
    path = Path(db_path) if db_path else default_db_path()
    if not path.exists():
        raise FileNotFoundError(
            f"system database not found at {path}; create it with: python -m system_databse.create_system_db"
        )
    mode = "ro" if read_only else "rw"
    conn = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=10, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 10000")
    # a journal intent must be on disk before its order is sent: every commit is fsynced (WAL
    # alone, at the build's default NORMAL, may lose the last commits to a power cut)
    conn.execute("PRAGMA synchronous = FULL")
    return conn


@contextmanager
def _connection(conn: Optional[sqlite3.Connection]) -> Iterator[sqlite3.Connection]:
    """Use the caller's connection, or open one for this call only."""
    if conn is not None:
        yield conn
        return
    own = get_connection()
    try:
        yield own
    finally:
        own.close()


@contextmanager
def atomic(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Commit everything in the block or nothing; nests as a savepoint."""
    if conn.in_transaction:
        conn.execute("SAVEPOINT atomic_block")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO atomic_block")
            conn.execute("RELEASE atomic_block")
            raise
        conn.execute("RELEASE atomic_block")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # also when COMMIT itself failed: never leave the connection inside it
            conn.execute("ROLLBACK")
        raise


def _as_dict(row: Optional[sqlite3.Row]) -> Optional[Dict[str, Any]]:
    return dict(row) if row is not None else None


# --------------------------------------------------------------------------- validation


def _check_shares(shares: Any) -> int:
    if isinstance(shares, bool) or not isinstance(shares, int) or shares <= 0:
        raise LedgerError(f"shares must be a positive integer, got {shares!r}")
    return shares


def _check_price(price: Any, what: str = "price") -> float:
    if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or price <= 0:
        raise LedgerError(f"{what} must be a positive finite number, got {price!r}")
    return float(price)


def normalize_ticker(ticker: Any) -> str:
    """Upper-case, trimmed ticker; raises LedgerError for anything that cannot be a symbol."""
    if not isinstance(ticker, str) or not ticker.strip():
        raise LedgerError("ticker must be a non-empty string")
    symbol = ticker.strip().upper()
    if not TICKER_PATTERN.match(symbol):
        raise LedgerError(f"ticker {ticker!r} is not a valid symbol (letters, digits, '.' or '-', at most 10)")
    return symbol


# --------------------------------------------------------------------------- PIN and config


def get_config(key: str, default: Optional[str] = None, *, conn: Optional[sqlite3.Connection] = None) -> Optional[str]:
    with _connection(conn) as c:
        row = c.execute("SELECT value FROM system_config WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else default


def set_config(key: str, value: str, *, conn: Optional[sqlite3.Connection] = None) -> None:
    with _connection(conn) as c, atomic(c):
        c.execute(
            "INSERT INTO system_config (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )


def get_pin(*, conn: Optional[sqlite3.Connection] = None) -> str:
    pin = get_config("pin", conn=conn)
    if pin is None:
        raise LedgerError("no PIN is configured in system_config")
    return pin


def set_pin(new_pin: str, *, conn: Optional[sqlite3.Connection] = None) -> None:
    if not isinstance(new_pin, str) or not PIN_PATTERN.match(new_pin):
        raise LedgerError("PIN must be 4 to 8 digits")
    set_config("pin", new_pin, conn=conn)


# --------------------------------------------------------------------------- cards


def generate_display_name(ticker: str, algo_type: str, *, now: Optional[datetime] = None) -> str:
    """``NVDA_sma_crossover_20240604_143022``, stamped in UTC."""
    moment = now or datetime.now(timezone.utc)
    return f"{ticker}_{algo_type}_{moment.astimezone(timezone.utc).strftime('%Y%m%d_%H%M%S')}"


def create_algorithm(ticker: str, algo_type: str, initial_capital: float, *,
                     conn: Optional[sqlite3.Connection] = None) -> int:
    """Insert a running card and return its id."""
    symbol = normalize_ticker(ticker)
    if not isinstance(algo_type, str) or not algo_type.strip():
        raise LedgerError("algorithm type must be a non-empty string")
    capital = _check_price(initial_capital, "initial_capital")
    created = datetime.now(timezone.utc)
    with _connection(conn) as c, atomic(c):
        cur = c.execute(
            "INSERT INTO algorithm_instances (display_name, algorithm_type, ticker, initial_capital, status, created_at)"
            " VALUES (?, ?, ?, ?, 'running', ?)",
            (generate_display_name(symbol, algo_type, now=created), algo_type, symbol, capital,
             created.strftime(TIMESTAMP_FORMAT)),
        )
        return int(cur.lastrowid)


def stop_algorithm(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> bool:
    """Soft-delete a running card; True if this call stopped it, False if unknown or already stopped."""
    with _connection(conn) as c, atomic(c):
        cur = c.execute(
            "UPDATE algorithm_instances SET status = 'stopped', stopped_at = ? WHERE id = ? AND status = 'running'",
            (utc_now(), algo_id),
        )
        return cur.rowcount == 1


def get_algorithm(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> Optional[Dict[str, Any]]:
    with _connection(conn) as c:
        return _as_dict(c.execute("SELECT * FROM algorithm_instances WHERE id = ?", (algo_id,)).fetchone())


def get_all_algorithms(status: Optional[str] = None, *,
                       conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """All cards, or only those with ``status`` ('running' or 'stopped'), oldest first."""
    if status not in (None, "running", "stopped"):
        raise LedgerError(f"status must be 'running', 'stopped' or None, got {status!r}")
    with _connection(conn) as c:
        if status is None:
            rows = c.execute("SELECT * FROM algorithm_instances ORDER BY id").fetchall()
        else:
            rows = c.execute("SELECT * FROM algorithm_instances WHERE status = ? ORDER BY id", (status,)).fetchall()
    return [dict(r) for r in rows]


# --------------------------------------------------------------------------- transactions


def _insert_transaction(c: sqlite3.Connection, algo_id: int, side: str, shares: int, price: float,
                        timestamp: str) -> int:
    cur = c.execute(
        "INSERT INTO transactions (algorithm_id, type, shares, price, timestamp) VALUES (?, ?, ?, ?, ?)",
        (algo_id, side, shares, price, timestamp),
    )
    return int(cur.lastrowid)


def _record(algo_id: int, side: str, shares: int, price: float, timestamp: Optional[str],
            conn: Optional[sqlite3.Connection]) -> int:
    shares = _check_shares(shares)
    price = _check_price(price)
    with _connection(conn) as c, atomic(c):
        card = c.execute("SELECT status FROM algorithm_instances WHERE id = ?", (algo_id,)).fetchone()
        if card is None:
            raise LedgerError(f"algorithm {algo_id} does not exist")
        if card["status"] != "running":
            raise LedgerError(f"algorithm {algo_id} is stopped; it cannot trade")
        if side == "sell":
            held = get_position_totals(algo_id, conn=c)["shares"]
            if shares > held:
                raise LedgerError(f"algorithm {algo_id} holds {held} shares; cannot sell {shares}")
        return _insert_transaction(c, algo_id, side, shares, price, timestamp or utc_now())


def record_buy(algo_id: int, shares: int, price: float, *, timestamp: Optional[str] = None,
               conn: Optional[sqlite3.Connection] = None) -> int:
    """Record a filled buy on a running card; returns the transaction id."""
    return _record(algo_id, "buy", shares, price, timestamp, conn)


def record_sell(algo_id: int, shares: int, price: float, *, timestamp: Optional[str] = None,
                conn: Optional[sqlite3.Connection] = None) -> int:
    """Record a filled sell on a running card (never more than it holds); returns the transaction id."""
    return _record(algo_id, "sell", shares, price, timestamp, conn)


def get_transactions(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """A card's transactions, newest first (ties broken by id)."""
    with _connection(conn) as c:
        rows = c.execute(
            "SELECT * FROM transactions WHERE algorithm_id = ? ORDER BY timestamp DESC, id DESC", (algo_id,)
        ).fetchall()
    return [dict(r) for r in rows]


def get_transactions_by_card(algo_ids: Iterable[int], *,
                             conn: Optional[sqlite3.Connection] = None) -> Dict[int, List[Dict[str, Any]]]:
    """Each card's transactions, newest first, in one query (a minute reads every card's at once)."""
    return _rows_by_card("SELECT * FROM transactions WHERE algorithm_id IN ({ids})"
                         " ORDER BY algorithm_id, timestamp DESC, id DESC", algo_ids, conn)


def _rows_by_card(sql: str, algo_ids: Iterable[int], conn: Optional[sqlite3.Connection]
                  ) -> Dict[int, List[Dict[str, Any]]]:
    """``sql``'s rows grouped by card, for every card in ``algo_ids`` (an empty list for one with none)."""
    ids = sorted({int(i) for i in algo_ids})
    found: Dict[int, List[Dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        with _connection(conn) as c:  # one ? per id: only their count shapes the statement
            for row in c.execute(sql.format(ids=",".join("?" * len(ids))), ids):
                found[row["algorithm_id"]].append(dict(row))
    return found


def get_recent_transactions(algo_id: int, limit: int, *,
                            conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """A card's ``limit`` newest transactions, newest first (for display without reading them all)."""
    with _connection(conn) as c:
        rows = c.execute(
            "SELECT * FROM transactions WHERE algorithm_id = ? ORDER BY timestamp DESC, id DESC LIMIT ?",
            (algo_id, int(limit)),
        ).fetchall()
    return [dict(r) for r in rows]


_TOTALS_SQL = """
SELECT algorithm_id,
       COALESCE(SUM(CASE WHEN type = 'buy' THEN shares ELSE -shares END), 0) AS shares,
       COUNT(*) AS trade_count,
       COALESCE(SUM(CASE WHEN type = 'buy' THEN shares * price ELSE -(shares * price) END), 0.0) AS invested
FROM transactions
"""


_EFFECT_TOTALS_SQL = """
SELECT algorithm_id,
       COALESCE(SUM(share_change), 0) AS share_change,
       COALESCE(SUM(fractional_change), 0.0) AS fractional_change,
       COALESCE(SUM(cash), 0.0) AS cash
FROM corporate_action_effects
"""


def _totals(row: Optional[sqlite3.Row], effects: Optional[sqlite3.Row]) -> Dict[str, Any]:
    """Trades plus corporate actions: splits change shares, dividends come back as cash."""
    shares = int(row["shares"]) if row else 0
    invested = float(row["invested"]) if row else 0.0
    share_change = int(effects["share_change"]) if effects else 0
    fractional = round(float(effects["fractional_change"]), 9) if effects else 0.0
    dividends = float(effects["cash"]) if effects else 0.0
    return {"shares": shares + share_change, "trade_count": int(row["trade_count"]) if row else 0,
            "invested": invested - dividends, "fractional_shares": fractional + 0.0, "dividends": dividends}


def get_position_totals(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> Dict[str, Any]:
    """Shares held (whole, and a reverse split's fractional remainder), trade count and net invested
    cash (buys - sells - dividends received) of one card, aggregated in SQL."""
    with _connection(conn) as c:
        row = c.execute(_TOTALS_SQL + " WHERE algorithm_id = ?", (algo_id,)).fetchone()
        effects = c.execute(_EFFECT_TOTALS_SQL + " WHERE algorithm_id = ?", (algo_id,)).fetchone()
    return _totals(row, effects)


def get_all_position_totals(*, conn: Optional[sqlite3.Connection] = None) -> Dict[int, Dict[str, Any]]:
    """``get_position_totals`` for every card with transactions, in two grouped queries."""
    with _connection(conn) as c:
        rows = {int(r["algorithm_id"]): r for r in c.execute(_TOTALS_SQL + " GROUP BY algorithm_id")}
        effects = {int(r["algorithm_id"]): r for r in c.execute(_EFFECT_TOTALS_SQL + " GROUP BY algorithm_id")}
    return {card: _totals(rows.get(card), effects.get(card)) for card in sorted(set(rows) | set(effects))}


# --------------------------------------------------------------------------- order journal (net orders)
#
# One broker order per ticker per minute ("broker_orders") and its allocations to the cards
# ("order_allocations"). The intent is written before the order is sent; the fill, every card's
# transaction and the closing of the order in one transaction after.

OPEN_ORDER_STATUSES = ("pending", "submitted")


def get_ledger_id(*, conn: Optional[sqlite3.Connection] = None) -> str:
    """A short id of this ledger, made once: part of every client order id, so two ledgers trading
    one account never settle each other's orders."""
    with _connection(conn) as c, atomic(c):
        row = c.execute("SELECT value FROM system_config WHERE key = 'ledger_id'").fetchone()
        if row is not None:
            return row["value"]
        ledger_id = secrets.token_hex(3)
        c.execute("INSERT INTO system_config (key, value) VALUES ('ledger_id', ?)", (ledger_id,))
        return ledger_id


def journal_net_order(client_order_id: str, ticker: str, minute: str, side: Optional[str], shares: int,
                      cross_price: Optional[float], allocations: List[Dict[str, Any]], *,
                      conn: Optional[sqlite3.Connection] = None) -> bool:
    """Write one ticker's minute before anything is sent: the net order, every card's allocation,
    and the crosses (recorded at once, at ``cross_price``). False if that id is already journaled.

    Each allocation: ``algorithm_id``, ``kind`` ('order' | 'cross'), ``side``, ``shares``, ``reason``,
    ``liquidation``. A card that is no longer running is refused (LedgerError), except for a
    liquidation of a stopped card.
    """
    if side not in (None, "buy", "sell") or (side is None) != (shares == 0):
        raise LedgerError(f"a net order needs a side exactly when it has shares, got {side!r} {shares!r}")
    now = utc_now()
    with _connection(conn) as c, atomic(c):
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
    shares = _check_shares(part["shares"])
    card = c.execute("SELECT status FROM algorithm_instances WHERE id = ?", (card_id,)).fetchone()
    if card is None:
        raise LedgerError(f"algorithm {card_id} does not exist")
    if card["status"] != "running" and not (part.get("liquidation") and side == "sell"):
        raise LedgerError(f"algorithm {card_id} is no longer running; its {side} is not sent")
    tx_id = None
    if kind == "cross":
        price = _check_price(cross_price, "cross price")
        if side == "sell" and shares > get_position_totals(card_id, conn=c)["shares"]:
            raise LedgerError(f"algorithm {card_id} cannot sell {shares} shares it does not hold")
        tx_id = _insert_transaction(c, card_id, side, shares, price, crossed_at)
    c.execute(
        "INSERT INTO order_allocations (client_order_id, algorithm_id, kind, side, shares, reason, filled_shares,"
        " transaction_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (client_order_id, card_id, kind, side, shares, part.get("reason", ""), shares if tx_id else 0, tx_id))


def mark_order_submitted(client_order_id: str, broker_order_id: str, *,
                         conn: Optional[sqlite3.Connection] = None) -> None:
    """The broker acknowledged the order: from now on one missing look-up never closes it."""
    with _connection(conn) as c, atomic(c):
        c.execute(
            "UPDATE broker_orders SET status = 'submitted', broker_order_id = ?, missed_lookups = 0, updated_at = ?"
            " WHERE client_order_id = ? AND status = 'pending'",
            (broker_order_id, utc_now(), client_order_id),
        )


def record_order_fill(client_order_id: str, filled_shares: int, avg_price: Optional[float],
                      filled_at: Optional[str], split: Dict[int, int], *,
                      conn: Optional[sqlite3.Connection] = None) -> Dict[int, int]:
    """Record the net order's fill on every card of its side (``split``: card -> shares) and close
    the order, in one transaction; returns card -> transaction id.

    Exactly once: an order already closed returns its existing transactions and writes nothing.
    A zero fill closes the order as failed. Stopped cards are allowed: the broker already executed.
    """
    with _connection(conn) as c, atomic(c):
        order = c.execute("SELECT * FROM broker_orders WHERE client_order_id = ?", (client_order_id,)).fetchone()
        if order is None:
            raise LedgerError(f"no journaled order {client_order_id!r}")
        if order["status"] not in OPEN_ORDER_STATUSES:
            return _order_transactions(c, client_order_id)
        if filled_shares == 0:
            _close_order(c, client_order_id, "failed", 0, None, "broker filled nothing")
            return {}
        price = _check_price(avg_price, "fill price")
        parts = {int(r["algorithm_id"]): r for r in c.execute(
            "SELECT * FROM order_allocations WHERE client_order_id = ? AND kind = 'order'", (client_order_id,))}
        if sum(split.values()) != filled_shares or set(split) - set(parts) or \
                any(shares > parts[card]["shares"] or shares < 0 for card, shares in split.items()):
            raise LedgerError(f"order {client_order_id}: split {split} does not fit its fill of {filled_shares}")
        for card_id, shares in sorted(split.items()):
            if shares:
                tx_id = _insert_transaction(c, card_id, order["side"], shares, price, filled_at or utc_now())
                c.execute("UPDATE order_allocations SET filled_shares = ?, transaction_id = ?"
                          " WHERE client_order_id = ? AND algorithm_id = ? AND kind = 'order'",
                          (shares, tx_id, client_order_id, card_id))
        _close_order(c, client_order_id, "filled", filled_shares, price, None)
        return _order_transactions(c, client_order_id)


def mark_order_failed(client_order_id: str, error: str, *, conn: Optional[sqlite3.Connection] = None) -> None:
    """Close an open order that never executed (its crosses stay: they were never the broker's)."""
    with _connection(conn) as c, atomic(c):
        _close_order(c, client_order_id, "failed", 0, None, error)


def note_missed_lookup(client_order_id: str, *, conn: Optional[sqlite3.Connection] = None) -> int:
    """Count one look-up of an acknowledged order that the broker did not find; returns the count."""
    with _connection(conn) as c, atomic(c):
        c.execute("UPDATE broker_orders SET missed_lookups = missed_lookups + 1, updated_at = ?"
                  " WHERE client_order_id = ?", (utc_now(), client_order_id))
        row = c.execute("SELECT missed_lookups FROM broker_orders WHERE client_order_id = ?",
                        (client_order_id,)).fetchone()
    return int(row["missed_lookups"]) if row else 0


def _close_order(c: sqlite3.Connection, client_order_id: str, status: str, filled: int,
                 price: Optional[float], error: Optional[str]) -> None:
    c.execute(
        "UPDATE broker_orders SET status = ?, filled_shares = ?, filled_avg_price = ?, error = ?, updated_at = ?"
        " WHERE client_order_id = ? AND status IN ('pending', 'submitted')",
        (status, filled, price, error, utc_now(), client_order_id),
    )


def _order_transactions(c: sqlite3.Connection, client_order_id: str) -> Dict[int, int]:
    rows = c.execute("SELECT algorithm_id, transaction_id FROM order_allocations WHERE client_order_id = ?"
                     " AND kind = 'order' AND transaction_id IS NOT NULL", (client_order_id,)).fetchall()
    return {int(r["algorithm_id"]): int(r["transaction_id"]) for r in rows}


def get_open_orders(*, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Net orders still pending or submitted, oldest first, each with its 'order' allocations."""
    with _connection(conn) as c:
        rows = c.execute("SELECT * FROM broker_orders WHERE status IN ('pending', 'submitted')"
                         " ORDER BY created_at, rowid").fetchall()
        orders = [dict(r) for r in rows]
        for order in orders:
            order["allocations"] = [dict(a) for a in c.execute(
                "SELECT * FROM order_allocations WHERE client_order_id = ? AND kind = 'order' ORDER BY algorithm_id",
                (order["client_order_id"],))]
    return orders


def record_broker_count(algo_id: int, broker_shares: int, ticker_shares: int, price: float, *,
                        conn: Optional[sqlite3.Connection] = None) -> Optional[int]:
    """The owner accepts the broker's count for a ticker on one card: one buy or sell of the
    difference (``broker_shares - ticker_shares``, the cards' total) at ``price``, stopped cards
    included, never below zero shares. Returns the transaction id (None: nothing to change)."""
    difference = int(broker_shares) - int(ticker_shares)
    if difference == 0:
        return None
    price = _check_price(price)
    with _connection(conn) as c, atomic(c):
        if c.execute("SELECT 1 FROM algorithm_instances WHERE id = ?", (algo_id,)).fetchone() is None:
            raise LedgerError(f"algorithm {algo_id} does not exist")
        held = get_position_totals(algo_id, conn=c)["shares"]
        if held + difference < 0:
            raise LedgerError(f"algorithm {algo_id} holds {held} shares; it cannot give up {-difference}")
        last = c.execute("SELECT MAX(timestamp) FROM transactions WHERE algorithm_id = ?", (algo_id,)).fetchone()[0]
        when = max(utc_now(), last or "")  # never before the card's own trades
        return _insert_transaction(c, algo_id, "buy" if difference > 0 else "sell", abs(difference), price, when)


def get_allocations(client_order_id: str, *, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """One order's allocations ('order' and 'cross'), by card."""
    with _connection(conn) as c:
        rows = c.execute("SELECT * FROM order_allocations WHERE client_order_id = ? ORDER BY kind, algorithm_id",
                         (client_order_id,)).fetchall()
    return [dict(r) for r in rows]


def get_net_orders(ticker: Optional[str] = None, *,
                   conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Net orders (with crossed-only minutes), of one ticker or all, oldest first."""
    with _connection(conn) as c:
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
    with _connection(conn) as c:
        if algo_id is None:
            rows = c.execute(sql + " ORDER BY o.created_at, o.rowid, a.algorithm_id, a.kind").fetchall()
        else:
            rows = c.execute(sql + " WHERE a.algorithm_id = ? ORDER BY o.created_at, o.rowid, a.kind",
                             (algo_id,)).fetchall()
    return [dict(r) for r in rows]


# --------------------------------------------------------------------------- heartbeat


def write_heartbeat(component: str, payload: Dict[str, Any], *, now: Optional[str] = None,
                    conn: Optional[sqlite3.Connection] = None) -> None:
    """Replace a component's liveness report (a JSON object; callers keep secrets out of it)."""
    with _connection(conn) as c, atomic(c):
        c.execute(
            "INSERT INTO heartbeat (component, updated_at, payload) VALUES (?, ?, ?) "
            "ON CONFLICT(component) DO UPDATE SET updated_at = excluded.updated_at, payload = excluded.payload",
            (component, now or utc_now(), json.dumps(payload, sort_keys=True)),
        )


def get_heartbeat(component: str, *, conn: Optional[sqlite3.Connection] = None) -> Optional[Dict[str, Any]]:
    with _connection(conn) as c:
        row = c.execute("SELECT * FROM heartbeat WHERE component = ?", (component,)).fetchone()
    if row is None:
        return None
    return {"component": row["component"], "updated_at": row["updated_at"], "payload": json.loads(row["payload"])}


# --------------------------------------------------------------------------- card parameters


def set_algorithm_parameters(algo_id: int, values: Dict[str, Any], *,
                             conn: Optional[sqlite3.Connection] = None) -> None:
    """Store the parameter values a card was created with (checked by the caller against the declaration)."""
    rows = []
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise LedgerError(f"parameter name must be a non-empty string, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or \
                (isinstance(value, float) and not math.isfinite(value)):
            raise LedgerError(f"parameter {name!r} must be a number or a string, got {value!r}")
        rows.append((algo_id, name, json.dumps(value)))
    with _connection(conn) as c, atomic(c):
        c.executemany("INSERT INTO algorithm_parameters (algorithm_id, name, value) VALUES (?, ?, ?)", rows)


def get_algorithm_parameters(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> Dict[str, Any]:
    """``{name: value}`` a card was created with ({} for a card without parameters)."""
    with _connection(conn) as c:
        rows = c.execute("SELECT name, value FROM algorithm_parameters WHERE algorithm_id = ? ORDER BY rowid",
                         (algo_id,)).fetchall()
    return {row["name"]: json.loads(row["value"]) for row in rows}


def get_all_algorithm_parameters(*, conn: Optional[sqlite3.Connection] = None) -> Dict[int, Dict[str, Any]]:
    """``{card id: {name: value}}`` for every card with stored parameters, in one query."""
    with _connection(conn) as c:
        rows = c.execute("SELECT algorithm_id, name, value FROM algorithm_parameters ORDER BY rowid").fetchall()
    out: Dict[int, Dict[str, Any]] = {}
    for row in rows:
        out.setdefault(row["algorithm_id"], {})[row["name"]] = json.loads(row["value"])
    return out


# --------------------------------------------------------------------------- card decisions (detail view)

DECISIONS_KEPT = 50  # newest rows kept per card and kind ('decision', 'refused', 'error')
DECISION_KINDS = ("decision", "refused", "error")


def record_decisions(rows: List[Dict[str, Any]], *, keep: int = DECISIONS_KEPT,
                     conn: Optional[sqlite3.Connection] = None) -> None:
    """Store one minute's decisions of several cards and trim each card's older rows, in one transaction.

    A row: ``algorithm_id``, ``minute``, ``kind``, ``action``, ``shares``, ``requested_action``,
    ``requested_shares``, ``reason``, ``price``. Rows of unknown cards are skipped.
    """
    now = utc_now()
    with _connection(conn) as c, atomic(c):
        known = {r["id"] for r in c.execute("SELECT id FROM algorithm_instances")}
        touched = set()
        for row in rows:
            if row["algorithm_id"] not in known or row["kind"] not in DECISION_KINDS:
                continue
            c.execute(
                "INSERT INTO card_decisions (algorithm_id, minute, kind, action, shares, requested_action,"
                " requested_shares, reason, price, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row["algorithm_id"], row["minute"], row["kind"], row.get("action", "hold"),
                 int(row.get("shares", 0)), row.get("requested_action"), row.get("requested_shares"),
                 str(row.get("reason") or ""), row.get("price"), now),
            )
            touched.add((row["algorithm_id"], row["kind"]))
        for algo_id, kind in touched:
            c.execute(
                "DELETE FROM card_decisions WHERE algorithm_id = ? AND kind = ? AND id NOT IN"
                " (SELECT id FROM card_decisions WHERE algorithm_id = ? AND kind = ? ORDER BY id DESC LIMIT ?)",
                (algo_id, kind, algo_id, kind, int(keep)),
            )


def get_decisions(algo_id: int, *, kind: Optional[str] = None, limit: int = DECISIONS_KEPT,
                  conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """A card's stored decisions, newest first, of every kind or of one."""
    with _connection(conn) as c:
        if kind is None:
            rows = c.execute("SELECT * FROM card_decisions WHERE algorithm_id = ? ORDER BY id DESC LIMIT ?",
                             (algo_id, int(limit))).fetchall()
        else:
            rows = c.execute("SELECT * FROM card_decisions WHERE algorithm_id = ? AND kind = ?"
                             " ORDER BY id DESC LIMIT ?", (algo_id, kind, int(limit))).fetchall()
    return [dict(r) for r in rows]


# --------------------------------------------------------------------------- history, daily P&L and exports


def get_transactions_between(algo_id: Optional[int] = None, start: Optional[str] = None, end: Optional[str] = None,
                             *, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Fills oldest first with their card's ticker and the broker order id that produced them.

    ``start`` inclusive, ``end`` exclusive (UTC strings); either may be None. One card or all.
    """
    sql = ("SELECT t.id, t.algorithm_id, a.ticker, a.display_name, t.type, t.shares, t.price, t.timestamp,"
           " CASE WHEN oa.kind = 'order' THEN j.broker_order_id END AS broker_order_id, j.client_order_id"
           " FROM transactions t JOIN algorithm_instances a ON a.id = t.algorithm_id"
           " LEFT JOIN order_allocations oa ON oa.transaction_id = t.id"
           " LEFT JOIN broker_orders j ON j.client_order_id = oa.client_order_id WHERE 1 = 1")
    params: list = []
    if algo_id is not None:
        sql += " AND t.algorithm_id = ?"
        params.append(algo_id)
    if start is not None:
        sql += " AND t.timestamp >= ?"
        params.append(start)
    if end is not None:
        sql += " AND t.timestamp < ?"
        params.append(end)
    with _connection(conn) as c:
        rows = c.execute(sql + " ORDER BY t.timestamp, t.id", params).fetchall()
    return [dict(r) for r in rows]


# --------------------------------------------------------------------------- corporate actions

CORPORATE_ACTION_KINDS = ("forward_split", "reverse_split", "cash_dividend")
_NINE_PLACES = Decimal("0.000000001")  # Alpaca reports fractional quantities to 9 decimals
_CENT = Decimal("0.01")


def position_at(algo_id: int, moment: str, *, conn: Optional[sqlite3.Connection] = None) -> Decimal:
    """Shares (whole plus fractional) a card held just before ``moment``: trades and earlier actions."""
    with _connection(conn) as c:
        traded = c.execute(
            "SELECT COALESCE(SUM(CASE WHEN type = 'buy' THEN shares ELSE -shares END), 0) FROM transactions"
            " WHERE algorithm_id = ? AND timestamp < ?", (algo_id, moment)).fetchone()[0]
        changed = c.execute(
            "SELECT COALESCE(SUM(share_change), 0), COALESCE(SUM(fractional_change), 0.0)"
            " FROM corporate_action_effects WHERE algorithm_id = ? AND effective_at < ?", (algo_id, moment)).fetchone()
    fractional = Decimal(repr(round(float(changed[1]), 9))).quantize(_NINE_PLACES)
    return Decimal(int(traded) + int(changed[0])) + fractional


def corporate_action_effect(kind: str, held: Decimal, *, old_rate: Optional[float] = None,
                            new_rate: Optional[float] = None, rate: Optional[float] = None) -> Dict[str, Any]:
    """What one action does to ``held`` shares: the broker's arithmetic (qty x new/old to 9 decimals,
    whole shares and the fractional remainder kept; dividend = qty x rate in cents)."""
    if kind not in CORPORATE_ACTION_KINDS:
        raise LedgerError(f"unknown corporate action kind {kind!r}")
    whole = int(held)
    if kind == "cash_dividend":
        per_share = Decimal(repr(_check_price(rate, "dividend rate")))
        cash = (held * per_share).quantize(_CENT, rounding=ROUND_HALF_UP)
        return {"share_change": 0, "fractional_change": 0.0, "cash": float(cash)}
    ratio = Decimal(repr(_check_price(new_rate, "new_rate"))) / Decimal(repr(_check_price(old_rate, "old_rate")))
    after = (held * ratio).quantize(_NINE_PLACES)
    whole_after = int(after)
    return {"share_change": whole_after - whole,
            "fractional_change": float((after - whole_after) - (held - whole)), "cash": 0.0}


def record_corporate_action(action: Dict[str, Any], *, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Apply one corporate action to every card holding its ticker at the ex-date open, once.

    ``action``: id, symbol, kind, ex_date, effective_at (UTC open of the ex-date) and old_rate/new_rate
    (splits) or rate (dividends). Holdings are taken from trades before ``effective_at``, so the
    result is the same whenever it is recorded; a (card, action) pair already recorded is left
    alone. Returns the rows written now.
    """
    symbol = normalize_ticker(action["symbol"])
    written = []
    with _connection(conn) as c, atomic(c):
        cards = c.execute("SELECT id FROM algorithm_instances WHERE ticker = ? ORDER BY id", (symbol,)).fetchall()
        for card in cards:
            held = position_at(card["id"], action["effective_at"], conn=c)
            if held <= 0:
                continue
            effect = corporate_action_effect(action["kind"], held, old_rate=action.get("old_rate"),
                                             new_rate=action.get("new_rate"), rate=action.get("rate"))
            row = {"algorithm_id": card["id"], "action_id": str(action["id"]), "ticker": symbol,
                   "kind": action["kind"], "ex_date": action["ex_date"], "effective_at": action["effective_at"],
                   "old_rate": action.get("old_rate"), "new_rate": action.get("new_rate"), "rate": action.get("rate"),
                   "shares_before": float(held), **effect, "recorded_at": utc_now()}
            cur = c.execute(
                "INSERT OR IGNORE INTO corporate_action_effects (algorithm_id, action_id, ticker, kind, ex_date,"
                " effective_at, old_rate, new_rate, rate, shares_before, share_change, fractional_change, cash,"
                " recorded_at) VALUES (:algorithm_id, :action_id, :ticker, :kind, :ex_date, :effective_at,"
                " :old_rate, :new_rate, :rate, :shares_before, :share_change, :fractional_change, :cash,"
                " :recorded_at)", row)
            if cur.rowcount == 1:
                written.append(row)
    return written


def get_corporate_action_effects(algo_id: Optional[int], *,
                                 conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """A card's corporate actions (every card's with None), oldest first."""
    with _connection(conn) as c:
        if algo_id is None:
            rows = c.execute("SELECT * FROM corporate_action_effects ORDER BY effective_at, id").fetchall()
        else:
            rows = c.execute("SELECT * FROM corporate_action_effects WHERE algorithm_id = ?"
                             " ORDER BY effective_at, id", (algo_id,)).fetchall()
    return [dict(r) for r in rows]


def get_corporate_action_effects_by_card(algo_ids: Iterable[int], *, conn: Optional[sqlite3.Connection] = None
                                         ) -> Dict[int, List[Dict[str, Any]]]:
    """Each card's corporate actions, oldest first, in one query."""
    return _rows_by_card("SELECT * FROM corporate_action_effects WHERE algorithm_id IN ({ids})"
                         " ORDER BY algorithm_id, effective_at, id", algo_ids, conn)


# --------------------------------------------------------------------------- wall: change keys and daily totals


def get_ledger_versions(*, conn: Optional[sqlite3.Connection] = None) -> Dict[int, tuple]:
    """Per card, a key that changes whenever its fills or corporate actions change: (count, newest id, ...)."""
    with _connection(conn) as c:
        trades = {r[0]: (r[1], r[2]) for r in c.execute(
            "SELECT algorithm_id, COUNT(*), MAX(id) FROM transactions GROUP BY algorithm_id")}
        effects = {r[0]: (r[1], r[2]) for r in c.execute(
            "SELECT algorithm_id, COUNT(*), MAX(id) FROM corporate_action_effects GROUP BY algorithm_id")}
    return {card: trades.get(card, (0, None)) + effects.get(card, (0, None)) for card in set(trades) | set(effects)}


def get_daily_trade_totals(*, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Per card and UTC day: net shares bought, net cash invested, and the day's last fill price."""
    with _connection(conn) as c:
        rows = c.execute(
            "SELECT algorithm_id, substr(timestamp, 1, 10) AS day,"
            " SUM(CASE WHEN type = 'buy' THEN shares ELSE -shares END) AS shares,"
            " SUM(CASE WHEN type = 'buy' THEN shares * price ELSE -(shares * price) END) AS invested,"
            " MAX(timestamp) AS last_at, price AS last_price"  # SQLite: the bare column comes from the MAX() row
            " FROM transactions GROUP BY algorithm_id, day ORDER BY algorithm_id, day").fetchall()
    return [dict(r) for r in rows]


def get_recent_fills(algo_id: int, limit: int, *, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """A card's ``limit`` newest fills, newest first, each with the broker order id that produced it."""
    with _connection(conn) as c:
        rows = c.execute(
            "SELECT t.*, CASE WHEN oa.kind = 'order' THEN j.broker_order_id END AS broker_order_id"
            " FROM transactions t LEFT JOIN order_allocations oa ON oa.transaction_id = t.id"
            " LEFT JOIN broker_orders j ON j.client_order_id = oa.client_order_id"
            " WHERE t.algorithm_id = ? ORDER BY t.timestamp DESC, t.id DESC LIMIT ?", (algo_id, int(limit))).fetchall()
    return [dict(r) for r in rows]
