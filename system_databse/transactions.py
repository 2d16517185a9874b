"""A card's fills and what they add up to (shares, trade count, net invested), and the reads of
them the wall, the history and the exports make."""
from __future__ import annotations

import sqlite3
from typing import Any, Dict, Iterable, List, Optional

from system_databse.connection import (LedgerError, atomic, check_price, check_shares, ledger_stamp, rows_by_card,
                                        use_connection)


def insert_transaction(c: sqlite3.Connection, algo_id: int, side: str, shares: int, price: float,
                        timestamp: str) -> int:
    cur = c.execute(
        "INSERT INTO transactions (algorithm_id, type, shares, price, timestamp) VALUES (?, ?, ?, ?, ?)",
        (algo_id, side, shares, price, timestamp),
    )
    return int(cur.lastrowid)


def _record(algo_id: int, side: str, shares: int, price: float, timestamp: Optional[str],
            conn: Optional[sqlite3.Connection]) -> int:
    shares = check_shares(shares)
    price = check_price(price)
    timestamp = ledger_stamp(timestamp)
    with use_connection(conn) as c, atomic(c):
        card = c.execute("SELECT status FROM algorithm_instances WHERE id = ?", (algo_id,)).fetchone()
        if card is None:
            raise LedgerError(f"algorithm {algo_id} does not exist")
        if card["status"] != "running":
            raise LedgerError(f"algorithm {algo_id} is stopped; it cannot trade")
        if side == "sell":
            held = get_position_totals(algo_id, conn=c)["shares"]
            if shares > held:
                raise LedgerError(f"algorithm {algo_id} holds {held} shares; cannot sell {shares}")
        return insert_transaction(c, algo_id, side, shares, price, timestamp)


def record_buy(algo_id: int, shares: int, price: float, *, timestamp: Optional[str] = None,
               conn: Optional[sqlite3.Connection] = None) -> int:
    """Record a filled buy on a running card; returns the transaction id. ``timestamp`` is the fill's
    trading-clock stamp (the computer's clock for a call without one)."""
    return _record(algo_id, "buy", shares, price, timestamp, conn)


def record_sell(algo_id: int, shares: int, price: float, *, timestamp: Optional[str] = None,
                conn: Optional[sqlite3.Connection] = None) -> int:
    """Record a filled sell on a running card (never more than it holds); returns the transaction id."""
    return _record(algo_id, "sell", shares, price, timestamp, conn)


def get_transactions(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """A card's transactions, newest first (ties broken by id)."""
    with use_connection(conn) as c:
        rows = c.execute(
            "SELECT * FROM transactions WHERE algorithm_id = ? ORDER BY timestamp DESC, id DESC", (algo_id,)
        ).fetchall()
    return [dict(r) for r in rows]


def get_transactions_by_card(algo_ids: Iterable[int], *,
                             conn: Optional[sqlite3.Connection] = None) -> Dict[int, List[Dict[str, Any]]]:
    """Each card's transactions, newest first, in one query (a minute reads every card's at once)."""
    return rows_by_card("SELECT * FROM transactions WHERE algorithm_id IN ({ids})"
                         " ORDER BY algorithm_id, timestamp DESC, id DESC", algo_ids, conn)



def get_recent_transactions(algo_id: int, limit: int, *,
                            conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """A card's ``limit`` newest transactions, newest first (for display without reading them all)."""
    with use_connection(conn) as c:
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
    with use_connection(conn) as c:
        row = c.execute(_TOTALS_SQL + " WHERE algorithm_id = ?", (algo_id,)).fetchone()
        effects = c.execute(_EFFECT_TOTALS_SQL + " WHERE algorithm_id = ?", (algo_id,)).fetchone()
    return _totals(row, effects)


def get_all_position_totals(*, conn: Optional[sqlite3.Connection] = None) -> Dict[int, Dict[str, Any]]:
    """``get_position_totals`` for every card with transactions, in two grouped queries."""
    with use_connection(conn) as c:
        rows = {int(r["algorithm_id"]): r for r in c.execute(_TOTALS_SQL + " GROUP BY algorithm_id")}
        effects = {int(r["algorithm_id"]): r for r in c.execute(_EFFECT_TOTALS_SQL + " GROUP BY algorithm_id")}
    return {card: _totals(rows.get(card), effects.get(card)) for card in sorted(set(rows) | set(effects))}



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
    with use_connection(conn) as c:
        rows = c.execute(sql + " ORDER BY t.timestamp, t.id", params).fetchall()
    return [dict(r) for r in rows]



def get_ledger_versions(*, conn: Optional[sqlite3.Connection] = None) -> Dict[int, tuple]:
    """Per card, a key that changes whenever its fills or corporate actions change: (count, newest id, ...)."""
    with use_connection(conn) as c:
        trades = {r[0]: (r[1], r[2]) for r in c.execute(
            "SELECT algorithm_id, COUNT(*), MAX(id) FROM transactions GROUP BY algorithm_id")}
        effects = {r[0]: (r[1], r[2]) for r in c.execute(
            "SELECT algorithm_id, COUNT(*), MAX(id) FROM corporate_action_effects GROUP BY algorithm_id")}
    return {card: trades.get(card, (0, None)) + effects.get(card, (0, None)) for card in set(trades) | set(effects)}


def get_daily_trade_totals(*, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Per card and UTC day: net shares bought, net cash invested, and the day's last fill price."""
    with use_connection(conn) as c:
        rows = c.execute(
            "SELECT algorithm_id, substr(timestamp, 1, 10) AS day,"
            " SUM(CASE WHEN type = 'buy' THEN shares ELSE -shares END) AS shares,"
            " SUM(CASE WHEN type = 'buy' THEN shares * price ELSE -(shares * price) END) AS invested,"
            " MAX(timestamp) AS last_at, price AS last_price"  # SQLite: the bare column comes from the MAX() row
            " FROM transactions GROUP BY algorithm_id, day ORDER BY algorithm_id, day").fetchall()
    return [dict(r) for r in rows]


def get_recent_fills(algo_id: int, limit: int, *, conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """A card's ``limit`` newest fills, newest first, each with the broker order id that produced it."""
    with use_connection(conn) as c:
        rows = c.execute(
            "SELECT t.*, CASE WHEN oa.kind = 'order' THEN j.broker_order_id END AS broker_order_id"
            " FROM transactions t LEFT JOIN order_allocations oa ON oa.transaction_id = t.id"
            " LEFT JOIN broker_orders j ON j.client_order_id = oa.client_order_id"
            " WHERE t.algorithm_id = ? ORDER BY t.timestamp DESC, t.id DESC LIMIT ?", (algo_id, int(limit))).fetchall()
    return [dict(r) for r in rows]
