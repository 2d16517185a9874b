"""Trading controls in the ledger: the account-wide PAUSE, each card's limits and trips, and the
marks the daemon checks the limits against.

- The pause is one row: paused or not, since when, by whom ('owner', or 'daily order limit' when
  the daemon paused itself) and why; RESUME clears it and remembers when (the day's order count
  starts again from there, so a RESUME grants a fresh allowance instead of pausing again at once).
- A card's limits are optional, each NULL when not set: a maximum loss from its peak value (%),
  a daily loss ($), a maximum number of trades per trading day, and a cooldown after a losing
  sale (minutes); ``on_trip`` says whether a tripped limit pauses the card or stops and
  liquidates it. A trip (which limit, when, why) holds the card's trades back until RESUME CARD,
  except a cooldown, which ends by itself. RESUME CARD clears the trip and remembers when: peak,
  day loss and trade count then start again from that moment.
- The marks are the card's P&L (value - capital) as the daemon last saw it, its peak, and the P&L
  the trading day started from.

Written by the API (pause, resume, limits, resume card) and the daemon (trips, its own pause,
marks); stamps are the caller's (the trading clock's), never read here.
"""
from __future__ import annotations

import math
import sqlite3
from typing import Any, Dict, Iterable, List, Mapping, Optional

from system_databse.connection import LedgerError, as_dict, atomic, rows_by_card, use_connection

PAUSED_BY = ("owner", "daily order limit")
ON_TRIP = ("pause", "liquidate")
LIMIT_FIELDS = ("max_drawdown_percent", "daily_loss_limit", "max_trades_per_day", "cooldown_minutes")
LIMITS = {  # the name a trip records -> the field that sets it
    "max_drawdown": "max_drawdown_percent", "daily_loss": "daily_loss_limit",
    "max_trades": "max_trades_per_day", "cooldown": "cooldown_minutes",
}
MAX_MONEY = 1e12
MAX_COUNT = 100_000


# --------------------------------------------------------------------------- the pause


def get_pause(*, conn: Optional[sqlite3.Connection] = None) -> Dict[str, Any]:
    """``{"paused", "since", "paused_by", "reason", "resumed_at"}``."""
    with use_connection(conn) as c:
        row = c.execute("SELECT paused, since, paused_by, reason, resumed_at FROM trading_pause WHERE id = 1").fetchone()
    if row is None:
        raise LedgerError("system.db has no trading_pause row; upgrade it: python -m system_databse.create_system_db")
    return {"paused": bool(row["paused"]), "since": row["since"], "paused_by": row["paused_by"],
            "reason": row["reason"], "resumed_at": row["resumed_at"]}


def pause_trading(paused_by: str, reason: str, *, at: str, conn: Optional[sqlite3.Connection] = None) -> bool:
    """Pause all trading from ``at``; False (and nothing changed) when it is paused already."""
    if paused_by not in PAUSED_BY:
        raise LedgerError(f"paused_by must be one of {', '.join(PAUSED_BY)}, got {paused_by!r}")
    if not isinstance(reason, str):
        raise LedgerError("the reason must be a string")
    with use_connection(conn) as c, atomic(c):
        cur = c.execute("UPDATE trading_pause SET paused = 1, since = ?, paused_by = ?, reason = ?"
                        " WHERE id = 1 AND paused = 0", (at, paused_by, reason.strip()))
        return cur.rowcount == 1


def resume_trading(*, at: str, conn: Optional[sqlite3.Connection] = None) -> bool:
    """Lift the pause at ``at``; False (and nothing changed) when trading was not paused."""
    with use_connection(conn) as c, atomic(c):
        cur = c.execute("UPDATE trading_pause SET paused = 0, since = NULL, paused_by = NULL, reason = '',"
                        " resumed_at = ? WHERE id = 1 AND paused = 1", (at,))
        return cur.rowcount == 1


def orders_sent_since(start: str, *, conn: Optional[sqlite3.Connection] = None) -> int:
    """Net orders handed to the broker from ``start`` on (journaled with a side: a minute whose
    decisions cancelled out between cards is a cross, not a broker order). An order journaled but
    never received still counts: it may have reached the broker."""
    with use_connection(conn) as c:
        return int(c.execute("SELECT COUNT(*) FROM broker_orders WHERE side IS NOT NULL AND created_at >= ?",
                             (start,)).fetchone()[0])


