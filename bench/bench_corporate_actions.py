"""A split on a ticker with a full retention window of stored bars, and on cards with long histories.

Run: .venv/bin/python -m bench.bench_corporate_actions [--days 400 --cards 20 --trades 5000]

Measures what the daemon does once when a split is read: scaling the ticker's stored bars in one
transaction (``db_manager.adjust_bars_for_split``; the write lock is held that long), recording it
on every card holding the ticker (``record_corporate_action``), and what a card's totals cost
afterwards (``get_position_totals`` with the corporate-action aggregate).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from database import db_manager, market_calendar
from database.create_stocks_db import create_stocks_db
from system_databse import system_db_manager as ledger
from system_databse.create_system_db import create_system_db

TS = market_calendar.TIMESTAMP_FORMAT


def bars(minutes: list[str]):
    return ({"ticker": "NVDA", "timestamp": ts, "open": 140.0, "high": 141.0, "low": 139.0, "close": 140.5,
             "volume": 1000, "vwap": 140.2} for ts in minutes)


def bench_bars(days: int) -> None:
    minutes = list(market_calendar.all_minutes()[: days * 390].strftime(TS))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stocks.db"
        create_stocks_db(path)
        conn = db_manager.get_connection(path)
        db_manager.upsert_bars(conn, bars(minutes))
        ex_open = market_calendar.to_utc_string(market_calendar.next_open(minutes[-1]))
        started = time.perf_counter()
        rows = db_manager.adjust_bars_for_split(conn, "split", "NVDA", ex_open[:10], ex_open, 0.1, ex_open)
        seconds = time.perf_counter() - started
        again = time.perf_counter()
        db_manager.adjust_bars_for_split(conn, "split", "NVDA", ex_open[:10], ex_open, 0.1, ex_open)
        print(f"adjust_bars_for_split: {rows:,} bars ({days} days) in {seconds * 1000:.0f} ms "
              f"({rows / seconds:,.0f} rows/s); re-read (already applied): {(time.perf_counter() - again) * 1000:.2f} ms")
        conn.close()


def bench_ledger(cards: int, trades: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "system.db"
        create_system_db(path)
        conn = ledger.get_connection(path)
        ids = [ledger.create_algorithm("NVDA", "x", 10_000_000, conn=conn) for _ in range(cards)]
        with ledger.atomic(conn):
            for card in ids:
                for i in range(trades // 2):  # buy 2, sell 1: the card keeps a growing position
                    month = f"2026-{1 + i // 1000 % 10:02d}-01"
                    ledger.record_buy(card, 2, 140.0, timestamp=f"{month}T15:00:00Z", conn=conn)
                    ledger.record_sell(card, 1, 141.0, timestamp=f"{month}T15:00:01Z", conn=conn)
        action = {"id": "split", "symbol": "NVDA", "kind": "forward_split", "ex_date": "2026-11-24",
                  "effective_at": "2026-11-24T14:30:00Z", "new_rate": 10, "old_rate": 1}
        started = time.perf_counter()
        written = ledger.record_corporate_action(action, conn=conn)
        seconds = time.perf_counter() - started
        samples = []
        for _ in range(50):
            t = time.perf_counter()
            ledger.get_position_totals(ids[0], conn=conn)
            samples.append(time.perf_counter() - t)
        print(f"record_corporate_action: {len(written)} cards x {trades:,} trades in {seconds * 1000:.0f} ms; "
              f"get_position_totals afterwards: median {statistics.median(samples) * 1000:.2f} ms")
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=400, help="trading days of minute bars (the retention default)")
    parser.add_argument("--cards", type=int, default=20)
    parser.add_argument("--trades", type=int, default=5_000, help="transactions per card")
    args = parser.parse_args()
    bench_bars(args.days)
    bench_ledger(args.cards, args.trades)


if __name__ == "__main__":
    main()
