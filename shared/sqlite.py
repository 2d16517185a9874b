"""Opening the project's SQLite files: one helper behind system.db's and stocks.db's ``get_connection``.

Both files are created (with their schema) by their own ``create_*`` script, never here, so a
missing file is a ``FileNotFoundError`` that says which script creates it. Connections are in
autocommit mode (reads see the latest commit; writes group themselves in ``BEGIN IMMEDIATE``
blocks), may be handed between threads, wait up to 10 s for a lock, return ``sqlite3.Row`` rows
and enforce foreign keys. ``read_only`` opens the file with ``mode=ro``, so a reader can never
take a write lock.

Durability is the one difference between the two: the ledger fsyncs every commit (``FULL``: an
order's journal intent must be on disk before the order is sent; WAL alone, at the build's
default ``NORMAL``, may lose the last commits to a power cut), while bars, which the start-up
backfill fetches again, use ``NORMAL`` (WAL + NORMAL never corrupts, it may only lose the newest
commits).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

DURABILITY = ("FULL", "NORMAL")
BUSY_TIMEOUT_SECONDS = 10


def open_database(path: Path, *, what: str, create_with: str, durability: str,
                  read_only: bool = False) -> sqlite3.Connection:
    """A connection to the existing ``what`` at ``path`` (``create_with``: the command that makes one)."""
    if durability not in DURABILITY:
        raise ValueError(f"durability must be one of {', '.join(DURABILITY)}, got {durability!r}")
    if not path.exists():
        raise FileNotFoundError(f"{what} not found at {path}; create it with: {create_with}")
    mode = "ro" if read_only else "rw"
    conn = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=BUSY_TIMEOUT_SECONDS,
                           isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
    conn.execute(f"PRAGMA synchronous = {durability}")
    return conn
