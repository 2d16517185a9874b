"""Exports of the ledger: every fill as CSV, and realized P&L per card and tax year (FIFO).

Used by ``python -m scripts.export`` and by the API's authenticated export endpoints, so both
give the same rows. One CSV row per fill: card, ticker, side, shares, price, value, order id,
time (UTC). The realized report replays each card's whole history (a lot bought before the
requested period still has its real entry price) and lists the sales whose trade date falls in
each year on the exchange (America/New_York), with the dividends by ex-date year in their own column.
"""
from __future__ import annotations

import csv
import io
import sqlite3
from typing import Any, Dict, List, Optional

from system_databse import fifo, system_db_manager

TRANSACTION_COLUMNS = ("card_id", "card", "ticker", "side", "shares", "price", "value", "order_id", "time_utc")
REALIZED_COLUMNS = ("card_id", "card", "ticker", "year", "shares_sold", "proceeds", "cost_basis", "realized_pnl",
                    "dividends")


def day_bounds(start_day: Optional[str], end_day: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """UTC bounds for "YYYY-MM-DD" days, both inclusive: [start 00:00, day after end 00:00)."""
    from datetime import date, timedelta

    start = f"{date.fromisoformat(start_day).isoformat()}T00:00:00Z" if start_day else None
    end = f"{(date.fromisoformat(end_day) + timedelta(days=1)).isoformat()}T00:00:00Z" if end_day else None
    return start, end


def transaction_rows(conn: sqlite3.Connection, card_id: Optional[int] = None, start_day: Optional[str] = None,
                     end_day: Optional[str] = None) -> List[Dict[str, Any]]:
    start, end = day_bounds(start_day, end_day)
    rows = system_db_manager.get_transactions_between(card_id, start, end, conn=conn)
    return [{"card_id": r["algorithm_id"], "card": r["display_name"], "ticker": r["ticker"], "side": r["type"],
             "shares": r["shares"], "price": r["price"], "value": fifo.cents(r["shares"] * r["price"]),
             "order_id": r["broker_order_id"] or r["client_order_id"] or "", "time_utc": r["timestamp"]}
            for r in rows]


def realized_rows(conn: sqlite3.Connection, card_id: Optional[int] = None, start_day: Optional[str] = None,
                  end_day: Optional[str] = None) -> List[Dict[str, Any]]:
    """One row per card and year with sales; years limited to those of ``start_day``..``end_day``."""
    first = int(start_day[:4]) if start_day else None
    last = int(end_day[:4]) if end_day else None
    cards = [system_db_manager.get_algorithm(card_id, conn=conn)] if card_id is not None else \
        system_db_manager.get_all_algorithms(conn=conn)
    result = []
    for card in filter(None, cards):
        matched = fifo.match(system_db_manager.get_transactions_between(card["id"], conn=conn),
                             system_db_manager.get_corporate_action_effects(card["id"], conn=conn))
        for year, figures in fifo.realized_by_year(matched).items():
            if (first is None or year >= first) and (last is None or year <= last):
                result.append({"card_id": card["id"], "card": card["display_name"], "ticker": card["ticker"],
                               "year": year, "shares_sold": figures["shares"], "proceeds": figures["proceeds"],
                               "cost_basis": figures["cost"], "realized_pnl": figures["realized_pnl"],
                               "dividends": figures["dividends"]})
    return result


def to_csv(rows: List[Dict[str, Any]], columns: tuple) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row[c]) for c in columns})
    return out.getvalue()


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (a card name never starts with one, but be sure)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
