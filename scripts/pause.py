"""PAUSE or RESUME all trading from the shell, or see whether it is paused.

    .venv/bin/python -m scripts.pause on [--reason TEXT] [--db PATH]   # no card sends orders
    .venv/bin/python -m scripts.pause off [--db PATH]                  # RESUME
    .venv/bin/python -m scripts.pause status [--db PATH]

The same pause as the wall's (system.db; it survives restarts): the orchestrator reads it every
minute before anything is sent, still lets every card decide (the decisions are logged as held
back) and holds back stopped cards' liquidations too. No PIN: whoever has this shell has the
ledger. The pause is stamped by the trading clock (``AUTOTRADER_CLOCK``: the broker's with the
local exchange), or the computer's when the broker cannot be asked, so a pause always goes in.
Errors are one line on stderr with exit status 1.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sqlite3
import sys
from pathlib import Path
from typing import Optional, TextIO

from database.market_calendar import to_utc_string
from shared.clock import computer_stamp
from shared.config import ConfigError, Settings, load_env
from system_databse import system_db_manager as ledger


def describe(pause: dict) -> str:
    if not pause["paused"]:
        since = f" (resumed {pause['resumed_at']})" if pause["resumed_at"] else ""
        return f"trading: not paused{since}"
    reason = f": {pause['reason']}" if pause["reason"] else ""
    return (f"PAUSED by the {pause['paused_by']} since {pause['since']}{reason}; no card sends orders "
            "(python -m scripts.pause off to resume)")


def trading_stamp(settings: Settings, err: TextIO) -> str:
    """Now on the trading clock; the computer's when the broker's cannot be read (a pause must not wait)."""
    if settings.daemon.clock == "broker":
        try:
            from orchestra.alpaca_wrapper import AlpacaWrapper, BrokerError

            try:
                with contextlib.redirect_stdout(io.StringIO()):  # the wrapper announces itself on stdout
                    broker = AlpacaWrapper(settings.broker, request_timeout=3, read_attempts=1)
                return to_utc_string(broker.get_clock().timestamp)
            except BrokerError as exc:
                print(f"note: the broker's clock cannot be read ({exc}); stamped with this computer's", file=err)
        except ConfigError as exc:
            print(f"note: {exc}; stamped with this computer's clock", file=err)
    return computer_stamp()


def main(argv: Optional[list[str]] = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.pause", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("on", "off", "status"))
    parser.add_argument("--reason", default="paused from the shell", help="why (shown on the wall)")
    parser.add_argument("--db", type=Path, help="system.db (default: AUTOTRADER_SYSTEM_DB or system_databse/system.db)")
    args = parser.parse_args(argv)
    load_env()
    try:
        settings = Settings.from_env(os.environ)
        path = args.db or settings.databases.system_db
        conn = ledger.get_connection(path, read_only=args.command == "status")
        try:
            if args.command == "on":
                if not ledger.pause_trading("owner", args.reason, at=trading_stamp(settings, err), conn=conn):
                    print("already paused; nothing changed", file=out)
            elif args.command == "off":
                if not ledger.resume_trading(at=trading_stamp(settings, err), conn=conn):
                    print("not paused; nothing changed", file=out)
            print(describe(ledger.get_pause(conn=conn)), file=out)
        finally:
            conn.close()
    except (ConfigError, ledger.LedgerError, FileNotFoundError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
