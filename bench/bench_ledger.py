"""How long a card's numbers take with 100,000 transactions (the SQL aggregate path).

Run: .venv/bin/python -m bench.bench_ledger [--transactions 100000]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from system_databse import card_calculations, system_db_manager
from system_databse.create_system_db import create_system_db


def build_card(conn, transactions: int) -> int:
    card = system_db_manager.create_algorithm("AAPL", "bench", 1_000_000, conn=conn)
    rows = [(card, "buy" if i % 2 == 0 else "sell", 10, 100.0 + (i % 50) * 0.01, f"2026-01-02T14:{i % 60:02d}:00Z")
            for i in range(transactions)]
    with system_db_manager.atomic(conn):
        conn.executemany("INSERT INTO transactions (algorithm_id, type, shares, price, timestamp) VALUES (?,?,?,?,?)", rows)
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "system.db"
        create_system_db(path)
        conn = system_db_manager.get_connection(path)
        card = build_card(conn, args.transactions)
        for _ in range(20):  # another 20 small cards, as on a real wall
            build_card(conn, 50)
        timings = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            view = card_calculations.get_algorithm_with_calculations(card, 101.0, conn=conn)
            timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        totals = system_db_manager.get_all_position_totals(conn=conn)
        all_cards = time.perf_counter() - started
        conn.close()
    print(f"card with {args.transactions:,} transactions: trade_count={view['trade_count']:,} pnl={view['pnl']}")
    print(f"get_algorithm_with_calculations: median {statistics.median(timings) * 1000:.2f} ms,"
          f" max {max(timings) * 1000:.2f} ms over {args.repeat} runs")
    print(f"get_all_position_totals ({len(totals)} cards): {all_cards * 1000:.2f} ms")


if __name__ == "__main__":
    main()
