"""The wall's deeper views with long histories: a card's detail, the history view, the P&L split, the chart.

Run: .venv/bin/python -m bench.bench_wall [--transactions 100000] [--days 60]

Builds a temp system.db (one card with N transactions, a stopped card, 20 small cards) and a
stocks.db with ``--days`` sessions of minute bars for the tickers, then times the API's answers
through the Flask test client (no network): /api/algorithms/<id>/detail, /api/history,
/api/pnl-summary, and /api/algorithms/<id>/chart?zoom=all (indicators from a child process).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import api_server
from database import db_manager
from database.create_stocks_db import create_stocks_db
from database.market_calendar import nyse
from system_databse import system_db_manager
from system_databse.create_system_db import create_system_db


def build(system: Path, stocks: Path, transactions: int, days: int) -> int:
    create_system_db(system)
    conn = system_db_manager.get_connection(system)
    sessions = nyse().sessions_in_range("2026-08-03", "2026-11-20")[-days:]
    first = sessions[0].strftime("%Y-%m-%d")
    big = system_db_manager.create_algorithm("NVDA", "sma_crossover", 10_000_000, conn=conn)
    rows = [(big, "buy" if i % 2 == 0 else "sell", 10, 100.0 + (i % 50) * 0.01,
             f"{sessions[i % len(sessions)].strftime('%Y-%m-%d')}T15:{(i // len(sessions)) % 60:02d}:00Z")
            for i in range(transactions)]
    rows.sort(key=lambda r: r[4])
    fixed = []
    held = 0
    for card, side, shares, price, stamp in rows:  # keep it valid: never sell more than held
        side = "buy" if held < shares else side
        held += shares if side == "buy" else -shares
        fixed.append((card, side, shares, price, stamp))
    with system_db_manager.atomic(conn):
        conn.executemany("INSERT INTO transactions (algorithm_id, type, shares, price, timestamp) VALUES (?,?,?,?,?)", fixed)
        for _ in range(20):
            small = system_db_manager.create_algorithm("AAPL", "bollinger_reversion", 5_000, conn=conn)
            conn.execute("INSERT INTO transactions (algorithm_id, type, shares, price, timestamp) VALUES (?,?,?,?,?)",
                         (small, "buy", 5, 200.0, f"{first}T15:00:00Z"))
        conn.execute("UPDATE algorithm_instances SET created_at = ?", (f"{first}T13:00:00Z",))
    stopped = system_db_manager.create_algorithm("TSLA", "lot_take_profit", 5_000, conn=conn)
    system_db_manager.stop_algorithm(stopped, conn=conn)
    conn.close()
    create_stocks_db(stocks)
    market = db_manager.get_connection(stocks)
    rng = np.random.default_rng(7)
    for ticker in ("NVDA", "AAPL", "TSLA"):
        bars = []
        for session in sessions:
            minutes = nyse().session_minutes(session)
            closes = np.round(100 + np.cumsum(rng.normal(0, 0.05, len(minutes))), 2)
            bars += [{"ticker": ticker, "timestamp": m.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": c, "high": c, "low": c,
                      "close": c, "volume": 100} for m, c in zip(minutes, closes)]
        db_manager.upsert_bars(market, bars)
    market.close()
    return big


def timed(client, path: str, repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        runs.append(time.perf_counter() - started)
        assert response.status_code == 200, response.get_json()
    return statistics.median(runs) * 1000, max(runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        system, stocks = Path(tmp) / "system.db", Path(tmp) / "stocks.db"
        big = build(system, stocks, args.transactions, args.days)
        client = api_server.create_app({"SYSTEM_DB": system, "STOCKS_DB": stocks, "TESTING": True}).test_client()
        print(f"{args.transactions:,} transactions on one card, 21 more cards, {args.days} sessions of bars")
        for path in (f"/api/algorithms/{big}/detail", "/api/history", "/api/pnl-summary",
                     f"/api/algorithms/{big}/chart?zoom=today", f"/api/algorithms/{big}/chart?zoom=all"):
            median, worst = timed(client, path, args.repeat)
            print(f"{path:<40} median {median:8.1f} ms   max {worst:8.1f} ms")


if __name__ == "__main__":
    main()
