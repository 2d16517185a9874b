"""Exports of the ledger: every fill as CSV, and realized P&L per card and tax year (FIFO).

Used by ``python -m scripts.export`` and by the API's authenticated export endpoints, so both
give the same rows. One CSV row per fill: card, ticker, side, shares, price, value, order id,
time (UTC); the owner's deposits into and withdrawals from a card are rows of their own in the
same file, in time order (side ``deposit`` or ``withdrawal``, the amount as the value, no shares,
price or order). They move no shares and realize nothing, so the realized report leaves them out. The realized report replays each card's whole history (a lot bought before the
requested period still has its real entry price) and lists the sales whose trade date falls in
each year on the exchange (America/New_York), with the dividends by ex-date year in their own column.

The realized file's ``row`` column says what each row is: ``card`` (a card's year, with the
losses of its sales that the broker disallows as wash sales), ``wash_sale`` (one loss sale and
the purchase, by any card, that replaced it within 30 days: the shares, their loss, the amount
disallowed, the replacement's card and date) and ``year_total`` (the year's sums over the cards
listed, among them the disallowed losses to set beside the 1099-B). See ``wash_sales``.
"""
from __future__ import annotations

import csv
import io
import sqlite3
from typing import Any, Dict, List, Optional

from system_databse import fifo, system_db_manager, wash_sales

TRANSACTION_COLUMNS = ("card_id", "card", "ticker", "side", "shares", "price", "value", "order_id", "time_utc")
REALIZED_COLUMNS = ("row", "card_id", "card", "ticker", "year", "shares_sold", "proceeds", "cost_basis",
                    "realized_pnl", "dividends", "wash_sale_disallowed", "sale_date", "replacement_card_id",
                    "replacement_card", "replacement_date")


def day_bounds(start_day: Optional[str], end_day: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """UTC bounds for "YYYY-MM-DD" days, both inclusive: [start 00:00, day after end 00:00)."""
    from datetime import date, timedelta

    start = f"{date.fromisoformat(start_day).isoformat()}T00:00:00Z" if start_day else None
    end = f"{(date.fromisoformat(end_day) + timedelta(days=1)).isoformat()}T00:00:00Z" if end_day else None
    return start, end


def transaction_rows(conn: sqlite3.Connection, card_id: Optional[int] = None, start_day: Optional[str] = None,
                     end_day: Optional[str] = None) -> List[Dict[str, Any]]:
    """Fills and capital moves, oldest first (a fill before a move of the same second)."""
    start, end = day_bounds(start_day, end_day)
    rows = system_db_manager.get_transactions_between(card_id, start, end, conn=conn)
    fills = [{"card_id": r["algorithm_id"], "card": r["display_name"], "ticker": r["ticker"], "side": r["type"],
              "shares": r["shares"], "price": r["price"], "value": fifo.cents(r["shares"] * r["price"]),
              "order_id": r["broker_order_id"] or r["client_order_id"] or "", "time_utc": r["timestamp"]}
             for r in rows]
    moves = [{"card_id": m["algorithm_id"], "card": m["display_name"], "ticker": m["ticker"], "side": m["kind"],
              "shares": "", "price": "", "value": fifo.cents(m["amount"]), "order_id": "", "time_utc": m["timestamp"]}
             for m in system_db_manager.get_capital_moves(card_id, start, end, conn=conn)]
    return sorted(fills + moves, key=lambda row: row["time_utc"])  # stable: each list keeps its own order


def realized_rows(conn: sqlite3.Connection, card_id: Optional[int] = None, start_day: Optional[str] = None,
                  end_day: Optional[str] = None) -> List[Dict[str, Any]]:
    """One row per card and year with sales, then the wash sales, then each year's totals;
    years limited to those of ``start_day``..``end_day`` (the year of a sale's trade date)."""
    first = int(start_day[:4]) if start_day else 0
    last = int(end_day[:4]) if end_day else 9999

    def wanted(year: int) -> bool:
        return first <= year <= last

    everyone = system_db_manager.get_all_algorithms(conn=conn)
    shown = [c for c in everyone if card_id is None or c["id"] == card_id]
    histories = _histories(conn, [c for c in everyone if c["ticker"] in {s["ticker"] for s in shown}])
    shown_ids = {c["id"] for c in shown}
    washes = [w for w in wash_sales.find(histories.values()) if w.card_id in shown_ids and wanted(w.year)]
    rows = []
    for card in shown:
        disallowed = wash_sales.disallowed_by_year(w for w in washes if w.card_id == card["id"])
        for year, figures in fifo.realized_by_year(histories[card["id"]]["fifo"]).items():
            if wanted(year):
                rows.append({**_blank(), "row": "card", **_card(card), "year": year, "shares_sold": figures["shares"],
                             "proceeds": figures["proceeds"], "cost_basis": figures["cost"],
                             "realized_pnl": figures["realized_pnl"], "dividends": figures["dividends"],
                             "wash_sale_disallowed": disallowed.get(year, 0.0)})
    names = {c["id"]: c for c in everyone}
    rows += [_wash_row(w, names) for w in washes]
    return rows + _year_totals(rows)


def _histories(conn: sqlite3.Connection, cards: List[Dict[str, Any]]) -> Dict[int, Dict[str, Any]]:
    """Each card's fills, corporate actions and FIFO replay: what the report and the wash sales read."""
    found = {}
    for card in cards:
        history = {"id": card["id"], "ticker": card["ticker"],
                   "transactions": system_db_manager.get_transactions_between(card["id"], conn=conn),
                   "actions": system_db_manager.get_corporate_action_effects(card["id"], conn=conn)}
        found[card["id"]] = {**history, "fifo": fifo.match(history["transactions"], history["actions"])}
    return found


def _blank() -> Dict[str, Any]:
    return {column: "" for column in REALIZED_COLUMNS}


def _card(card: Dict[str, Any]) -> Dict[str, Any]:
    return {"card_id": card["id"], "card": card["display_name"], "ticker": card["ticker"]}


def _wash_row(wash: wash_sales.WashSale, cards: Dict[int, Dict[str, Any]]) -> Dict[str, Any]:
    replacement = cards[wash.replacement_card_id]
    return {**_blank(), "row": "wash_sale", **_card(cards[wash.card_id]), "year": wash.year,
            "shares_sold": fifo.quantity(wash.shares), "proceeds": fifo.cents(wash.proceeds),
            "cost_basis": fifo.cents(wash.cost), "realized_pnl": fifo.cents(-wash.disallowed),
            "wash_sale_disallowed": fifo.cents(wash.disallowed),
            "sale_date": wash_sales.trade_date(wash.sold_at).isoformat(),
            "replacement_card_id": replacement["id"], "replacement_card": replacement["display_name"],
            "replacement_date": wash_sales.trade_date(wash.replacement_at).isoformat()}


def _year_totals(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per year, the sums of the card rows (the wash-sale rows detail them and are not added again)."""
    sums: Dict[int, Dict[str, float]] = {}
    columns = ("shares_sold", "proceeds", "cost_basis", "realized_pnl", "dividends", "wash_sale_disallowed")
    for row in rows:
        if row["row"] == "card":
            year = sums.setdefault(row["year"], dict.fromkeys(columns, 0.0))
            for column in columns:
                year[column] += row[column]
    return [{**_blank(), "row": "year_total", "year": year, "shares_sold": fifo.quantity(figures["shares_sold"]),
             **{c: fifo.cents(figures[c]) for c in columns[1:]}} for year, figures in sorted(sums.items())]


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
