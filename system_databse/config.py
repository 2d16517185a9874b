"""What the ledger keeps about the system itself: configuration, the PIN, its id, heartbeats."""
from __future__ import annotations

import json
import re
import secrets
import sqlite3
from typing import Any, Dict, Optional

from shared.clock import computer_stamp
from system_databse.connection import (LedgerError, atomic, use_connection)

PIN_PATTERN = re.compile(r"^[0-9]{4,8}$")
DEFAULT_PIN = "2020"  # seeded by migration 0001; the API refuses live trading actions while it is unchanged


def get_config(key: str, default: Optional[str] = None, *, conn: Optional[sqlite3.Connection] = None) -> Optional[str]:
    with use_connection(conn) as c:
        row = c.execute("SELECT value FROM system_config WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else default


def set_config(key: str, value: str, *, conn: Optional[sqlite3.Connection] = None) -> None:
    with use_connection(conn) as c, atomic(c):
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


def get_ledger_id(*, conn: Optional[sqlite3.Connection] = None) -> str:
    """A short id of this ledger, made once: part of every client order id, so two ledgers trading
    one account never settle each other's orders."""
    with use_connection(conn) as c, atomic(c):
        row = c.execute("SELECT value FROM system_config WHERE key = 'ledger_id'").fetchone()
        if row is not None:
            return row["value"]
        ledger_id = secrets.token_hex(3)
        c.execute("INSERT INTO system_config (key, value) VALUES ('ledger_id', ?)", (ledger_id,))
        return ledger_id


def write_heartbeat(component: str, payload: Dict[str, Any], *, now: Optional[str] = None,
                    conn: Optional[sqlite3.Connection] = None) -> None:
    """Replace a component's liveness report (a JSON object; callers keep secrets out of it).

    Liveness, not the ledger: ``now`` defaults to the computer's clock, which the API's
    heartbeat age is measured against."""
    with use_connection(conn) as c, atomic(c):
        c.execute(
            "INSERT INTO heartbeat (component, updated_at, payload) VALUES (?, ?, ?) "
            "ON CONFLICT(component) DO UPDATE SET updated_at = excluded.updated_at, payload = excluded.payload",
            (component, now or computer_stamp(), json.dumps(payload, sort_keys=True)),
        )


def get_heartbeat(component: str, *, conn: Optional[sqlite3.Connection] = None) -> Optional[Dict[str, Any]]:
    with use_connection(conn) as c:
        row = c.execute("SELECT * FROM heartbeat WHERE component = ?", (component,)).fetchone()
    if row is None:
        return None
    return {"component": row["component"], "updated_at": row["updated_at"], "payload": json.loads(row["payload"])}
