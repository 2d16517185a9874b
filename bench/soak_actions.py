"""The soak's corporate actions: a split and a dividend announced mid-run, and the books checked after them.

The evening before an ex-date the harness announces the action on the paper exchange's own control
(``POST /_sim/corporate_actions``); at that session's open the exchange applies it to the account
(a split multiplies the position, a dividend credits cash) and the daemon reads it and records it on
the cards. ``check`` proves the cards got exactly what the broker applied, from the broker's own
books: for each action Σ cards' shares at the ex-date open == the broker's position then (its fills
before the open), for a split Σ cards' shares after it == the broker's position after it (its final
position minus its fills since the open), for a dividend Σ cash paid to the cards == the broker's
qty x rate; and over the run Σ dividends of the cards == the cash the broker credited (its cash
minus its starting cash and every fill's amount). Quantities are compared in nano-shares, cash in cents.

Two ``hold`` cards (7 shares bought once, kept) make sure the tickers are held at the open; the
other cards on those tickers share the action with them when they hold shares too.
"""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

from shared.shares import NANO, from_nano, to_nano

HOLD = '''"""Soak holder: buys 7 shares once and keeps them (a position across nights for splits and dividends)."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        return ("hold", 0) if transaction_history else ("buy", 7)
'''
HOLDERS = (("AAPL", "hold"), ("KO", "hold"))
CENT = Decimal("0.01")


def plan(sessions: list[str]) -> dict[str, list[dict]]:
    """By ex-date: a 3:2 AAPL split on the second session, a $0.25 KO dividend on the third (or second)."""
    if len(sessions) < 2:
        return {}
    split = {"symbol": "AAPL", "type": "forward_split", "ex_date": sessions[1], "new_rate": 3, "old_rate": 2}
    dividend = {"symbol": "KO", "type": "cash_dividend", "ex_date": sessions[min(2, len(sessions) - 1)], "rate": 0.25}
    days: dict[str, list[dict]] = {}
    for spec in (split, dividend):
        days.setdefault(spec["ex_date"], []).append(spec)
    return days


def check(state: dict, effects: Iterable[dict]) -> dict:
    """The corporate actions the exchange applied against the cards' rows (``get_corporate_action_effects``)."""
    effects, by_action = list(effects), {}
    for row in effects:
        by_action.setdefault(row["action_id"], []).append(row)
    orders = [o for o in state["orders"] if Decimal(o["filled_qty"]) > 0]
    report, wrong = [], []
    for action in state["corporate_actions"]:
        rows = by_action.get(action["id"], [])
        entry = _compare(action, rows, orders, state["positions"])
        report.append(entry)
        if not action["applied_at"] or any(v["cards"] != v["broker"] for k, v in entry.items() if isinstance(v, dict)):
            wrong.append(f'{action["symbol"]} {action["type"]} {action["ex_date"]}')
    cards_cash = _cash(effects)
    credited = Decimal(state["cash"]) - Decimal(state["initial_cash"]) + sum(
        (_amount(o) * (1 if o["side"] == "buy" else -1) for o in orders), Decimal(0))
    dividends = {"cards": float(cards_cash), "broker": float(credited)}
    if dividends["cards"] != dividends["broker"]:
        wrong.append("dividend cash")
    return {"corporate_actions": report, "dividends_credited": dividends, "corporate_action_mismatches": wrong}


def _compare(action: dict, rows: list[dict], orders: list[dict], positions: dict) -> dict:
    """One action: what the cards' rows say against what the broker's fills and position say."""
    applied = _moment(action["applied_at"]) if action["applied_at"] else None
    mine = [o for o in orders if o["symbol"] == action["symbol"]]
    before = sum(_signed_nano(o) for o in mine if applied and _moment(o["filled_at"]) <= applied)
    since = sum(_signed_nano(o) for o in mine if applied and _moment(o["filled_at"]) > applied)
    cards_before = sum(to_nano(r["shares_before"]) for r in rows)
    entry = {"symbol": action["symbol"], "type": action["type"], "ex_date": action["ex_date"],
             "applied_at": action["applied_at"], "cards": len(rows),
             "shares_before": {"cards": from_nano(cards_before), "broker": from_nano(before)}}
    if action["type"] == "cash_dividend":
        paid = (Decimal(before) / NANO * Decimal(str(action["rate"]))).quantize(CENT, rounding=ROUND_HALF_UP)
        entry.update(rate=action["rate"], cash={"cards": float(_cash(rows)), "broker": float(paid)})
    else:
        after = to_nano(positions.get(action["symbol"], {}).get("qty", 0)) - since
        cards_after = cards_before + sum(r["share_change"] * NANO + to_nano(r["fractional_change"]) for r in rows)
        entry.update(ratio=f'{action["new_rate"]:g}:{action["old_rate"]:g}',
                     shares_after={"cards": from_nano(cards_after), "broker": from_nano(after)})
    return entry


def _signed_nano(order: dict) -> int:
    return to_nano(order["filled_qty"]) * (1 if order["side"] == "buy" else -1)


def _cash(rows: list[dict]) -> Decimal:
    return sum((Decimal(str(r["cash"])) for r in rows), Decimal(0)).quantize(CENT)


def _amount(order: dict) -> Decimal:
    """What a fill moved in cash, rounded as the exchange books it (one fill per order)."""
    return (Decimal(order["filled_avg_price"]) * Decimal(order["filled_qty"])).quantize(CENT)


def _moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
