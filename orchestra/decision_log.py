"""Keeps each card's recent decisions in system.db for the wall's detail view.

After every cycle the daemon stores, per card, what the algorithm decided and why (its own
reason) and, for a trade that was not sent, why it was held back (trading paused, a tripped
limit), a refusal and the checker's reason, or the error that stopped the card; the ledger keeps
the newest ``DECISIONS_KEPT`` of each kind per card. A failure here is logged and never affects
trading: the record is for people, not for the next decision.
"""
from __future__ import annotations

import logging
import sqlite3
from typing import Any, Dict, List

from system_databse import system_db_manager as ledger

logger = logging.getLogger(__name__)


def rows_of(report: Any) -> List[Dict[str, Any]]:
    """The ledger rows for one ``CycleReport``: one per decided card, one per card error."""
    rows = []
    for made in report.decisions:
        d = made.decision
        rows.append({
            "algorithm_id": int(made.card["id"]), "minute": report.minute,
            "kind": "decision" if d.accepted else "refused",
            "action": d.action, "shares": int(d.shares),
            "requested_action": str(d.requested_action) if d.requested_action is not None else None,
            "requested_shares": d.requested_shares if isinstance(d.requested_shares, int) else None,
            "reason": d.reason, "price": made.price,
            "held_back": report.held_back.get(int(made.card["id"])) if d.is_trade else None,
        })
    for card_id, message in report.card_errors.items():
        rows.append({"algorithm_id": int(card_id), "minute": report.minute, "kind": "error",
                     "action": "hold", "shares": 0, "reason": message, "price": None})
    return rows


def record(conn: sqlite3.Connection, report: Any, recorded_at: str) -> None:
    """Store the cycle's rows, stamped ``recorded_at`` (the trading clock's)."""
    try:
        ledger.record_decisions(rows_of(report), recorded_at=recorded_at, conn=conn)
    except (sqlite3.Error, ledger.LedgerError, KeyError, TypeError, ValueError) as exc:
        logger.error("could not store the decisions of %s: %s", report.minute, exc)
