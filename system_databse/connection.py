"""system.db's connection, transactions and the checks every ledger module shares.

Every public ledger function takes an optional ``conn``; without one it opens a connection to the
database named by ``AUTOTRADER_SYSTEM_DB`` (default: ``system.db`` beside this package) and closes
it. Writes run inside ``atomic()`` (``BEGIN IMMEDIATE`` ... ``COMMIT``, rollback on any error).

The ledger never reads a clock for what it records: every stamping function (a card created or
stopped, a fill, a cross, the order journal, a decision, a corporate action) takes its stamp from
the caller, as a keyword, and every production caller passes the trading clock's
(``shared.clock``; tests/test_one_clock.py checks both). A call without one, from a shell or a
test, is stamped by the computer's clock (``ledger_stamp``), which is the trading clock only
under ``AUTOTRADER_CLOCK=system``.
"""
from __future__ import annotations

import math
import os
import re
import sqlite3
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional

from shared.clock import computer_stamp
from shared.config import DatabasePaths
from shared.shares import from_nano, to_nano
from shared.sqlite import open_database

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TICKER_PATTERN = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
STAMP_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
NINE_PLACES = Decimal("0.000000001")


class LedgerError(ValueError):
    """A write the ledger refuses: it would make the history impossible or wrong."""


def default_db_path() -> Path:
    """system.db's path: ``AUTOTRADER_SYSTEM_DB`` if set, else beside this file (``shared.config``)."""
    return DatabasePaths.from_env(os.environ).system_db


def ledger_stamp(at: Optional[str]) -> str:
    """The stamp a caller gave (checked: ``YYYY-MM-DDTHH:MM:SSZ``, a real time), or for a call without
    one (a shell, a test) the computer's clock; production callers always give the trading clock's."""
    if at is None:
        return computer_stamp()
    if not isinstance(at, str) or not STAMP_PATTERN.match(at):
        raise LedgerError(f"a stamp must be a UTC time YYYY-MM-DDTHH:MM:SSZ, got {at!r}")
    try:
        datetime.strptime(at, TIMESTAMP_FORMAT)
    except ValueError:
        raise LedgerError(f"a stamp must be a UTC time YYYY-MM-DDTHH:MM:SSZ, got {at!r}") from None
    return at



def get_connection(db_path: str | Path | None = None, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection with dict-like rows, foreign keys on and a busy timeout (``shared.sqlite``).

    Autocommit mode: reads see the latest commit, and writes group themselves with ``atomic``.
    ``read_only`` opens the file with ``mode=ro`` so a reader can never take a write lock. Every
    commit is fsynced: a journal intent must be on disk before its order is sent.
    """
    return open_database(Path(db_path) if db_path else default_db_path(), what="system database",
                         create_with="python -m system_databse.create_system_db", durability="FULL",
                         read_only=read_only)


@contextmanager
def use_connection(conn: Optional[sqlite3.Connection]) -> Iterator[sqlite3.Connection]:
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


def as_dict(row: Optional[sqlite3.Row]) -> Optional[Dict[str, Any]]:
    return dict(row) if row is not None else None



def check_shares(shares: Any) -> int:
    if isinstance(shares, bool) or not isinstance(shares, int) or shares <= 0:
        raise LedgerError(f"shares must be a positive integer, got {shares!r}")
    return shares


def check_quantity(shares: Any, what: str = "shares") -> int | float:
    """A positive quantity of shares with nine decimals at most (the broker's precision), returned
    as ``shared.shares`` shows it: an int when whole, else a float."""
    if not isinstance(shares, bool) and isinstance(shares, (int, float, Decimal)):
        exact = Decimal(str(shares))
        if exact.is_finite() and exact > 0 and exact == exact.quantize(NINE_PLACES):
            return from_nano(to_nano(exact))
    raise LedgerError(f"{what} must be a positive number of shares, 9 decimals at most, got {shares!r}")


def check_price(price: Any, what: str = "price") -> float:
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



def rows_by_card(sql: str, algo_ids: Iterable[int], conn: Optional[sqlite3.Connection]
                  ) -> Dict[int, List[Dict[str, Any]]]:
    """``sql``'s rows grouped by card, for every card in ``algo_ids`` (an empty list for one with none)."""
    ids = sorted({int(i) for i in algo_ids})
    found: Dict[int, List[Dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        with use_connection(conn) as c:  # one ? per id: only their count shapes the statement
            for row in c.execute(sql.format(ids=",".join("?" * len(ids))), ids):
                found[row["algorithm_id"]].append(dict(row))
    return found
