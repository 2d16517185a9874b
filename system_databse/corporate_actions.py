"""Splits and dividends as they affected each card, applied once per (card, action)."""
from __future__ import annotations

import sqlite3
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Dict, Iterable, List, Optional

from system_databse.connection import (LedgerError, atomic, check_price, ledger_stamp, rows_by_card,
                                        use_connection)
from system_databse.connection import normalize_ticker
from system_databse.orders import open_order_tickers
from system_databse.transactions import EMPTY, holdings
from shared.shares import NANO

CORPORATE_ACTION_KINDS = ("forward_split", "reverse_split", "cash_dividend")


class OrderStillOpen(LedgerError):
    """A corporate action on a ticker whose order is still open: apply it once the order is settled."""
_NINE_PLACES = Decimal("0.000000001")  # Alpaca reports fractional quantities to 9 decimals
_CENT = Decimal("0.01")


def position_at(algo_id: int, moment: str, *, conn: Optional[sqlite3.Connection] = None) -> Decimal:
    """Shares (whole plus fractional) a card held just before ``moment``: trades and earlier actions."""
    with use_connection(conn) as c:
        held = holdings(c, [algo_id], before=moment).get(algo_id, EMPTY)["nano"]
    return Decimal(held) / NANO


def corporate_action_effect(kind: str, held: Decimal, *, old_rate: Optional[float] = None,
                            new_rate: Optional[float] = None, rate: Optional[float] = None) -> Dict[str, Any]:
    """What one action does to ``held`` shares: the broker's arithmetic (qty x new/old to 9 decimals,
    whole shares and the fractional remainder kept; dividend = qty x rate in cents)."""
    if kind not in CORPORATE_ACTION_KINDS:
        raise LedgerError(f"unknown corporate action kind {kind!r}")
    whole = int(held)
    if kind == "cash_dividend":
        per_share = Decimal(repr(check_price(rate, "dividend rate")))
        cash = (held * per_share).quantize(_CENT, rounding=ROUND_HALF_UP)
        return {"share_change": 0, "fractional_change": 0.0, "cash": float(cash)}
    ratio = Decimal(repr(check_price(new_rate, "new_rate"))) / Decimal(repr(check_price(old_rate, "old_rate")))
    after = (held * ratio).quantize(_NINE_PLACES)
    whole_after = int(after)
    return {"share_change": whole_after - whole,
            "fractional_change": float((after - whole_after) - (held - whole)), "cash": 0.0}


def record_corporate_action(action: Dict[str, Any], *, recorded_at: Optional[str] = None,
                            conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Apply one corporate action to every card holding its ticker at the ex-date open, once.

    ``action``: id, symbol, kind, ex_date, effective_at (UTC open of the ex-date) and old_rate/new_rate
    (splits) or rate (dividends). Holdings are taken from trades before ``effective_at``, so the
    result is the same whenever it is recorded; a (card, action) pair already recorded is left
    alone. Returns the rows written now. ``recorded_at`` is the trading clock's stamp (the
    computer's clock for a call without one).

    Refused (LedgerError) while an order on the symbol is open: its fill, once settled, may belong
    before the ex-date, and the action must see it (a buy earns the dividend, a sell does not).
    """
    symbol = normalize_ticker(action["symbol"])
    recorded = ledger_stamp(recorded_at)
    written = []
    with use_connection(conn) as c, atomic(c):
        if symbol in open_order_tickers(conn=c):
            raise OrderStillOpen(f"{symbol}: an order is still open; its corporate action waits until it is settled")
        cards = c.execute("SELECT id FROM algorithm_instances WHERE ticker = ? ORDER BY id", (symbol,)).fetchall()
        for card in cards:
            held = position_at(card["id"], action["effective_at"], conn=c)
            if held <= 0:
                continue
            effect = corporate_action_effect(action["kind"], held, old_rate=action.get("old_rate"),
                                             new_rate=action.get("new_rate"), rate=action.get("rate"))
            row = {"algorithm_id": card["id"], "action_id": str(action["id"]), "ticker": symbol,
                   "kind": action["kind"], "ex_date": action["ex_date"], "effective_at": action["effective_at"],
                   "old_rate": action.get("old_rate"), "new_rate": action.get("new_rate"), "rate": action.get("rate"),
                   "shares_before": float(held), **effect, "recorded_at": recorded}
            cur = c.execute(
                "INSERT OR IGNORE INTO corporate_action_effects (algorithm_id, action_id, ticker, kind, ex_date,"
                " effective_at, old_rate, new_rate, rate, shares_before, share_change, fractional_change, cash,"
                " recorded_at) VALUES (:algorithm_id, :action_id, :ticker, :kind, :ex_date, :effective_at,"
                " :old_rate, :new_rate, :rate, :shares_before, :share_change, :fractional_change, :cash,"
                " :recorded_at)", row)
            if cur.rowcount == 1:
                written.append(row)
    return written


def get_corporate_action_effects(algo_id: Optional[int], *,
                                 conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """A card's corporate actions (every card's with None), oldest first."""
    with use_connection(conn) as c:
        if algo_id is None:
            rows = c.execute("SELECT * FROM corporate_action_effects ORDER BY effective_at, id").fetchall()
        else:
            rows = c.execute("SELECT * FROM corporate_action_effects WHERE algorithm_id = ?"
                             " ORDER BY effective_at, id", (algo_id,)).fetchall()
    return [dict(r) for r in rows]


def get_corporate_action_effects_by_card(algo_ids: Iterable[int], *, conn: Optional[sqlite3.Connection] = None
                                         ) -> Dict[int, List[Dict[str, Any]]]:
    """Each card's corporate actions, oldest first, in one query."""
    return rows_by_card("SELECT * FROM corporate_action_effects WHERE algorithm_id IN ({ids})"
                         " ORDER BY algorithm_id, effective_at, id", algo_ids, conn)

