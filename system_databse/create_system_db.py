"""Create or upgrade system.db by applying numbered migrations, each once, each atomically.

Run from the repository root: ``python -m system_databse.create_system_db``.
Running it again applies only what is new and never loses data.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from shared.clock import computer_stamp
from shared.config import load_env
from system_databse import pin_hash, system_db_manager

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def _applied(conn: sqlite3.Connection) -> set[str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    return {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}


def _apply(conn: sqlite3.Connection, migration: Path) -> bool:
    """Run one migration file and record it, in a single transaction; False if already applied.

    The record is written first, under the write lock (``BEGIN IMMEDIATE``): when two processes
    upgrade the same file at once, the second one's insert fails on the primary key before any
    of the migration runs, and it moves on. So each migration is applied exactly once.
    Foreign keys are off while it runs, so a migration may rebuild a table (SQLite's documented
    procedure for a change ALTER TABLE cannot make), and checked before it commits: a migration
    that would leave a dangling reference is rolled back.
    """
    now = computer_stamp()  # bookkeeping (when this computer upgraded the file), not a ledger stamp
    name = migration.name.replace("'", "''")
    script = (
        "BEGIN IMMEDIATE;\n"
        f"INSERT INTO schema_migrations (name, applied_at) VALUES ('{name}', '{now}');\n"
        + migration.read_text()
    )
    conn.execute("PRAGMA foreign_keys=OFF")
    try:
        conn.executescript(script)
        dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
        if dangling:
            raise sqlite3.IntegrityError(f"{migration.name} leaves {len(dangling)} dangling reference(s): {dangling[:3]}")
        conn.execute("COMMIT")
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if migration.name in _applied(conn):
            return False  # another process applied it between our look and our lock
        raise
    finally:
        conn.execute("PRAGMA foreign_keys=ON")
    return True


def _connect(path: Path) -> sqlite3.Connection:
    """The upgrade's connection: WAL, foreign keys, zeroed deletes, and the SQL functions migrations use."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA secure_delete=ON")  # a replaced plain PIN leaves no bytes behind in its page
    conn.create_function("pin_record", 1, pin_hash.hash_pin)  # 0010_pin_hash.sql
    return conn


def create_system_db(db_path: str | Path | None = None) -> list[str]:
    """Bring the database at ``db_path`` up to date; return the migrations applied now.

    Safe to run from two processes at once: each migration is applied by exactly one of them.
    """
    path = Path(db_path) if db_path else system_db_manager.default_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():  # owner-only: the ledger and the PIN (SQLite gives -wal/-shm the same mode)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = _connect(path)
    try:
        done = _applied(conn)
        applied_now = [m.name for m in _migration_files() if m.name not in done and _apply(conn, m)]
        if applied_now:
            system_db_manager.scrub_wal(conn)  # no page of an older PIN left in system.db-wal
        return applied_now
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="path of system.db (default: AUTOTRADER_SYSTEM_DB or system_databse/system.db)")
    args = parser.parse_args(argv)
    load_env()  # the services run this before each start: AUTOTRADER_SYSTEM_DB may be set in .env only
    path = Path(args.db) if args.db else system_db_manager.default_db_path()
    try:
        applied = create_system_db(path)
    except (sqlite3.Error, OSError) as exc:
        print(f"error: cannot create {path}: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: {len(applied)} migration(s) applied" + (f" ({', '.join(applied)})" if applied else ", already up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
