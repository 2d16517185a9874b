"""Create stocks.db: the bars table and every NYSE regular-session minute from 2018 through 2030.

Run from the repository root: ``python -m database.create_stocks_db``. Idempotent: running it
again adds only missing minutes and never touches stored bars.
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

from database import db_manager, market_calendar

SCHEMA = Path(__file__).resolve().parent / "schema.sql"


def create_stocks_db(db_path: str | Path | None = None) -> int:
    """Create or complete the database at ``db_path``; returns the number of minutes added now."""
    path = Path(db_path) if db_path else db_manager.default_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA.read_text())
        minutes = market_calendar.all_minutes()
        stored = conn.execute("SELECT COUNT(*) FROM timestamps").fetchone()[0]
        if stored == len(minutes):
            return 0
        stamps = minutes.strftime(market_calendar.TIMESTAMP_FORMAT)
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.executemany("INSERT OR IGNORE INTO timestamps (timestamp) VALUES (?)", ((s,) for s in stamps))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return cur.rowcount
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="path of stocks.db (default: AUTOTRADER_STOCKS_DB or database/stocks.db)")
    args = parser.parse_args(argv)
    path = Path(args.db) if args.db else db_manager.default_db_path()
    started = time.monotonic()
    try:
        added = create_stocks_db(path)
    except (sqlite3.Error, OSError) as exc:
        print(f"error: cannot create {path}: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: {added} market minutes added in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
