"""AutoTrader's trading daemon: runs every running card's algorithm each market minute.

    python orchestrator.py                 # the daemon (systemd: Type=notify)
    python orchestrator.py --once          # one cycle for the newest closed minute, then exit
    python orchestrator.py --once --dry-run  # print what each card would do now and why; no orders, no writes

SIGTERM (or Ctrl-C) finishes the current cycle and exits 0; SIGUSR1 dumps every thread's stack to
stderr (for a daemon that looks stuck). Settings come from the environment and ``.env``, read
once into ``shared.config.Settings`` (see ``.env.example``): the Alpaca keys and URLs,
``AUTOTRADER_CLOCK`` (system|broker), the algorithm folder and time limits, the database paths,
bar retention, notifications, the log folder and level. A bad value is one line and exit 2.
"""
from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys

from algorithms._params import ParameterError, split_assignment
from shared.config import ConfigError, Settings, load_env
from orchestra.exceptions import OperationalError, TemporaryError
from shared.clock import ClockUnavailable
from shared import private_files
from shared.logging_setup import setup_logging

logger = logging.getLogger("orchestrator")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="AutoTrader orchestrator: trades every market minute.")
    parser.add_argument("--once", action="store_true", help="run a single cycle now and exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="with --once: print each running card's decision and why; no orders, no writes")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="with --dry-run: use this parameter value on every card whose algorithm declares it")
    args = parser.parse_args(argv)
    if args.dry_run and not args.once:
        parser.error("--dry-run needs --once")
    if args.param and not args.dry_run:
        parser.error("--param needs --once --dry-run (a running card keeps the values it was created with)")
    try:
        args.parameters = dict(split_assignment(text) for text in args.param)
    except ParameterError as exc:
        parser.error(str(exc))
    return args


def _startup_line(settings: Settings, mode: str) -> str:
    alpaca, daemon = settings.broker, settings.daemon
    return (f"orchestrator {mode} (pid {os.getpid()}): {alpaca.mode} trading, {alpaca.feed} feed, "
            f"{daemon.clock} clock; broker {alpaca.trading_url or 'Alpaca'}; "
            f"algorithms from {daemon.algorithms_dir or 'algorithms/'}; "
            f"system.db {settings.databases.system_db}; stocks.db {settings.databases.stocks_db}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    private_files.restrict_new_files()
    load_env()
    try:
        settings = Settings.from_env(os.environ)
        setup_logging("orchestrator", settings)
        private_files.warn_if_exposed(private_files.private_paths(settings))
        from orchestra.daemon import Orchestrator

        mode = "dry run" if args.dry_run else ("single cycle" if args.once else "starting")
        logger.info(_startup_line(settings, mode))
        if not settings.broker.paper:
            logger.warning("LIVE trading: orders use real money")
        orchestrator = Orchestrator(settings, read_only=args.dry_run)
    except (ConfigError, OperationalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def stop(signum, _frame):
        orchestrator.request_stop(f"{signal.Signals(signum).name} received")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1 <pid>: stacks to stderr
    try:
        if args.once:
            try:
                return orchestrator.run_once(dry_run=args.dry_run, parameters=args.parameters)
            finally:
                orchestrator.close()
        return orchestrator.run_forever()
    except OperationalError as exc:
        logger.critical("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (TemporaryError, ClockUnavailable) as exc:
        logger.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
