"""A card's full story for the wall's detail view, and the closed cards' record.

Pure assembly over explicit connections: the card as the wall shows it, its FIFO lots and
realized P&L (``system_databse.fifo``), its fills, the deposits and withdrawals of its capital,
its recent decisions as the daemon stored them, and whether it is frozen (the broker's position of its ticker disagrees with the cards') or
stale (no new bar for a while during market hours).
"""
from __future__ import annotations

import sqlite3
import threading
from typing import Any, Dict, List, Optional

from api import cards
from api.history import corporate_action_markers
from database import db_manager
from database.market_calendar import parse_utc
from system_databse import card_calculations, fifo, system_db_manager

STALE_SECONDS = 180
RECENT_DECISIONS = 20
SHOWN_FILLS = 500  # newest fills listed in the detail view (trade_count says how many there are)

_fifo_cache: Dict[tuple, tuple] = {}  # (database, card id) -> (ledger version, Fifo): replayed only after a change
_fifo_lock = threading.Lock()


def matched_lots(system: sqlite3.Connection, algo_id: int, version: Optional[tuple] = None) -> fifo.Fifo:
    """The card's FIFO replay, cached until its fills or corporate actions change.

    A card with 100,000 fills takes about a second to replay; the wall asks every 30 s.
    """
    if version is None:
        version = system_db_manager.get_ledger_versions(conn=system).get(algo_id, ())
    key = (system.execute("PRAGMA database_list").fetchone()[2], algo_id)
    with _fifo_lock:
        cached = _fifo_cache.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    matched = fifo.match(system_db_manager.get_transactions_between(algo_id, conn=system),
                         system_db_manager.get_corporate_action_effects(algo_id, conn=system))
    with _fifo_lock:
        _fifo_cache[key] = (version, matched)
    return matched


