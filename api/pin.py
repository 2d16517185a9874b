"""Change the dashboard PIN, or lift a PIN lock-out, from the shell (never over the API).

    python -m api.pin set-pin [--db PATH]     # asks twice on a terminal; else reads one line from stdin
    python -m api.pin unlock [--db PATH]      # forget wrong PINs and lock-outs
    python -m api.pin status [--db PATH]      # wrong PINs so far and any lock-out (never the PIN)

Setting a PIN also lifts any lock-out. The PIN is stored only as a salted scrypt hash, and the
bytes of the one it replaces are zeroed in system.db and its WAL. Errors are one line on stderr with exit status 1.
Tokens already issued by a running API server stay valid until they expire (minutes).
"""
from __future__ import annotations

import argparse
import getpass
import sqlite3
import sys
from pathlib import Path
from typing import Optional, TextIO

from api.auth import LockoutState, reset_lockout
from shared.clock import computer_now
from shared.config import load_env
from system_databse import system_db_manager


class PinInputError(ValueError):
    pass


def read_new_pin(stdin: TextIO) -> str:
    if stdin.isatty():
        first = getpass.getpass("New PIN (4-8 digits): ")
        if getpass.getpass("Repeat the new PIN: ") != first:
            raise PinInputError("the two PINs differ; nothing changed")
        return first
    line = stdin.readline()
    if not line:
        raise PinInputError("no PIN given on stdin; nothing changed")
    return line.strip()


def set_pin(db_path: Optional[Path], new_pin: str) -> None:
    """Store the new PIN's salted hash and lift any lock-out; then empty the WAL of the old record."""
    conn = system_db_manager.get_connection(db_path)
    try:
        with system_db_manager.atomic(conn):
            system_db_manager.set_pin(new_pin, conn=conn)
            reset_lockout(conn)
        system_db_manager.scrub_wal(conn)
    finally:
        conn.close()


def unlock(db_path: Optional[Path]) -> None:
    conn = system_db_manager.get_connection(db_path)
    try:
        with system_db_manager.atomic(conn):
            reset_lockout(conn)
    finally:
        conn.close()


def status(db_path: Optional[Path]) -> str:
    conn = system_db_manager.get_connection(db_path, read_only=True)
    try:
        state = LockoutState.load(conn)
    finally:
        conn.close()
    locked_for = state.seconds_left(computer_now())  # liveness: a lock-out lasts real seconds
    lock = f"locked for {locked_for} more seconds" if locked_for else "not locked"
    return f"{state.failures} wrong PIN(s) since the last lock-out, {state.lockouts} lock-out(s); {lock}"


def main(argv: Optional[list[str]] = None, stdin: TextIO = sys.stdin) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.pin", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("set-pin", "unlock", "status"))
    parser.add_argument("--db", type=Path, help="system.db (default: AUTOTRADER_SYSTEM_DB or system_databse/system.db)")
    args = parser.parse_args(argv)
    load_env()
    try:
        if args.command == "set-pin":
            set_pin(args.db, read_new_pin(stdin))
            print("PIN changed; any lock-out lifted")
        elif args.command == "unlock":
            unlock(args.db)
            print("PIN lock-out lifted")
        else:
            print(status(args.db))
    except (PinInputError, system_db_manager.LedgerError, FileNotFoundError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (EOFError, KeyboardInterrupt):
        print("error: cancelled; nothing changed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
