"""Cards: created, stopped, listed, and the parameters each was created with."""
from __future__ import annotations

import json
import math
import sqlite3
from datetime import datetime
from typing import Any, Dict, List, Optional

from shared.clock import stamp
from system_databse.connection import (LedgerError, as_dict, atomic, check_price, ledger_stamp, use_connection)
from system_databse.connection import normalize_ticker


def generate_display_name(ticker: str, algo_type: str, *, now: datetime | str | None = None) -> str:
    """``NVDA_sma_crossover_20240604_143022``, stamped in UTC at ``now`` (the card's creation: a stamp
    or an aware datetime; the computer's clock without one)."""
    created = ledger_stamp(now) if now is None or isinstance(now, str) else stamp(now)
    return f"{ticker}_{algo_type}_{created[:10].replace('-', '')}_{created[11:19].replace(':', '')}"


def create_algorithm(ticker: str, algo_type: str, initial_capital: float, *, created_at: Optional[str] = None,
                     conn: Optional[sqlite3.Connection] = None) -> int:
    """Insert a running card and return its id; ``created_at`` is the trading clock's stamp
    (``connection.ledger_stamp``: the computer's clock for a call without one)."""
    symbol = normalize_ticker(ticker)
    if not isinstance(algo_type, str) or not algo_type.strip():
        raise LedgerError("algorithm type must be a non-empty string")
    capital = check_price(initial_capital, "initial_capital")
    created = ledger_stamp(created_at)
    with use_connection(conn) as c, atomic(c):
        cur = c.execute(
            "INSERT INTO algorithm_instances (display_name, algorithm_type, ticker, initial_capital, status, created_at)"
            " VALUES (?, ?, ?, ?, 'running', ?)",
            (generate_display_name(symbol, algo_type, now=created), algo_type, symbol, capital, created),
        )
        return int(cur.lastrowid)


def stop_algorithm(algo_id: int, *, stopped_at: Optional[str] = None,
                   conn: Optional[sqlite3.Connection] = None) -> bool:
    """Soft-delete a running card; True if this call stopped it, False if unknown or already stopped.
    ``stopped_at`` is the trading clock's stamp (the computer's clock for a call without one)."""
    stopped = ledger_stamp(stopped_at)
    with use_connection(conn) as c, atomic(c):
        cur = c.execute(
            "UPDATE algorithm_instances SET status = 'stopped', stopped_at = ? WHERE id = ? AND status = 'running'",
            (stopped, algo_id),
        )
        return cur.rowcount == 1


def get_algorithm(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> Optional[Dict[str, Any]]:
    with use_connection(conn) as c:
        return as_dict(c.execute("SELECT * FROM algorithm_instances WHERE id = ?", (algo_id,)).fetchone())


def get_all_algorithms(status: Optional[str] = None, *,
                       conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """All cards, or only those with ``status`` ('running' or 'stopped'), oldest first."""
    if status not in (None, "running", "stopped"):
        raise LedgerError(f"status must be 'running', 'stopped' or None, got {status!r}")
    with use_connection(conn) as c:
        if status is None:
            rows = c.execute("SELECT * FROM algorithm_instances ORDER BY id").fetchall()
        else:
            rows = c.execute("SELECT * FROM algorithm_instances WHERE status = ? ORDER BY id", (status,)).fetchall()
    return [dict(r) for r in rows]



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
    with use_connection(conn) as c, atomic(c):
        c.executemany("INSERT INTO algorithm_parameters (algorithm_id, name, value) VALUES (?, ?, ?)", rows)


def get_algorithm_parameters(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> Dict[str, Any]:
    """``{name: value}`` a card was created with ({} for a card without parameters)."""
    with use_connection(conn) as c:
        rows = c.execute("SELECT name, value FROM algorithm_parameters WHERE algorithm_id = ? ORDER BY rowid",
                         (algo_id,)).fetchall()
    return {row["name"]: json.loads(row["value"]) for row in rows}


def get_all_algorithm_parameters(*, conn: Optional[sqlite3.Connection] = None) -> Dict[int, Dict[str, Any]]:
    """``{card id: {name: value}}`` for every card with stored parameters, in one query."""
    with use_connection(conn) as c:
        rows = c.execute("SELECT algorithm_id, name, value FROM algorithm_parameters ORDER BY rowid").fetchall()
    out: Dict[int, Dict[str, Any]] = {}
    for row in rows:
        out.setdefault(row["algorithm_id"], {})[row["name"]] = json.loads(row["value"])
    return out
