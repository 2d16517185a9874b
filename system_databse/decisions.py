"""Each card's recent decisions, refusals and errors, as the daemon made them (the detail view)."""
from __future__ import annotations

import sqlite3
from typing import Any, Dict, List, Optional

from system_databse.connection import (atomic, ledger_stamp, use_connection)


DECISIONS_KEPT = 50  # newest rows kept per card and kind ('decision', 'refused', 'error')
DECISION_KINDS = ("decision", "refused", "error")


def record_decisions(rows: List[Dict[str, Any]], *, recorded_at: Optional[str] = None, keep: int = DECISIONS_KEPT,
                     conn: Optional[sqlite3.Connection] = None) -> None:
    """Store one minute's decisions of several cards and trim each card's older rows, in one transaction.

    A row: ``algorithm_id``, ``minute``, ``kind``, ``action``, ``shares``, ``requested_action``,
    ``requested_shares``, ``reason``, ``price`` and ``held_back`` (why a trade decision was not sent:
    trading paused, the card's limit tripped; None otherwise). Rows of unknown cards are skipped.
    ``recorded_at`` is the trading clock's stamp (the computer's clock for a call without one).
    """
    now = ledger_stamp(recorded_at)
    with use_connection(conn) as c, atomic(c):
        known = {r["id"] for r in c.execute("SELECT id FROM algorithm_instances")}
        touched = set()
        for row in rows:
            if row["algorithm_id"] not in known or row["kind"] not in DECISION_KINDS:
                continue
            c.execute(
                "INSERT INTO card_decisions (algorithm_id, minute, kind, action, shares, requested_action,"
                " requested_shares, reason, price, held_back, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row["algorithm_id"], row["minute"], row["kind"], row.get("action", "hold"),
                 int(row.get("shares", 0)), row.get("requested_action"), row.get("requested_shares"),
                 str(row.get("reason") or ""), row.get("price"), row.get("held_back"), now),
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
    with use_connection(conn) as c:
        if kind is None:
            rows = c.execute("SELECT * FROM card_decisions WHERE algorithm_id = ? ORDER BY id DESC LIMIT ?",
                             (algo_id, int(limit))).fetchall()
        else:
            rows = c.execute("SELECT * FROM card_decisions WHERE algorithm_id = ? AND kind = ?"
                             " ORDER BY id DESC LIMIT ?", (algo_id, kind, int(limit))).fetchall()
    return [dict(r) for r in rows]

