"""Last-50-bars lookups with 20 tickers x 200,000 minute bars loaded (an index range scan).

Run: .venv/bin/python -m bench.bench_stocks_db [--tickers 20 --bars 200000]
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from database import db_manager, market_calendar
from database.create_stocks_db import create_stocks_db

TS = market_calendar.TIMESTAMP_FORMAT


def load(conn, tickers: list[str], minutes: list[str]) -> float:
    started = time.perf_counter()
    for ticker in tickers:
        db_manager.upsert_bars(conn, ({"ticker": ticker, "timestamp": ts, "open": 100.0, "high": 101.0,
                                       "low": 99.0, "close": 100.5, "volume": 1000} for ts in minutes))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=20)
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    args = parser.parse_args()
    minutes = list(market_calendar.all_minutes()[: args.bars].strftime(TS))
    tickers = [f"T{i:02d}" for i in range(args.tickers)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stocks.db"
        create_stocks_db(path)
        conn = db_manager.get_connection(path)
        load_seconds = load(conn, tickers, minutes)
        rng = random.Random(7)
        timings = []
        for _ in range(args.lookups):
            ticker, until = rng.choice(tickers), rng.choice(minutes[50:])
            started = time.perf_counter()
            window = db_manager.get_last_bars(conn, ticker, 50, until=until)
            timings.append(time.perf_counter() - started)
            assert len(window) == 50
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT timestamp FROM bars WHERE ticker = ? AND timestamp <= ?"
                            " ORDER BY timestamp DESC LIMIT 50", ("T00", minutes[-1])).fetchall()
        conn.close()
        size_mb = path.stat().st_size / 1e6
    rows = args.tickers * args.bars
    print(f"loaded {rows:,} bars in {load_seconds:.1f}s ({rows / load_seconds:,.0f} rows/s), file {size_mb:.0f} MB")
    print(f"get_last_bars(50): median {statistics.median(timings) * 1000:.3f} ms,"
          f" p99 {sorted(timings)[int(len(timings) * 0.99)] * 1000:.3f} ms over {args.lookups} lookups")
    print("query plan:", " / ".join(row[-1] for row in plan))


if __name__ == "__main__":
    main()