# --------------------------------------------------------------------------- a card's limits


def check_limits(values: Mapping[str, Any]) -> Dict[str, Any]:
    """The limits as stored: every field present (None: not set) and ``on_trip``; LedgerError names
    the first bad one."""
    unknown = sorted(set(values) - set(LIMIT_FIELDS) - {"on_trip"})
    if unknown:
        raise LedgerError(f"unknown limit(s): {', '.join(unknown)}")
    out: Dict[str, Any] = {}
    for name in LIMIT_FIELDS:
        value = values.get(name)
        if value is None:
            out[name] = None
        elif name in ("max_trades_per_day", "cooldown_minutes"):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
                raise LedgerError(f"{name} must be a whole number from 1 to {MAX_COUNT}, or null for none")
            out[name] = value
        else:
            high = 100.0 if name == "max_drawdown_percent" else MAX_MONEY
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0 < value < high:
                raise LedgerError(f"{name} must be a number above 0 and below {high:g}, or null for none")
            out[name] = float(value)
    on_trip = values.get("on_trip", "pause")
    if on_trip not in ON_TRIP:
        raise LedgerError(f"on_trip must be one of {', '.join(ON_TRIP)}")
    out["on_trip"] = on_trip
    return out


def set_card_limits(algo_id: int, limits: Mapping[str, Any], *, at: str,
                    conn: Optional[sqlite3.Connection] = None) -> Dict[str, Any]:
    """Store a card's limits (all of them: a field left out is no limit); its trip, if any, stays."""
    checked = check_limits(limits)
    with use_connection(conn) as c, atomic(c):
        if c.execute("SELECT 1 FROM algorithm_instances WHERE id = ?", (algo_id,)).fetchone() is None:
            raise LedgerError(f"no card {algo_id}")
        c.execute(
            "INSERT INTO card_limits (algorithm_id, max_drawdown_percent, daily_loss_limit, max_trades_per_day,"
            " cooldown_minutes, on_trip, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(algorithm_id) DO UPDATE"
            " SET max_drawdown_percent = excluded.max_drawdown_percent, daily_loss_limit = excluded.daily_loss_limit,"
            " max_trades_per_day = excluded.max_trades_per_day, cooldown_minutes = excluded.cooldown_minutes,"
            " on_trip = excluded.on_trip, updated_at = excluded.updated_at",
            (algo_id, *(checked[name] for name in LIMIT_FIELDS), checked["on_trip"], at))
    return checked


def _limits(row: Mapping[str, Any]) -> Dict[str, Any]:
    trip = None
    if row["tripped"]:
        trip = {"limit": row["tripped"], "at": row["tripped_at"], "reason": row["trip_reason"] or "",
                "until": row["trip_until"]}
    return {**{name: row[name] for name in LIMIT_FIELDS}, "on_trip": row["on_trip"], "updated_at": row["updated_at"],
            "trip": trip, "resumed_at": row["resumed_at"]}


def get_card_limits(algo_id: int, *, conn: Optional[sqlite3.Connection] = None) -> Optional[Dict[str, Any]]:
    """A card's limits and its trip (``{"limit", "at", "reason", "until"}`` or None); None when none were set."""
    with use_connection(conn) as c:
        row = as_dict(c.execute("SELECT * FROM card_limits WHERE algorithm_id = ?", (algo_id,)).fetchone())
    return _limits(row) if row else None


def get_all_card_limits(*, conn: Optional[sqlite3.Connection] = None) -> Dict[int, Dict[str, Any]]:
    with use_connection(conn) as c:
        rows = c.execute("SELECT * FROM card_limits ORDER BY algorithm_id").fetchall()
    return {int(row["algorithm_id"]): _limits(row) for row in rows}


def trip_card(algo_id: int, limit: str, reason: str, *, at: str, until: Optional[str] = None,
              conn: Optional[sqlite3.Connection] = None) -> bool:
    """Record that ``limit`` tripped at ``at``; False when the card is tripped already (a cooldown
    gives way to any other limit, which needs a RESUME CARD)."""
    if limit not in LIMITS:
        raise LedgerError(f"limit must be one of {', '.join(LIMITS)}, got {limit!r}")
    with use_connection(conn) as c, atomic(c):
        cur = c.execute("UPDATE card_limits SET tripped = ?, tripped_at = ?, trip_reason = ?, trip_until = ?"
                        " WHERE algorithm_id = ? AND (tripped IS NULL OR tripped = 'cooldown')",
                        (limit, at, reason, until, algo_id))
        return cur.rowcount == 1


