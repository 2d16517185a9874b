"""What the ledger keeps about the system itself: configuration, the PIN, its id, heartbeats.

The PIN is stored only as a salted scrypt hash (``pin_hash``): ``get_pin`` returns that record,
``check_pin`` answers whether digits match it. Migration 0010 replaced the plain PIN of older
ledgers; every write of the PIN zeroes the bytes it replaces (``secure_delete``), and
``scrub_wal`` then empties the write-ahead log, so no old PIN stays readable in the files.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import sqlite3
from typing import Any, Dict, Optional

from shared.clock import computer_stamp
from system_databse import pin_hash
from system_databse.connection import (LedgerError, atomic, use_connection)

logger = logging.getLogger(__name__)

PIN_PATTERN = re.compile(r"^[0-9]{4,8}$")
DEFAULT_PIN = "2020"  # seeded by migration 0001; the API refuses live trading actions while it is unchanged
UPGRADE_COMMAND = "python -m system_databse.create_system_db"


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
    """The stored PIN record (the spec's ``get_pin``): a salted scrypt hash with its parameters,
    ``$scrypt$ln=..,r=..,p=..$salt$key``, never the PIN itself. PIN validation reads it through
    ``check_pin``; a ledger with no PIN, or one still in plain text (not yet migrated), raises."""
    record = get_config("pin", conn=conn)
    if record is None:
        raise LedgerError("no PIN is configured in system_config; set one with: python -m api.pin set-pin")
    if not pin_hash.is_record(record):
        raise LedgerError(f"the PIN is stored in plain text; upgrade the ledger with: {UPGRADE_COMMAND}")
    return record


def check_pin(pin: str, *, conn: Optional[sqlite3.Connection] = None) -> bool:
    """Whether ``pin`` is the stored PIN (scrypt, then a constant-time comparison)."""
    return pin_hash.verify_pin(pin, get_pin(conn=conn))


def pin_is_default(*, conn: Optional[sqlite3.Connection] = None) -> bool:
    """Whether the PIN is still the ``2020`` everybody knows from the README."""
    return check_pin(DEFAULT_PIN, conn=conn)


def set_pin(new_pin: str, *, conn: Optional[sqlite3.Connection] = None) -> None:
    """Store a new PIN as a fresh salted hash; the old record's bytes are zeroed in the file.

    Call ``scrub_wal`` after the transaction commits to empty the write-ahead log as well.
    """
    if not isinstance(new_pin, str) or not PIN_PATTERN.match(new_pin):
        raise LedgerError("PIN must be 4 to 8 digits")
    record = pin_hash.hash_pin(new_pin)  # before the write: scrypt takes tens of milliseconds
    with use_connection(conn) as c:
        c.execute("PRAGMA secure_delete = ON")
        set_config("pin", record, conn=c)


def scrub_wal(conn: sqlite3.Connection) -> bool:
    """Copy the write-ahead log into the database and truncate it to zero bytes, so pages with a
    replaced PIN do not linger in ``system.db-wal``. Waits (busy timeout) for readers to finish;
    False when one kept the log busy (the old frames are then overwritten by later writes)."""
    busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        logger.warning("system.db-wal could not be truncated (a reader kept it busy)")
    return not busy


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
