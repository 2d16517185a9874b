"""Run the whole system in the foreground: paper exchange (when configured), orchestrator, API.

``./scripts/start`` sets things up and then runs this. It prints the dashboard URL, and Ctrl-C
(or SIGTERM) stops every process it started. If any of them dies, the others are stopped too,
so nothing is left half-running.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Mapping, Optional
from urllib.parse import urlparse

from database import market_calendar
from shared import private_files
from shared.broker_errors import BrokerError
from shared.config import REPO_ROOT, ConfigError, Settings, load_env
from algorithms import available_algorithms
from scripts.services import TRADING_CLOCK_WITH_THE_EXCHANGE
from system_databse import system_db_manager

logger = logging.getLogger("launcher")
PYTHON = sys.executable
DEMO_CARDS = (("NVDA", "sma_crossover", 10_000.0), ("AAPL", "bollinger_reversion", 10_000.0),
              ("TSLA", "lot_take_profit", 10_000.0))


def answers_http(url: str) -> bool:
    """True if anything answers HTTP at ``url`` (any status counts: the server is up)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Child:
    name: str
    argv: list[str]
    ready_url: Optional[str] = None
    extra_env: dict[str, str] = field(default_factory=dict, repr=False)
    process: Optional[subprocess.Popen] = field(default=None, repr=False)