def _transactions(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Each fill (newest first) with its value (shares x price)."""
    return [{"id": t["id"], "type": t["type"], "shares": t["shares"], "price": t["price"],
             "value": card_calculations.to_cents(t["shares"] * t["price"]), "timestamp": t["timestamp"],
             "order_id": t.get("broker_order_id")} for t in rows]


def _action(row: Dict[str, Any]) -> Dict[str, Any]:
    """A corporate action as the card felt it, with a one-line description."""
    if row["kind"] == "cash_dividend":
        text = f"dividend ${row['rate']:.4g}/share on {row['shares_before']:g} shares: +${row['cash']:,.2f}"
    else:
        change = row["share_change"] + row["fractional_change"]
        text = (f"{row['new_rate']:g}-for-{row['old_rate']:g} {row['kind'].replace('_', ' ')}: "
                f"{row['shares_before']:g} shares {'+' if change >= 0 else '-'}{abs(change):g}")
    return {"kind": row["kind"], "ex_date": row["ex_date"], "effective_at": row["effective_at"],
            "share_change": row["share_change"], "fractional_change": row["fractional_change"],
            "cash": row["cash"], "description": text}


def capital_move(row: Dict[str, Any]) -> Dict[str, Any]:
    """A deposit or withdrawal as the card's history lists it."""
    return {"id": row["id"], "kind": row["kind"], "amount": row["amount"], "timestamp": row["timestamp"]}


def _decision(row: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    if row is None:
        return None
    return {k: row[k] for k in ("minute", "kind", "action", "shares", "requested_action", "requested_shares",
                                "reason", "price", "held_back")}


def decisions_block(system: sqlite3.Connection, algo_id: int) -> Dict[str, Any]:
    newest = {kind: system_db_manager.get_decisions(algo_id, kind=kind, limit=1, conn=system)
              for kind in system_db_manager.DECISION_KINDS}
    recent = system_db_manager.get_decisions(algo_id, limit=RECENT_DECISIONS, conn=system)
    return {"last_decision": _decision(newest["decision"][0] if newest["decision"] else None),
            "last_refusal": _decision(newest["refused"][0] if newest["refused"] else None),
            "last_error": _decision(newest["error"][0] if newest["error"] else None),
            "recent_decisions": [_decision(r) for r in recent]}


def _frozen(card: Dict[str, Any], mismatches: List[Dict[str, Any]]) -> Optional[str]:
    for m in mismatches or []:
        if isinstance(m, dict) and m.get("ticker") == card["ticker"]:
            return (f"frozen: the broker holds {m.get('broker')} shares of {card['ticker']}, "
                    f"the cards add up to {m.get('cards')}")
    return None


def _stale(card: Dict[str, Any], market: Dict[str, Any]) -> Optional[str]:
    if not market.get("is_open") or card["state"] != "running" or not market.get("timestamp"):
        return None
    if card["price_timestamp"] is None:
        return "stale: no price received yet"
    age = (parse_utc(market["timestamp"]) - parse_utc(card["price_timestamp"])).total_seconds() - 60
    if age > STALE_SECONDS:
        return f"stale: no new bar of {card['ticker']} for {int(age // 60)} min"
    return None


def card_detail(system: sqlite3.Connection, stocks: sqlite3.Connection, algo_id: int,
                market: Dict[str, Any], mismatches: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """Everything the detail view shows about one card, or None if it does not exist."""
    card = cards.one_card(system, stocks, algo_id)
    if card is None:
        return None
    actions = system_db_manager.get_corporate_action_effects(algo_id, conn=system)
    card.update(fifo.summary(matched_lots(system, algo_id), card["current_price"]))
    card["transactions"] = _transactions(system_db_manager.get_recent_fills(algo_id, SHOWN_FILLS, conn=system))
    card["corporate_actions"] = [_action(a) for a in reversed(actions)]
    card["capital_moves"] = [capital_move(m) for m in reversed(system_db_manager.get_capital_moves(algo_id, conn=system))]
    card.update(decisions_block(system, algo_id))
    card["frozen"] = _frozen(card, mismatches)
    card["stale"] = _stale(card, market)
    return card


def closed_cards(system: sqlite3.Connection) -> List[Dict[str, Any]]:
    """Stopped cards, newest stop first: dates, trade count, final realized P&L (FIFO)."""
    result = []
    totals = system_db_manager.get_all_position_totals(conn=system)
    parameters = system_db_manager.get_all_algorithm_parameters(conn=system)
    versions = system_db_manager.get_ledger_versions(conn=system)
    for algo in system_db_manager.get_all_algorithms("stopped", conn=system):
        matched = matched_lots(system, algo["id"], versions.get(algo["id"], ()))
        held = totals.get(algo["id"], card_calculations.NO_TRADES)["held"]
        trades = totals.get(algo["id"], card_calculations.NO_TRADES)["trade_count"]
        result.append({
            "id": algo["id"], "display_name": algo["display_name"], "algorithm_type": algo["algorithm_type"],
            "ticker": algo["ticker"], "initial_capital": float(algo["initial_capital"]),
            "created_at": algo["created_at"], "stopped_at": algo["stopped_at"],
            "trade_count": trades, "shares_left": held, "state": cards.card_state("stopped", held),
            "realized_pnl": fifo.cents(matched.realized),
            "last_trade_at": next((t["timestamp"] for t in system_db_manager.get_recent_fills(algo["id"], 1, conn=system)),
                                  None),
            "parameters": parameters.get(algo["id"], {}),
        })
    result.sort(key=lambda c: (c["stopped_at"] or "", c["id"]), reverse=True)
    return result


def pnl_totals(system: sqlite3.Connection, stocks: sqlite3.Connection) -> Dict[str, float]:
    """The header's split: open P&L of shares held now, and realized P&L of every card, all time."""
    open_pnl = realized = 0.0
    prices = {}
    versions = system_db_manager.get_ledger_versions(conn=system)
    for algo in system_db_manager.get_all_algorithms(conn=system):
        matched = matched_lots(system, algo["id"], versions.get(algo["id"], ()))
        realized += matched.realized
        if matched.lots:
            if algo["ticker"] not in prices:
                latest = db_manager.get_latest_price(stocks, algo["ticker"])
                prices[algo["ticker"]] = latest["price"] if latest else None
            price = prices[algo["ticker"]]
            if price is not None:
                open_pnl += matched.shares * price - matched.open_cost
    return {"open_pnl": fifo.cents(open_pnl), "realized_pnl": fifo.cents(realized)}


def corporate_actions(system: sqlite3.Connection) -> List[Dict[str, Any]]:
    """Every card's splits and dividends, newest first, for the history view."""
    effects = system_db_manager.get_corporate_action_effects(None, conn=system)
    return corporate_action_markers(effects, with_card=True)[::-1]
