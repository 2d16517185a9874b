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
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

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
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


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


def get_position_totals(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> Dict[str, Any]:
    """Shares held, trade count and net invested cash of one card, aggregated in SQL."""
    with _connection(conn) as c:
        row = c.execute(_TOTALS_SQL + " WHERE algorithm_id = ?", (algo_id,)).fetchone()
    return {"shares": int(row["shares"]), "trade_count": int(row["trade_count"]), "invested": float(row["invested"])}


def get_all_position_totals(*, conn: Optional[sqlite3.Connection] = None) -> Dict[int, Dict[str, Any]]:
    """``get_position_totals`` for every card with transactions, in one grouped query."""
    with _connection(conn) as c:
        rows = c.execute(_TOTALS_SQL + " GROUP BY algorithm_id").fetchall()
    return {
        int(r["algorithm_id"]): {"shares": int(r["shares"]), "trade_count": int(r["trade_count"]),
                                 "invested": float(r["invested"])}
        for r in rows
    }


# --------------------------------------------------------------------------- order journal


def journal_intent(algo_id: int, client_order_id: str, side: str, shares: int, reason: str = "", *,
                   conn: Optional[sqlite3.Connection] = None) -> bool:
    """Write the intent to trade before the order is sent; False if that id is already journaled."""
    if side not in ("buy", "sell"):
        raise LedgerError(f"side must be 'buy' or 'sell', got {side!r}")
    shares = _check_shares(shares)
    now = utc_now()
    with _connection(conn) as c, atomic(c):
        if c.execute("SELECT 1 FROM algorithm_instances WHERE id = ?", (algo_id,)).fetchone() is None:
            raise LedgerError(f"algorithm {algo_id} does not exist")
        cur = c.execute(
            "INSERT OR IGNORE INTO order_journal (client_order_id, algorithm_id, side, shares, reason, status,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            (client_order_id, algo_id, side, shares, reason, now, now),
        )
        return cur.rowcount == 1


def mark_order_submitted(client_order_id: str, broker_order_id: str, *,
                         conn: Optional[sqlite3.Connection] = None) -> None:
    with _connection(conn) as c, atomic(c):
        c.execute(
            "UPDATE order_journal SET status = 'submitted', broker_order_id = ?, updated_at = ?"
            " WHERE client_order_id = ? AND status = 'pending'",
            (broker_order_id, utc_now(), client_order_id),
        )


def record_order_fill(client_order_id: str, filled_shares: int, avg_price: Optional[float],
                      filled_at: Optional[str] = None, *, conn: Optional[sqlite3.Connection] = None) -> Optional[int]:
    """Record what the broker filled for a journaled order and close the entry, in one transaction.

    Exactly once: an entry already closed returns its existing transaction id and writes nothing.
    A zero fill closes the entry as failed. Stopped cards are allowed here, because the broker
    already executed the order (a liquidation, or a fill that landed while the card was stopped).
    """
    with _connection(conn) as c, atomic(c):
        entry = c.execute("SELECT * FROM order_journal WHERE client_order_id = ?", (client_order_id,)).fetchone()
        if entry is None:
            raise LedgerError(f"no journaled order {client_order_id!r}")
        if entry["status"] in ("filled", "failed"):
            return entry["transaction_id"]
        if filled_shares == 0:
            _close_order(c, client_order_id, "failed", 0, None, None, "broker filled nothing")
            return None
        shares = _check_shares(filled_shares)
        price = _check_price(avg_price, "fill price")
        tx_id = _insert_transaction(c, entry["algorithm_id"], entry["side"], shares, price, filled_at or utc_now())
        _close_order(c, client_order_id, "filled", shares, price, tx_id, None)
        return tx_id


def mark_order_failed(client_order_id: str, error: str, *, conn: Optional[sqlite3.Connection] = None) -> None:
    """Close an open entry whose order never executed."""
    with _connection(conn) as c, atomic(c):
        _close_order(c, client_order_id, "failed", 0, None, None, error)


def _close_order(c: sqlite3.Connection, client_order_id: str, status: str, filled: int,
                 price: Optional[float], tx_id: Optional[int], error: Optional[str]) -> None:
    c.execute(
        "UPDATE order_journal SET status = ?, filled_shares = ?, filled_avg_price = ?, transaction_id = ?,"
        " error = ?, updated_at = ? WHERE client_order_id = ? AND status IN ('pending', 'submitted')",
        (status, filled, price, tx_id, error, utc_now(), client_order_id),
    )


def get_open_orders(*, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Journal entries still pending or submitted, oldest first: the ones to reconcile."""
    with _connection(conn) as c:
        rows = c.execute(
            "SELECT * FROM order_journal WHERE status IN ('pending', 'submitted') ORDER BY created_at, rowid"
        ).fetchall()
    return [dict(r) for r in rows]


def get_orders(algo_id: Optional[int] = None, *, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Journal entries, of one card or all, oldest first."""
    with _connection(conn) as c:
        if algo_id is None:
            rows = c.execute("SELECT * FROM order_journal ORDER BY created_at, rowid").fetchall()
        else:
            rows = c.execute("SELECT * FROM order_journal WHERE algorithm_id = ? ORDER BY created_at, rowid",
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
