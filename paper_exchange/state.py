"""The account on disk: a small SQLite file the exchange writes before it answers.

Every change of the books (an order booked, filled, expired or canceled; cash and positions
moved) is written in one transaction with ``synchronous=FULL`` while the broker still holds its
lock, so nothing a client was told can be lost to SIGKILL or a power cut. The simulated clock is
saved as a lease a little ahead of now: after a restart the clock resumes at the lease, never
before a time some client may already have seen.

Orders are stored as tagged JSON of their dataclass fields, so new fields need no migration.
Monotonic deadlines (fill delay, partial-fill hold) are stored as wall-clock times and turned
back into monotonic ones on load.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Optional

from .quantities import whole_if_possible

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    account_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    initial_cash TEXT NOT NULL,
    cash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    clock_lease TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    symbol TEXT PRIMARY KEY,
    qty INTEGER NOT NULL,
    cost_basis TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS corporate_actions (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    applied_at TEXT
);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty INTEGER NOT NULL,
    price TEXT NOT NULL,
    at TEXT NOT NULL
);
"""
MONOTONIC_FIELDS = ("ready_real", "partial_until_real")


@dataclass
class Saved:
    """What a previous run left: the account, its orders and positions, and the clock lease."""

    account_id: str
    created_at: datetime
    initial_cash: Decimal
    cash: Decimal
    seed: int
    clock_lease: datetime
    orders: list[dict]
    positions: list[tuple[str, int, Decimal]]


@dataclass(frozen=True)
class Fill:
    order_id: str
    symbol: str
    side: str
    qty: int
    price: Decimal
    at: datetime


class Store:
    """One SQLite file; every method is one transaction. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # owner-only: it holds the account (SQLite gives -wal/-shm the same mode)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            self._conn.execute(f"PRAGMA {pragma}")
        self._conn.executescript(SCHEMA)

    @staticmethod
    def reset(path: Path) -> None:
        """Remove a previous account on purpose (``--reset``)."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ---- reading -----------------------------------------------------------------------------
    def load(self) -> Optional[Saved]:
        with self._lock:
            row = self._conn.execute("SELECT account_id, created_at, initial_cash, cash, seed, clock_lease "
                                     "FROM account WHERE id = 1").fetchone()
            if row is None:
                return None
            bodies = [r[0] for r in self._conn.execute("SELECT body FROM orders ORDER BY created_at, rowid")]
            positions = [(s, _quantity(q), Decimal(c)) for s, q, c in
                         self._conn.execute("SELECT symbol, qty, cost_basis FROM positions ORDER BY symbol")]
        return Saved(row[0], _parse(row[1]), Decimal(row[2]), Decimal(row[3]), int(row[4]), _parse(row[5]),
                     [_order_fields(body) for body in bodies], positions)

    def fills(self) -> list[Fill]:
        with self._lock:
            rows = self._conn.execute("SELECT order_id, symbol, side, qty, price, at FROM fills ORDER BY seq").fetchall()
        # qty: whole shares, or a reverse split's fraction sold (stored as text, read back exactly)
        return [Fill(o, s, d, whole_if_possible(Decimal(str(q))), Decimal(p), _parse(a)) for o, s, d, q, p, a in rows]

    # ---- writing -----------------------------------------------------------------------------
    def create_account(self, account_id: str, created_at: datetime, initial_cash: Decimal, seed: int,
                       clock_lease: datetime) -> None:
        with self._transaction() as conn:
            conn.execute("INSERT INTO account (id, account_id, created_at, initial_cash, cash, seed, clock_lease) "
                         "VALUES (1, ?, ?, ?, ?, ?, ?)",
                         (account_id, _iso(created_at), str(initial_cash), str(initial_cash), seed, _iso(clock_lease)))

    def save_books(self, cash: Decimal, orders: Iterable[Any], positions: Iterable[tuple[str, int, Decimal]],
                   fills: Iterable[Fill], applied_actions: Iterable[tuple[str, str]] = ()) -> None:
        """Changed orders, all positions, cash, new fills and corporate actions just applied, in one
        durable transaction (so a split is never applied twice, nor lost)."""
        with self._transaction() as conn:
            conn.execute("UPDATE account SET cash = ? WHERE id = 1", (str(cash),))
            conn.executemany("INSERT INTO orders (id, client_order_id, created_at, body) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                             [(o.id, o.client_order_id, _iso(o.created_at), _order_body(o)) for o in orders])
            conn.execute("DELETE FROM positions")
            conn.executemany("INSERT INTO positions (symbol, qty, cost_basis) VALUES (?, ?, ?)",
                             [(s, str(q), str(c)) for s, q, c in positions])
            conn.executemany("UPDATE corporate_actions SET applied_at = ? WHERE id = ?",
                             [(at, action_id) for action_id, at in applied_actions])
            conn.executemany("INSERT INTO fills (order_id, symbol, side, qty, price, at) VALUES (?, ?, ?, ?, ?, ?)",
                             [(f.order_id, f.symbol, f.side, str(f.qty), str(f.price), _iso(f.at)) for f in fills])

    def save_corporate_action(self, action_id: str, spec: dict) -> None:
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO corporate_actions (id, spec) VALUES (?, ?)",
                         (action_id, json.dumps(spec, sort_keys=True)))

    def corporate_actions(self) -> list[tuple[dict, Optional[str]]]:
        """Every scheduled split or dividend (as scheduled) and when it was applied, if it was."""
        with self._lock:
            rows = self._conn.execute("SELECT spec, applied_at FROM corporate_actions ORDER BY rowid").fetchall()
        return [(json.loads(spec), applied_at) for spec, applied_at in rows]

    def save_clock_lease(self, lease: datetime) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE account SET clock_lease = ? WHERE id = 1", (_iso(lease),))

    def _transaction(self):
        return _Transaction(self._conn, self._lock)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT under the store's lock; ROLLBACK on any error."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock) -> None:
        self._conn, self._lock = conn, lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._conn

    def __exit__(self, kind, *_) -> None:
        try:
            self._conn.execute("ROLLBACK" if kind else "COMMIT")
        finally:
            self._lock.release()


# ---- encoding ----------------------------------------------------------------------------------
def _quantity(stored: Any) -> int | Decimal:
    """A position's quantity: whole shares as int, a reverse split's remainder as a 9-decimal Decimal."""
    value = Decimal(str(stored)).quantize(Decimal("0.000000001"))
    return int(value) if value == value.to_integral_value() else value


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _order_body(order: Any) -> str:
    fields = {f.name: getattr(order, f.name) for f in dataclasses.fields(order)}
    for name in MONOTONIC_FIELDS:
        if fields.get(name) is not None:
            fields[name] = {"wall": time.time() + (fields[name] - time.monotonic())}
    return json.dumps(_encode(fields))


def _order_fields(body: str) -> dict:
    fields = _decode(json.loads(body))
    for name in MONOTONIC_FIELDS:
        if isinstance(fields.get(name), dict):
            fields[name] = time.monotonic() + max(fields[name]["wall"] - time.time(), 0.0)
    return fields


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if dataclasses.is_dataclass(value):
        return {"$obj": {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "$dt" in value:
            return datetime.fromisoformat(value["$dt"])
        if "$dec" in value:
            return Decimal(value["$dec"])
        if "$tuple" in value:
            return tuple(_decode(v) for v in value["$tuple"])
        if "$obj" in value:
            return {k: _decode(v) for k, v in value["$obj"].items()}
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value
