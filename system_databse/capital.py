"""Money the owner moves into or out of a running card: deposits and withdrawals (issue #24).

A deposit raises the card's capital and its uninvested cash by the amount; a withdrawal lowers
both, never by more than the card's ``withdrawable`` cash (its uninvested cash less what its open
buys have promised: a withdrawal never sells a share). Each is a ``capital_moves`` row of its own,
in exact integer cents, stamped by the trading clock the caller passes; the card's position
(``system_databse.positions``) adds them up with its fills, so its value moves by the amount and
its P&L (value - capital) does not. Whether the account has the cash for a deposit is the
caller's check (the API's, against the broker's cash, in the same write transaction): the ledger
does not know the broker's cash.

Refused with ``LedgerError`` and nothing written: an unknown or stopped card, an amount that is not
a positive finite number of dollars and cents, a withdrawal above what the card may give back.
"""
from __future__ import annotations

import math
import sqlite3
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, List, Optional

from system_databse.connection import LedgerError, atomic, ledger_stamp, use_connection
from system_databse import positions

CAPITAL_MOVE_KINDS = ("deposit", "withdrawal")
MAX_AMOUNT_CENTS = 10 ** 15  # ten trillion dollars: well inside SQLite's integers and a float's exact cents


def amount_cents(amount: Any, what: str = "amount") -> int:
    """``amount`` dollars as exact integer cents: a positive finite number with two decimals at most."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float, Decimal)):
        raise LedgerError(f"{what} must be a number of dollars, got {amount!r}")
    try:
        exact = Decimal(str(amount))  # str(float) is its shortest repr: 0.1 stays 0.1
    except InvalidOperation:
        raise LedgerError(f"{what} must be a number of dollars, got {amount!r}") from None
    if not exact.is_finite() or exact <= 0:
        raise LedgerError(f"{what} must be a positive amount, got {amount!r}")
    cents = exact * 100
    if cents != cents.to_integral_value():
        raise LedgerError(f"{what} has more than two decimals (cents): {amount!r}")
    if cents > MAX_AMOUNT_CENTS:
        raise LedgerError(f"{what} is too large: {amount!r}")
    return int(cents)


def cents_floor(amount: float) -> int:
    """Whole cents of a float sum (rounded down, after a tolerance for binary fractions): a
    card's 2,000.00 computed as 1999.9999999997 still gives back its 2,000.00."""
    return math.floor(round(amount * 100, 4)) if amount > 0 else 0


def deposit(algo_id: int, amount: Any, *, at: Optional[str] = None,
            conn: Optional[sqlite3.Connection] = None) -> int:
    """Add ``amount`` to a running card's capital and uninvested cash; the new row's id."""
    return _record(algo_id, "deposit", amount, at, conn)


def withdraw(algo_id: int, amount: Any, *, at: Optional[str] = None,
             conn: Optional[sqlite3.Connection] = None) -> int:
    """Take ``amount`` back from a running card's uninvested cash (its capital shrinks by as much);
    refused above ``Position.withdrawable``, checked in the write transaction; the new row's id."""
    return _record(algo_id, "withdrawal", amount, at, conn)


def _record(algo_id: int, kind: str, amount: Any, at: Optional[str], conn: Optional[sqlite3.Connection]) -> int:
    cents = amount_cents(amount)
    at = ledger_stamp(at)  # the caller's (the trading clock's); the computer's clock without one
    with use_connection(conn) as c, atomic(c):
        card = c.execute("SELECT * FROM algorithm_instances WHERE id = ?", (algo_id,)).fetchone()
        if card is None:
            raise LedgerError(f"algorithm {algo_id} does not exist")
        if card["status"] != "running":
            raise LedgerError(f"algorithm {algo_id} is stopped; its capital cannot change")
        if kind == "withdrawal":
            position = positions.positions(conn=c, cards=[dict(card)])[algo_id]
            limit = cents_floor(position.withdrawable())
            if cents > limit:
                raise WithdrawalTooLarge(cents, limit, position)
        cur = c.execute("INSERT INTO capital_moves (algorithm_id, kind, amount_cents, timestamp) VALUES (?, ?, ?, ?)",
                        (algo_id, kind, cents, at))
        return int(cur.lastrowid)


class WithdrawalTooLarge(LedgerError):
    """A withdrawal above the card's withdrawable cash; carries the figures the refusal shows."""

    def __init__(self, cents: int, limit_cents: int, position: positions.Position):
        self.amount = cents / 100
        self.withdrawable = limit_cents / 100
        self.uninvested_cash = round(position.uninvested_cash + 0.0, 2)
        self.open_buys = round(position.buying_cost + 0.0, 2)
        held_back = f" ({self.open_buys:,.2f} of its cash is promised to open buys)" if position.buying_cost else ""
        super().__init__(f"the withdrawal {self.amount:,.2f} is more than card {position.card_id}'s uninvested cash "
                         f"{self.withdrawable:,.2f}{held_back}; a withdrawal never sells shares")


def _row(row: sqlite3.Row) -> Dict[str, Any]:
    found = dict(row)
    found["amount"] = found.pop("amount_cents") / 100
    return found


def get_capital_moves(algo_id: Optional[int] = None, start: Optional[str] = None, end: Optional[str] = None, *,
                      conn: Optional[sqlite3.Connection] = None) -> List[Dict[str, Any]]:
    """Deposits and withdrawals, oldest first, of one card or all (``start`` inclusive, ``end``
    exclusive, UTC stamps), each with ``amount`` in dollars and its card's ticker and name."""
    sql = ("SELECT m.id, m.algorithm_id, a.ticker, a.display_name, m.kind, m.amount_cents, m.timestamp"
           " FROM capital_moves m JOIN algorithm_instances a ON a.id = m.algorithm_id WHERE 1 = 1")
    params: list = []
    for clause, value in (("m.algorithm_id = ?", algo_id), ("m.timestamp >= ?", start), ("m.timestamp < ?", end)):
        if value is not None:
            sql += f" AND {clause}"
            params.append(value)
    with use_connection(conn) as c:
        return [_row(r) for r in c.execute(sql + " ORDER BY m.timestamp, m.id", params).fetchall()]