class Supervisor:
    """Starts children in order, waits for each to answer, and stops them all in reverse."""

    def __init__(self, env: Mapping[str, str]):
        self.env = dict(env)
        self.children: list[Child] = []

    def start(self, child: Child, timeout: float = 90.0, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Start ``child`` and wait until it answers (or a stop is requested meanwhile)."""
        logger.info("starting %s", child.name)
        child.process = subprocess.Popen(child.argv, cwd=REPO_ROOT, env={**self.env, **child.extra_env})
        self.children.append(child)
        deadline = time.monotonic() + timeout
        while child.ready_url and not answers_http(child.ready_url) and not should_stop():
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with code {child.process.returncode} while starting")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} did not answer at {child.ready_url} within {timeout:g}s")
            time.sleep(0.3)

    def first_exited(self) -> Optional[Child]:
        return next((c for c in self.children if c.process and c.process.poll() is not None), None)

    def stop_all(self, grace: float = 30.0) -> None:
        """Stop the children one by one, last started first: the orchestrator finishes its cycle
        (an order in flight settles) while the exchange it trades with still answers."""
        deadline = time.monotonic() + grace
        for child in reversed(self.children):
            if child.process is None:
                continue
            if child.process.poll() is None:
                logger.info("stopping %s", child.name)
                child.process.terminate()
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %gs; killing it", child.name, grace)
                child.process.kill()
                child.process.wait()


def demo_start_time(now: datetime) -> str:
    """The simulated start for a demo: now while the market is open, else just before the next open."""
    if market_calendar.is_open(now):
        return market_calendar.to_utc_string(now)
    return market_calendar.to_utc_string(market_calendar.next_open(now) - timedelta(minutes=2))


def exchange_child(settings: Settings, reset: bool = False) -> Child:
    """The paper exchange on the configured ports, with its account in its state file.

    ``--start`` only matters for a new account: a saved one resumes its own clock.
    """
    broker = settings.broker
    trading, stream = urlparse(broker.trading_url or ""), urlparse(broker.stream_url or "")
    if not (trading.port and stream.port):
        raise ConfigError("RUN_PAPER_EXCHANGE=true needs ALPACA_TRADING_URL and ALPACA_STREAM_URL with ports")
    start = settings.exchange.start or demo_start_time(datetime.now(timezone.utc))
    argv = [PYTHON, "-m", "paper_exchange", "--host", trading.hostname, "--port", str(trading.port),
            "--stream-port", str(stream.port), "--start", start, "--state", str(settings.exchange_state_db)]
    if reset:
        argv.append("--reset")
    keys = {"PAPER_EXCHANGE_KEY": broker.api_key, "PAPER_EXCHANGE_SECRET": broker.secret}  # not in `ps`
    return Child("paper exchange", argv, ready_url=f"{broker.trading_url}/v2/clock", extra_env=keys)


def exchange_time(settings: Settings) -> str:
    """The paper exchange's own clock (``/v2/clock``): a saved account resumes its clock, which may be
    hours or days from this computer's, and the demo's cards live in its sessions."""
    from api.broker_reader import BrokerReader
    from shared.clock import stamp

    return stamp(BrokerReader(settings.broker).get_clock().timestamp)


def seed_demo_cards(system_db: Path, created_at: str) -> list[int]:
    """Give a brand-new demo something to trade: only when the ledger has never had a card.
    ``created_at``: the exchange's clock, the trading clock of the demo."""
    conn = system_db_manager.get_connection(system_db)
    try:
        if system_db_manager.get_all_algorithms(conn=conn):
            return []
        known = {info.name for info in available_algorithms()}
        return [system_db_manager.create_algorithm(ticker, algo, capital, created_at=created_at, conn=conn)
                for ticker, algo, capital in DEMO_CARDS if algo in known]
    finally:
        conn.close()


def plan(settings: Settings, reset_exchange: bool = False) -> list[Child]:
    """The processes to run, in start order."""
    settings.broker  # every child needs the keys: say which one is missing before starting any
    children = [exchange_child(settings, reset_exchange)] if settings.exchange.run else []
    children.append(Child("orchestrator", [PYTHON, str(REPO_ROOT / "orchestrator.py")]))
    children.append(Child("API server", [PYTHON, str(REPO_ROOT / "api_server.py")],
                          ready_url=f"{settings.api.dashboard_url}api/health"))
    if not settings.api.is_loopback:
        logger.warning("the API binds to %s: the dashboard is reachable from other machines", settings.api.host)
    return children


def private_paths(settings: Settings) -> list[Path]:
    """Keys, ledger, logs, and the exchange's state when this checkout runs the exchange."""
    return private_files.private_paths(settings, [settings.exchange_state_db] if settings.exchange.run else [])


def warn_about_open_files(settings: Settings) -> None:
    """Start-up check: keys, ledger, exchange state and logs readable only by their owner."""
    for line in private_files.exposed(private_paths(settings)):
        print(f"WARNING: {line}", flush=True)


def with_trading_clock(env: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """``env`` with the trading clock the processes must share: the local exchange's, when it runs."""
    if not settings.exchange.run:
        return dict(env)
    if settings.daemon.clock != "broker":
        logger.warning("AUTOTRADER_CLOCK=%s ignored: with the local paper exchange its simulated clock is the "
                       "trading clock", settings.daemon.clock)
    return {**env, **TRADING_CLOCK_WITH_THE_EXCHANGE}


def run(env: Mapping[str, str], settings: Settings, reset_exchange: bool = False) -> int:
    """Start the plan's children with ``env`` (the process environment, .env included) and watch them."""
    env = with_trading_clock(env, settings)
    warn_about_open_files(settings)
    supervisor = Supervisor(env)
    stopping = False

    def request_stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        for child in plan(settings, reset_exchange):
            supervisor.start(child, should_stop=lambda: stopping)
            if stopping:
                return 0
            if child.name == "paper exchange" and (
                    created := seed_demo_cards(settings.databases.system_db, exchange_time(settings))):
                print(f"Created {len(created)} demo cards on the paper exchange (ids {created}).", flush=True)
        print(f"AutoTrader is running. Dashboard: {settings.api.dashboard_url}  (PIN 2020 until you change it)",
              flush=True)
        print("Press Ctrl-C to stop everything.", flush=True)
        while not stopping:
            exited = supervisor.first_exited()
            if exited:
                logger.error("%s exited with code %s; stopping the rest", exited.name, exited.process.returncode)
                return 1
            time.sleep(0.5)
        return 0
    except (ConfigError, RuntimeError, OSError, BrokerError) as exc:
        logger.error("%s", exc)
        return 1
    finally:
        supervisor.stop_all()
        print("AutoTrader stopped.", flush=True)


def exec_exchange(env: Mapping[str, str], settings: Settings, reset: bool = False) -> int:
    """Become the paper exchange the settings point at (the exchange's systemd unit runs this)."""
    try:
        child = exchange_child(settings, reset)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.execvpe(child.argv[0], child.argv, {**env, **child.extra_env})
    return 1  # not reached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchange-only", action="store_true",
                        help="run only the paper exchange, on the ports and keys the settings name")
    parser.add_argument("--reset-exchange", action="store_true",
                        help="give the local paper exchange a fresh account (cash, no positions, no orders)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s launcher %(levelname)s %(message)s")
    private_files.restrict_new_files()  # inherited by every process it starts
    load_env()
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.exchange_only:
        return exec_exchange(os.environ, settings, args.reset_exchange)
    return run(os.environ, settings, args.reset_exchange)


if __name__ == "__main__":
    sys.exit(main())
