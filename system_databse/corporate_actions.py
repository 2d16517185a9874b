"""Splits and dividends as they affected each card, applied once per (card, action)."""
from __future__ import annotations

import math
import sqlite3
from decimal import Decimal
from fractions import Fraction
from typing import Any, Dict, Iterable, List, Mapping, Optional

from system_databse.connection import (LedgerError, atomic, check_price, ledger_stamp, rows_by_card,
                                        use_connection)
from system_databse.connection import normalize_ticker
from system_databse.orders import open_order_tickers
from system_databse.transactions import EMPTY, holdings
from shared.shares import NANO

CORPORATE_ACTION_KINDS = ("forward_split", "reverse_split", "cash_dividend")


class OrderStillOpen(LedgerError):
    """A corporate action on a ticker whose order is still open: apply it once the order is settled."""


def position_at(algo_id: int, moment: str, *, conn: Optional[sqlite3.Connection] = None) -> Decimal:
    """Shares (whole plus fractional) a card held just before ``moment``: trades and earlier actions."""
    with use_connection(conn) as c:
        held = holdings(c, [algo_id], before=moment).get(algo_id, EMPTY)["nano"]
    return Decimal(held) / NANO


def corporate_action_effects(kind: str, held: Mapping[int, int], *, old_rate: Optional[float] = None,
                             new_rate: Optional[float] = None,
                             rate: Optional[float] = None) -> Dict[int, Dict[str, Any]]:
    """What one action does to the cards holding its ticker (``held``: card -> nano-shares at the
    ex-date open), as the broker applies it to the account's one position: qty x new/old to 9
    decimals (half even), a dividend qty x rate in cents (half up). That total is shared over the
    cards in proportion to their exact parts (largest remainder), so the cards add up to what the
    broker holds and paid, each within a nano-share (a cent) of its exact part; rounding each card
    alone would not (two cards of 1 share through 1:3 hold 0.666666666, the broker 0.666666667)."""
    if kind not in CORPORATE_ACTION_KINDS:
        raise LedgerError(f"unknown corporate action kind {kind!r}")
    total = sum(held.values())
    if kind == "cash_dividend":
        cents = Fraction(Decimal(repr(check_price(rate, "dividend rate")))) * 100 / NANO  # per nano-share
        paid = math.floor(total * cents + Fraction(1, 2))  # half up
        shared = _apportion(paid, {card: nano * cents for card, nano in held.items()})
        return {card: {"share_change": 0, "fractional_change": 0.0, "cash": float(Decimal(c) / 100)}
                for card, c in shared.items()}
    new, old = (Fraction(Decimal(repr(check_price(r, name)))) for r, name in ((new_rate, "new_rate"),
                                                                                (old_rate, "old_rate")))
    ratio = new / old
    after = _apportion(round(total * ratio), {card: nano * ratio for card, nano in held.items()})
    return {card: _split_effect(held[card], after[card]) for card in held}


def _apportion(total: int, exact: Mapping[int, Fraction]) -> Dict[int, int]:
    """``total`` units over the cards whose exact parts (adding up to within half a unit of it) are
    ``exact``: each its part rounded down, the units left to the largest remainders (ties: the
    smaller card id)."""
    parts = {card: math.floor(part) for card, part in exact.items()}
    left = total - sum(parts.values())
    if not 0 <= left <= len(parts):
        raise LedgerError(f"cannot share {total} over {dict(exact)}")
    for card in sorted(exact, key=lambda card: (parts[card] - exact[card], card))[:left]:
        parts[card] += 1
    return parts


def _split_effect(before: int, after: int) -> Dict[str, Any]:
    """A card's row for a split from ``before`` to ``after`` nano-shares: whole shares and the fraction."""
    return {"share_change": after // NANO - before // NANO,
            "fractional_change": float(Decimal(after % NANO - before % NANO) / NANO), "cash": 0.0}


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
        cards = [card["id"] for card in c.execute("SELECT id FROM algorithm_instances WHERE ticker = ? ORDER BY id",
                                                   (symbol,))]
        before = holdings(c, cards, before=action["effective_at"])
        held = {card: before[card]["nano"] for card in cards if before.get(card, EMPTY)["nano"] > 0}
        effects = corporate_action_effects(action["kind"], held, old_rate=action.get("old_rate"),
                                           new_rate=action.get("new_rate"), rate=action.get("rate"))
        for card, effect in sorted(effects.items()):
            row = {"algorithm_id": card, "action_id": str(action["id"]), "ticker": symbol,
                   "kind": action["kind"], "ex_date": action["ex_date"], "effective_at": action["effective_at"],
                   "old_rate": action.get("old_rate"), "new_rate": action.get("new_rate"), "rate": action.get("rate"),
                   "shares_before": float(Decimal(held[card]) / NANO), **effect, "recorded_at": recorded}
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

