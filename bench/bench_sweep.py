"""Sweep throughput: sma_crossover's 25-combination grid over synthetic minute bars, on 1 and 2 cores.

    .venv/bin/python -m bench.bench_sweep [--start 2024-01-02 --end 2024-03-28 --seed 7]

Reports combinations x in-sample bars per second (the ranking pass of ``scripts.sweep``; the
out-of-sample pass replays only the top 10) for 1 worker and for every core.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_backtest import TICKER, synthetic_bars
from database import db_manager
from database.create_stocks_db import create_stocks_db
from scripts import sweep

GRID = ["fast=10:30:5", "slow=40:80:10"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2024-01-02")
    parser.add_argument("--end", default="2024-03-28")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stocks.db"
        create_stocks_db(path)
        conn = db_manager.get_connection(path)
        db_manager.upsert_bars(conn, synthetic_bars(args.start, args.end, args.seed))
        for workers in sorted({1, os.cpu_count() or 1}):
            started = time.perf_counter()
            found = sweep.sweep("sma_crossover", TICKER, f"{args.start}T00:00:00Z", f"{args.end}T23:59:59Z",
                                10_000.0, GRID, conn=conn, workers=workers)
            total = time.perf_counter() - started
            rate = found["combinations"] * found["in_bars"] / found["seconds"]
            print(f"{workers} worker(s): {found['combinations']} combinations x {found['in_bars']:,} bars in "
                  f"{found['seconds']:.2f} s = {rate:,.0f} combination-bars/s "
                  f"({total:.2f} s in all, with loading and the out-of-sample pass)")
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
