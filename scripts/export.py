"""Export the ledger as CSV: every fill, or realized P&L per card and tax year (FIFO) with wash sales.

Usage:
    python -m scripts.export [--card N] [--from YYYY-MM-DD --to YYYY-MM-DD] transactions.csv
    python -m scripts.export --realized [--card N] [--from ... --to ...] realized.csv
    (a file name of "-" writes to standard output)

Reads system.db read-only (``AUTOTRADER_SYSTEM_DB`` or ``--db``); the same rows as the API's
``/api/export/transactions.csv`` and ``/api/export/realized.csv``. Days are UTC dates, both
inclusive. Bad arguments print one line and exit 2. The realized file also flags each loss sale
that a purchase of the same stock by any card within 30 days turned into a wash sale, with the
amount disallowed, and totals each tax year (see ``system_databse/exports.py``).
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import date
from pathlib import Path

from shared.config import load_env
from system_databse import exports, system_db_manager


def _day(text: str) -> str:
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m scripts.export", description=__doc__.splitlines()[0])
    parser.add_argument("output", help="CSV file to write, or - for standard output")
    parser.add_argument("--card", type=int, help="only this card's fills")
    parser.add_argument("--from", dest="start", type=_day, help="first day (UTC date), inclusive")
    parser.add_argument("--to", dest="end", type=_day, help="last day (UTC date), inclusive")
    parser.add_argument("--realized", action="store_true", help="realized P&L per card and year instead of fills")
    parser.add_argument("--db", help="path of system.db")
    args = parser.parse_args(argv)
    if args.start and args.end and args.start > args.end:
        parser.error("--from must not be after --to")
    return args


def main(argv: list[str] | None = None) -> int:
    load_env()
    args = parse(argv)
    try:
        conn = system_db_manager.get_connection(args.db, read_only=True)
    except (FileNotFoundError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if args.card is not None and system_db_manager.get_algorithm(args.card, conn=conn) is None:
            print(f"error: card {args.card} does not exist", file=sys.stderr)
            return 2
        if args.realized:
            text = exports.to_csv(exports.realized_rows(conn, args.card, args.start, args.end), exports.REALIZED_COLUMNS)
        else:
            text = exports.to_csv(exports.transaction_rows(conn, args.card, args.start, args.end),
                                  exports.TRANSACTION_COLUMNS)
    finally:
        conn.close()
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text)
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.output}: {text.count(chr(10)) - 1} row(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