def end_cooldown(algo_id: int, *, until: str, conn: Optional[sqlite3.Connection] = None) -> bool:
    """Clear a cooldown that ended at ``until``; False when the card is not in that cooldown."""
    with use_connection(conn) as c, atomic(c):
        cur = c.execute("UPDATE card_limits SET tripped = NULL, tripped_at = NULL, trip_reason = NULL,"
                        " trip_until = NULL WHERE algorithm_id = ? AND tripped = 'cooldown' AND trip_until = ?",
                        (algo_id, until))
        return cur.rowcount == 1


def resume_card(algo_id: int, *, at: str, conn: Optional[sqlite3.Connection] = None) -> bool:
    """RESUME CARD: clear the card's trip; from ``at`` its peak, day loss and trade count start
    again. False (and nothing changed) when it was not tripped."""
    with use_connection(conn) as c, atomic(c):
        cur = c.execute("UPDATE card_limits SET tripped = NULL, tripped_at = NULL, trip_reason = NULL,"
                        " trip_until = NULL, resumed_at = ? WHERE algorithm_id = ? AND tripped IS NOT NULL",
                        (at, algo_id))
        return cur.rowcount == 1


# --------------------------------------------------------------------------- what the daemon checks against


def get_marks(*, conn: Optional[sqlite3.Connection] = None) -> Dict[int, Dict[str, Any]]:
    """``{card id: {"session", "day_start_pnl", "peak_pnl", "last_pnl", "checked_at", "reset_at"}}``."""
    with use_connection(conn) as c:
        rows = c.execute("SELECT * FROM card_marks").fetchall()
    return {int(row["algorithm_id"]): {k: row[k] for k in row.keys() if k != "algorithm_id"} for row in rows}


def save_marks(marks: Mapping[int, Mapping[str, Any]], *, conn: Optional[sqlite3.Connection] = None) -> None:
    """Replace the marks of the cards in ``marks``, in one transaction."""
    rows = [(int(card), m["session"], float(m["day_start_pnl"]), float(m["peak_pnl"]), float(m["last_pnl"]),
             m["checked_at"], m.get("reset_at")) for card, m in marks.items()]
    with use_connection(conn) as c, atomic(c):
        c.executemany("INSERT OR REPLACE INTO card_marks (algorithm_id, session, day_start_pnl, peak_pnl, last_pnl,"
                      " checked_at, reset_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def trades_since(starts: Mapping[int, str], *, conn: Optional[sqlite3.Connection] = None) -> Dict[int, int]:
    """Per card, its fills (crosses included: each is a trade of the card) from its start stamp on."""
    with use_connection(conn) as c:  # one indexed count per card (algorithm_id, timestamp)
        return {int(card): int(c.execute("SELECT COUNT(*) FROM transactions WHERE algorithm_id = ? AND timestamp >= ?",
                                         (int(card), start)).fetchone()[0]) for card, start in starts.items()}


def newest_sales(algo_ids: Iterable[int], *, conn: Optional[sqlite3.Connection] = None) -> Dict[int, Dict[str, Any]]:
    """Per card, its newest sell fill (``id``, ``timestamp``, ``shares``, ``price``); cards without one are left out."""
    found = rows_by_card("SELECT algorithm_id, id, MAX(timestamp) AS timestamp, shares, price FROM transactions"
                         " WHERE type = 'sell' AND algorithm_id IN ({ids}) GROUP BY algorithm_id", algo_ids, conn)
    return {card: rows[0] for card, rows in found.items() if rows}


def trip_lines(limits: Optional[Mapping[str, Any]]) -> List[str]:
    """The limits a card has, in words (for logs, the shell and notifications)."""
    if not limits:
        return []
    words = {"max_drawdown_percent": "max loss from peak {:g}%", "daily_loss_limit": "daily loss ${:,.2f}",
             "max_trades_per_day": "max {} trades a day", "cooldown_minutes": "{} min cooldown after a losing sale"}
    return [words[name].format(limits[name]) for name in LIMIT_FIELDS if limits.get(name) is not None]
