"""``python -m paper_exchange``: run the exchange until SIGINT/SIGTERM.

Every option also comes from the environment (``PAPER_EXCHANGE_<NAME>``); the command line
wins. Port 0 picks a free port; the ready line names the ports actually bound.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from decimal import Decimal, InvalidOperation

from .clock import CALENDAR_END, CALENDAR_START, parse_utc
from .iex_feed import DEFAULT_PROFILES, parse_profiles
from .corporate_actions import ActionError
from .server import Exchange, Options

logger = logging.getLogger("paper_exchange")


class _Parser(argparse.ArgumentParser):
    """Bad options end in one line on stderr and exit status 2, not a usage dump."""

    def error(self, message: str):
        self.exit(2, f"paper exchange: {message}\n")


def _parser(env) -> argparse.ArgumentParser:
    def default(name, fallback):
        return env.get(f"PAPER_EXCHANGE_{name}") or fallback

    parser = _Parser(prog="python -m paper_exchange",
                     description="Local Alpaca-compatible paper exchange.")
    # string defaults pass through ``type`` too, so a malformed environment value is reported like an option
    parser.add_argument("--host", default=default("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=default("PORT", "18080"),
                        help="trading + market-data REST port (0 = any free port)")
    parser.add_argument("--stream-port", type=int, default=default("STREAM_PORT", "18082"),
                        help="market-data WebSocket port (0 = any free port)")
    parser.add_argument("--start", type=_start_time, default=default("START", None),
                        help="simulated start time, UTC, e.g. 2026-11-23T14:25:00Z (default: now)")
    parser.add_argument("--speed", type=_non_negative, default=default("SPEED", "1"),
                        help="simulated seconds per real second (default 1; 0 freezes the clock)")
    parser.add_argument("--seed", type=int, default=default("SEED", "42"))
    parser.add_argument("--cash", type=_cash, default=default("CASH", "100000"))
    parser.add_argument("--key", default=default("KEY", "demo-key"))
    parser.add_argument("--secret", default=default("SECRET", "demo-secret"))
    parser.add_argument("--stream-connection-limit", type=int,
                        default=default("STREAM_CONNECTION_LIMIT", "1"),
                        help="authenticated stream connections allowed at once (Alpaca: 1)")
    parser.add_argument("--stream-symbol-limit", type=int, default=default("STREAM_SYMBOL_LIMIT", "30"),
                        help="symbols one stream connection may subscribe to (Alpaca IEX: 30)")
    parser.add_argument("--stream-linger-seconds", type=_non_negative, default=default("STREAM_LINGER_SECONDS", "0"),
                        help="real seconds a connection that dropped uncleanly still counts against the limit")
    parser.add_argument("--thin-symbols", type=_thin, default=default("THIN_SYMBOLS", DEFAULT_PROFILES),
                        help="symbols the IEX feed sends sparsely: SYMBOL:EMPTY_SHARE[:CORRECTION_SHARE],... "
                             f"or none (default {DEFAULT_PROFILES})")
    parser.add_argument("--corporate-action", dest="corporate_actions", action="append",
                        default=(env.get("PAPER_EXCHANGE_CORPORATE_ACTIONS") or "").split(),
                        help="schedule a split or dividend: SYMBOL,TYPE,EX_DATE,RATE with RATE new:old for "
                             "splits (NVDA,forward_split,2026-11-24,10:1) or cash per share for "
                             "cash_dividend (KO,cash_dividend,2026-11-24,0.25); repeatable")
    parser.add_argument("--state", type=Path, default=default("STATE_DB", None),
                        help="SQLite file holding the account, orders, positions, fills and clock "
                             "(default: memory only, gone when the process stops)")
    parser.add_argument("--reset", action="store_true",
                        help="start a fresh account even if --state holds one")
    parser.add_argument("--log-level", type=str.upper, default=default("LOG_LEVEL", "INFO"),
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def _thin(raw: str) -> str:
    try:
        parse_profiles(raw)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return raw


def _start_time(raw: str):
    try:
        start = parse_utc(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a UTC time like 2026-11-23T14:25:00Z, got {raw!r}") from None
    if not CALENDAR_START < start.strftime("%Y-%m-%d") < CALENDAR_END:
        raise argparse.ArgumentTypeError(f"must lie between {CALENDAR_START} and {CALENDAR_END}")
    return start


def _non_negative(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {raw!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {raw!r}")
    return value


def _cash(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"must be a number, got {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {raw!r}")
    return value


def options_from(argv, env) -> Options:
    parser = _parser(env)
    args = parser.parse_args(argv)
    if args.stream_connection_limit < 1:
        parser.error("--stream-connection-limit must be at least 1")
    if args.stream_symbol_limit < 1:
        parser.error("--stream-symbol-limit must be at least 1")
    if not args.key or not args.secret:
        parser.error("--key and --secret must not be empty")
    if args.reset and not args.state:
        parser.error("--reset needs --state (a state file to reset)")
    try:
        actions = tuple(_corporate_action(raw) for raw in args.corporate_actions)
    except ActionError as error:
        parser.error(f"--corporate-action: {error}")
    return Options(host=args.host, port=args.port, stream_port=args.stream_port, start=args.start,
                   speed=args.speed, seed=args.seed, cash=args.cash, key=args.key, secret=args.secret,
                   stream_connection_limit=args.stream_connection_limit,
                   stream_symbol_limit=args.stream_symbol_limit, stream_linger_seconds=args.stream_linger_seconds,
                   thin_symbols=args.thin_symbols, log_level=args.log_level,
                   state_path=args.state, reset=args.reset, corporate_actions=actions)


def _corporate_action(raw: str):
    """``SYMBOL,TYPE,EX_DATE,RATE`` -> a validated action (dates and symbols checked by the exchange)."""
    parts = raw.split(",")
    if len(parts) != 4:
        raise ActionError(f"expected SYMBOL,TYPE,EX_DATE,RATE, got {raw!r}")
    symbol, kind, ex_date, rate = (part.strip() for part in parts)
    spec = {"symbol": symbol, "type": kind, "ex_date": ex_date}
    if kind == "cash_dividend":
        spec["rate"] = rate
    else:
        new, _, old = rate.partition(":")
        spec.update(new_rate=new, old_rate=old)
    return spec


def main(argv=None, env=None) -> int:
    env = os.environ if env is None else env
    options = options_from(argv, env)
    logging.basicConfig(level=options.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if options.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("binding to %s: the paper exchange is reachable beyond this machine", options.host)
    exchange = Exchange(options)
    try:
        rest_port, stream_port = exchange.start()
    except ActionError as error:
        exchange.stop()
        print(f"paper exchange: --corporate-action: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"paper exchange: cannot bind {options.host}: {error}", file=sys.stderr)
        return 1
    except sqlite3.Error as error:
        print(f"paper exchange: cannot use state file {options.state_path}: {error}", file=sys.stderr)
        return 1
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    print(f"paper exchange ready on http://{options.host}:{rest_port} stream ws://{options.host}:{stream_port} "
          f"(start {exchange.clock.now():%Y-%m-%dT%H:%M:%SZ}, speed {options.speed:g}, seed {options.seed})",
          flush=True)
    stopping.wait()
    exchange.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
