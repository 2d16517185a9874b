"""Cards as the dashboard sees them: the spec's fields plus price time, P&L % and state.

Pure assembly over explicit connections (no Flask): the ledger gives rows and aggregates,
stocks.db gives the latest bar per ticker, ``card_calculations`` does the money.
"""
from __future__ import annotations

import sqlite3
from typing import Any, Dict, List, Optional

from database import db_manager
from system_databse import card_calculations, system_db_manager



def card_state(status: str, shares: int | float) -> str:
    """'running'; 'closing' for a stopped card whose shares the orchestrator is still selling; 'stopped'."""
    if status == "running":
        return "running"
    return "closing" if shares > 0 else "stopped"


def assemble_card(algo: Dict[str, Any], totals: Dict[str, Any], latest: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    card = card_calculations.card_from_totals(algo, totals, latest["price"] if latest else None)
    card["price_timestamp"] = latest["timestamp"] if latest else None
    card["state"] = card_state(algo["status"], totals.get("held", totals["shares"]))
    return card


def limits_view(limits: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A card's limits as the wall shows them (None: none set), with its trip: which limit, when, why,
    until when (a cooldown) or None (until RESUME CARD)."""
    if limits is None:
        return None
    return {**{name: limits[name] for name in system_db_manager.LIMIT_FIELDS}, "on_trip": limits["on_trip"],
            "trip": limits["trip"]}


def listed_cards(system: sqlite3.Connection, stocks: sqlite3.Connection) -> List[Dict[str, Any]]:
    """Running cards plus stopped cards still holding shares, oldest first, in three queries + one per ticker."""
    algos = system_db_manager.get_all_algorithms(conn=system)
    totals = system_db_manager.get_all_position_totals(conn=system)
    shown = [a for a in algos if a["status"] == "running" or totals.get(a["id"], card_calculations.NO_TRADES)["held"] > 0]
    prices = db_manager.get_latest_prices(stocks, (a["ticker"] for a in shown))
    parameters = system_db_manager.get_all_algorithm_parameters(conn=system)
    limits = system_db_manager.get_all_card_limits(conn=system)
    listed = []
    for algo in shown:
        card = assemble_card(algo, totals.get(algo["id"], card_calculations.NO_TRADES), prices[algo["ticker"]])
        card["parameters"] = parameters.get(algo["id"], {})
        card["limits"] = limits_view(limits.get(algo["id"]))
        listed.append(card)
    return listed


def one_card(system: sqlite3.Connection, stocks: sqlite3.Connection, algo_id: int) -> Optional[Dict[str, Any]]:
    algo = system_db_manager.get_algorithm(algo_id, conn=system)
    if algo is None:
        return None
    totals = system_db_manager.get_position_totals(algo_id, conn=system)
    card = assemble_card(algo, totals, db_manager.get_latest_price(stocks, algo["ticker"]))
    card["parameters"] = system_db_manager.get_algorithm_parameters(algo_id, conn=system)
    card["limits"] = limits_view(system_db_manager.get_card_limits(algo_id, conn=system))
    return card
