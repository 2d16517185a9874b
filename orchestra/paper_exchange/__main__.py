"""``python -m orchestra.paper_exchange``: run the exchange until SIGINT/SIGTERM.

Every option also comes from the environment (``PAPER_EXCHANGE_<NAME>``); the command line
wins. Port 0 picks a free port; the ready line names the ports actually bound.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from decimal import Decimal, InvalidOperation

from .clock import CALENDAR_END, CALENDAR_START, parse_utc
from .server import Exchange, Options

logger = logging.getLogger("orchestra.paper_exchange")


def _parser(env) -> argparse.ArgumentParser:
    def default(name, fallback):
        return env.get(f"PAPER_EXCHANGE_{name}", fallback) or fallback

    parser = argparse.ArgumentParser(prog="python -m orchestra.paper_exchange",
                                     description="Local Alpaca-compatible paper exchange.")
    parser.add_argument("--host", default=default("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(default("PORT", "18080")),
                        help="trading + market-data REST port (0 = any free port)")
    parser.add_argument("--stream-port", type=int, default=int(default("STREAM_PORT", "18082")),
                        help="market-data WebSocket port (0 = any free port)")
    parser.add_argument("--start", default=default("START", None),
                        help="simulated start time, UTC, e.g. 2026-11-23T14:25:00Z (default: now)")
    parser.add_argument("--speed", type=float, default=float(default("SPEED", "1")),
                        help="simulated seconds per real second (default 1)")
    parser.add_argument("--seed", type=int, default=int(default("SEED", "42")))
    parser.add_argument("--cash", default=default("CASH", "100000"))
    parser.add_argument("--key", default=default("KEY", "demo-key"))
    parser.add_argument("--secret", default=default("SECRET", "demo-secret"))
    parser.add_argument("--stream-connection-limit", type=int,
                        default=int(default("STREAM_CONNECTION_LIMIT", "1")),
                        help="authenticated stream connections allowed at once (Alpaca: 1)")
    parser.add_argument("--log-level", default=default("LOG_LEVEL", "INFO"))
    return parser


def options_from(argv, env) -> Options:
    parser = _parser(env)
    try:
        args = parser.parse_args(argv)
    except ValueError as error:  # a malformed number in the environment
        parser.error(str(error))
    try:
        start = parse_utc(args.start) if args.start else None
    except ValueError:
        parser.error(f"--start must be a UTC time like 2026-11-23T14:25:00Z, got {args.start!r}")
    if start is not None and not CALENDAR_START < start.strftime("%Y-%m-%d") < CALENDAR_END:
        parser.error(f"--start must lie between {CALENDAR_START} and {CALENDAR_END}")
    try:
        cash = Decimal(args.cash)
    except InvalidOperation:
        parser.error(f"--cash must be a number, got {args.cash!r}")
    if args.speed < 0 or cash < 0 or args.stream_connection_limit < 1:
        parser.error("--speed and --cash must be >= 0 and --stream-connection-limit >= 1")
    if not args.key or not args.secret:
        parser.error("--key and --secret must not be empty")
    return Options(host=args.host, port=args.port, stream_port=args.stream_port, start=start,
                   speed=args.speed, seed=args.seed, cash=cash, key=args.key, secret=args.secret,
                   stream_connection_limit=args.stream_connection_limit)


def main(argv=None, env=None) -> int:
    env = os.environ if env is None else env
    try:
        options = options_from(argv, env)
    except ValueError as error:
        print(f"paper exchange: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=env.get("PAPER_EXCHANGE_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if options.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("binding to %s: the paper exchange is reachable beyond this machine", options.host)
    exchange = Exchange(options)
    try:
        rest_port, stream_port = exchange.start()
    except OSError as error:
        print(f"paper exchange: cannot bind {options.host}: {error}", file=sys.stderr)
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
