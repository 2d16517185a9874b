"""One busy minute: 100 cards on 25 tickers, every card trading, against the paper exchange with
Alpaca's rules on (fills after ~0.3 s, 200 requests a minute per key, wash-trade rejection).

Run: .venv/bin/python -m bench.bench_minute [--cards-per-ticker 4] [--tickers 25]

A warm-up minute has every card buy (half of them 10 shares, half 3); the measured minute then
has the "flip" cards sell their 10 and the "accumulate" cards buy 3 more, so per ticker the buys
cross with part of the sells and one net sell goes to the broker. Printed: the cards' decisions
(no broker round trip), the whole minute (decide, journal, send every ticker's order at once,
fills from the trade updates stream, record), orders sent, the REST requests the process made in
the minute and in the last 60 s, 429s, and the check that every card's shares add up to the
broker's position per ticker with no order refused.
"""
from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from database import db_manager, historical_pull
from database.create_stocks_db import create_stocks_db
from orchestra.alpaca_wrapper import AlpacaWrapper
from orchestra.card_runner import CardRunner
from shared.config import AlpacaSettings
from orchestra.cycle import Cycle
from orchestra.heartbeat import ErrorLog
from shared.request_budget import RequestBudget
from orchestra.trade_updates import TradeUpdates, stream_url
from shared.clock import make_clock
from orchestra.trader import Trader
from system_databse.positions import cards_by_ticker
from system_databse import system_db_manager as ledger
from system_databse.create_system_db import create_system_db

REPO = Path(__file__).resolve().parents[1]
START = "2026-11-23T15:00:00Z"  # a Monday, 10:00 New York
TICKERS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "SPY", "QQQ", "AMD", "JPM", "KO", "F", "IWM",
           "NFLX", "INTC", "CSCO", "PEP", "WMT", "DIS", "BAC", "XOM", "CVX", "PFE", "ORCL"]
ALGORITHMS = {
    "flip": '''"""Bench: buys 10 when flat, sells everything when holding."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        held = sum(t["shares"] if t["type"] == "buy" else -t["shares"] for t in transaction_history)
        return ("sell", held) if held else ("buy", 10)
''',
    "accumulate": '''"""Bench: buys 3 shares every minute."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        return ("buy", 3)
''',
}


def start_exchange(workdir: Path) -> tuple[subprocess.Popen, dict]:
    log = open(workdir / "exchange.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "paper_exchange", "--port", "0", "--stream-port", "0",
                                "--start", START, "--speed", "1", "--cash", "10000000", "--key", "bench-key",
                                "--secret", "bench-secret"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"ready on (http://\S+) stream (ws://\S+)", (workdir / "exchange.log").read_text())
        if found:
            rest, stream = found.groups()
            return process, {"ALPACA_API_KEY": "bench-key", "ALPACA_SECRET": "bench-secret", "ALPACA_PAPER": "True",
                             "ALPACA_FEED": "sip", "ALPACA_TRADING_URL": rest, "ALPACA_DATA_URL": rest,
                             "ALPACA_STREAM_URL": stream, "ALPACA_TRADE_STREAM_URL": stream}
        time.sleep(0.1)
    process.kill()
    raise SystemExit("the paper exchange did not start")


def build_desk(tmp: Path, settings: AlpacaSettings, tickers: list[str], per_ticker: int):
    create_system_db(tmp / "system.db")
    create_stocks_db(tmp / "stocks.db")
    conn, market = ledger.get_connection(tmp / "system.db"), db_manager.get_connection(tmp / "stocks.db")
    for ticker in tickers:
        historical_pull.backfill(market, ticker, now="2026-11-23T15:03:00Z", settings=settings, new_ticker_days=1)
        for index in range(per_ticker):
            ledger.create_algorithm(ticker, "flip" if index % 2 == 0 else "accumulate", 1_000_000.0, conn=conn)
    algorithms = tmp / "algorithms"
    algorithms.mkdir()
    for name, source in ALGORITHMS.items():
        (algorithms / f"{name}.py").write_text(source)
    return conn, market, algorithms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=25)
    parser.add_argument("--cards-per-ticker", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    tickers = TICKERS[:args.tickers]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        exchange, env = start_exchange(tmp)
        try:
            settings = AlpacaSettings.from_env(env)
            conn, market, algorithms = build_desk(tmp, settings, tickers, args.cards_per_ticker)
            budget = RequestBudget()
            broker = AlpacaWrapper(settings, budget=budget)
            updates = TradeUpdates(stream_url(settings), settings.api_key, settings.secret)
            updates.start()
            updates.wait_connected(10)
            clock = make_clock("broker", lambda: broker.get_clock().timestamp)  # the daemon's, with this exchange
            trader = Trader(broker, conn, now=clock.peek, updates=updates, fill_timeout=30)
            cycle = Cycle(ledger_conn=conn, market_conn=market, broker=broker, trader=trader, errors=ErrorLog(),
                          runner=CardRunner(market, conn, directory=algorithms))
            first = datetime(2026, 11, 23, 15, 1, tzinfo=timezone.utc)
            warm = cycle.run(first)
            before = budget.requests
            report = cycle.run(first + timedelta(minutes=1))
            used = budget.requests - before
            trades = [t for t in report.trades if t.status == "filled"]
            cards = cards_by_ticker(conn=conn)
            broker_positions = broker.get_positions()
            print(f"cards: {len(report.decisions)} on {len(tickers)} tickers "
                  f"(warm-up minute: {warm.orders_sent} orders, {warm.seconds:.2f} s)")
            print(f"decisions (no broker round trips): {report.decide_seconds * 1000:.1f} ms")
            print(f"whole minute's trading: {report.seconds:.2f} s")
            print(f"orders sent: {report.orders_sent}; card trades recorded: {len(trades)} "
                  f"({sum(1 for t in trades if t.crossed)} crossed inside the ledger)")
            print(f"REST requests in the minute: {used}; in the last 60 s: {budget.used_last_minute()} "
                  f"(budget {budget.per_minute}/min); 429 answers: {budget.refused}")
            failed = [t for t in report.trades + warm.trades if t.status != "filled"]
            agree = all(cards.get(t, 0) == broker_positions.get(t, 0) for t in tickers)
            print(f"failed or refused orders: {len(failed)}; cards == broker on every ticker: {agree}")
            updates.stop()
            conn.close()
            market.close()
            return 0 if agree and not failed else 1
        finally:
            exchange.terminate()
            exchange.wait(10)


if __name__ == "__main__":
    sys.exit(main())
