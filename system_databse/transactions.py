"""A card's fills and what they add up to (shares, trade count, net invested), and the reads of
them the wall, the history and the exports make.

Shares are summed in SQL as integer nano-shares (``shared.shares``), so a fractional sell or a
reverse split's remainder adds up exactly; ``holdings`` is the one aggregate every position
(``system_databse.positions``) is built from."""
from __future__ import annotations

import sqlite3
from typing import Any, Dict, Iterable, List, Optional

from shared.shares import NANO, from_nano, to_nano, whole_part
from system_databse.connection import (LedgerError, atomic, check_price, check_quantity, check_shares, ledger_stamp,
                                        rows_by_card, use_connection)


def insert_transaction(c: sqlite3.Connection, algo_id: int, side: str, shares: int | float, price: float,
                        timestamp: str) -> int:
    """One fill row (whole shares as an INTEGER, a fraction as a REAL of 9 decimals at most)."""
    shares, price = check_quantity(shares), check_price(price)
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
            held = holdings(c, [algo_id]).get(algo_id, EMPTY)["nano"]
            if to_nano(shares) > held:
                raise LedgerError(f"algorithm {algo_id} holds {from_nano(held)} shares; cannot sell {shares}")
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


_TRADES_SQL = f"""
SELECT algorithm_id,
       COALESCE(SUM(CASE WHEN type = 'buy' THEN 1 ELSE -1 END * CAST(round(shares * {NANO}) AS INTEGER)), 0) AS nano,
       COUNT(*) AS trade_count,
       COALESCE(SUM(CASE WHEN type = 'buy' THEN shares * price ELSE -(shares * price) END), 0.0) AS invested
FROM transactions WHERE {{cards}} {{when}} GROUP BY algorithm_id
"""

_EFFECTS_SQL = f"""
SELECT algorithm_id,
       COALESCE(SUM(share_change), 0) * {NANO}
           + COALESCE(SUM(CAST(round(fractional_change * {NANO}) AS INTEGER)), 0) AS nano,
       COALESCE(SUM(cash), 0.0) AS cash
FROM corporate_action_effects WHERE {{cards}} {{when}} GROUP BY algorithm_id
"""

_CAPITAL_SQL = """
SELECT algorithm_id,
       COALESCE(SUM(CASE WHEN kind = 'deposit' THEN amount_cents ELSE 0 END), 0) AS deposited_cents,
       COALESCE(SUM(CASE WHEN kind = 'withdrawal' THEN amount_cents ELSE 0 END), 0) AS withdrawn_cents
FROM capital_moves WHERE {cards} {when} GROUP BY algorithm_id
"""

EMPTY = {"nano": 0, "trade_count": 0, "invested": 0.0, "dividends": 0.0, "deposits": 0.0, "withdrawals": 0.0}


def holdings(c: sqlite3.Connection, algo_ids: Optional[Iterable[int]] = None, *,
             before: Optional[str] = None) -> Dict[int, Dict[str, Any]]:
    """Per card, from its fills, corporate actions and capital moves before ``before`` (default:
    all): shares held in nano-shares, fill count, net cash into shares (buys - sells), dividends
    received, and the money the owner deposited and withdrew since its creation (summed in exact
    cents).

    The one aggregate of a card's position: the wall, the checker, the guard, corporate actions,
    exports and reconcile all start here. Cards without any row are left out (see ``EMPTY``)."""
    if algo_ids is None:
        cards, params = "1 = 1", []
    else:
        params = sorted({int(i) for i in algo_ids})
        if not params:
            return {}
        cards = f"algorithm_id IN ({','.join('?' * len(params))})"  # only the ids' count shapes it
    bound = [] if before is None else [before]  # no bound: the covering index answers alone
    found: Dict[int, Dict[str, Any]] = {}
    trades_when = "" if before is None else "AND timestamp < ?"
    for row in c.execute(_TRADES_SQL.format(cards=cards, when=trades_when), [*params, *bound]):
        found[row["algorithm_id"]] = {**EMPTY, "nano": int(row["nano"]), "trade_count": int(row["trade_count"]),
                                      "invested": float(row["invested"])}
    effects_when = "" if before is None else "AND effective_at < ?"
    for row in c.execute(_EFFECTS_SQL.format(cards=cards, when=effects_when), [*params, *bound]):
        held = found.setdefault(row["algorithm_id"], dict(EMPTY))
        held["nano"] += int(row["nano"])
        held["dividends"] = float(row["cash"])
    for row in c.execute(_CAPITAL_SQL.format(cards=cards, when=trades_when), [*params, *bound]):
        held = found.setdefault(row["algorithm_id"], dict(EMPTY))
        held["deposits"] = int(row["deposited_cents"]) / 100
        held["withdrawals"] = int(row["withdrawn_cents"]) / 100
    return found


def totals_of(held: Dict[str, Any]) -> Dict[str, Any]:
    """The totals dict the wall and the API read: ``shares`` (whole), ``fractional_shares`` (the
    rest, e.g. a reverse split's remainder), ``held`` (both, exact), trade count, net invested
    (buys - sells - dividends), dividends, and the capital deposited and withdrawn."""
    whole = whole_part(held["nano"])
    return {"shares": whole, "fractional_shares": float(from_nano(held["nano"] - whole * NANO)),
            "held": from_nano(held["nano"]), "trade_count": held["trade_count"],
            "invested": held["invested"] - held["dividends"], "dividends": held["dividends"],
            "deposits": held["deposits"], "withdrawals": held["withdrawals"]}


def get_position_totals(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> Dict[str, Any]:
    """``totals_of`` one card (aggregated in SQL: a card with 100,000 fills is one indexed query)."""
    with use_connection(conn) as c:
        return totals_of(holdings(c, [algo_id]).get(algo_id, EMPTY))


def get_all_position_totals(*, conn: Optional[sqlite3.Connection] = None) -> Dict[int, Dict[str, Any]]:
    """``get_position_totals`` for every card with fills, corporate actions or capital moves, in three
    grouped queries."""
    with use_connection(conn) as c:
        return {card: totals_of(held) for card, held in sorted(holdings(c).items())}


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
