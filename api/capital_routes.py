"""``POST /api/algorithms/<id>/deposit`` and ``/withdraw``: move money into or out of a running card.

Body ``{"amount": 5000}`` (dollars, two decimals at most), with a PIN token minted for that one
action (``deposit`` or ``withdraw``). A deposit is checked against the account's available cash
(the broker's cash, asked now, less what the cards claim of it: ``system_databse.positions``) and
a withdrawal against the card's uninvested cash less its open buys, each inside the write
transaction that records it, so two requests at once cannot both pass on the same money. A
refusal answers a 4xx ``{"error", ...}`` and writes nothing. Neither ever places an order; the
orchestrator sees the new capital at its next decision.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Dict

from flask import Blueprint, current_app, jsonify

from api import cards, clock, db
from api.auth import require_token
from api.broker import BrokerDown
from api.errors import ApiError
from api.inputs import MAX_SQLITE_INT, refuse_unknown_fields
from api.json_body import json_object
from system_databse import card_calculations, system_db_manager

logger = logging.getLogger(__name__)

bp = Blueprint("capital", __name__)


def _gateway():
    return current_app.extensions["autotrader_broker"]


def _amount(body: Dict[str, Any]) -> int:
    """The body's amount in exact cents; 400 naming ``amount`` for anything else."""
    refuse_unknown_fields(body, ("amount",))
    if body.get("amount") is None:
        raise ApiError(400, "missing field: amount", field="amount")
    amount = body["amount"]
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise ApiError(400, "amount must be a number of dollars", field="amount")
    try:
        return system_db_manager.amount_cents(amount)
    except system_db_manager.LedgerError as exc:
        raise ApiError(400, str(exc), field="amount") from None


def _running_card(writer, algo_id: int) -> Dict[str, Any]:
    algo = None if algo_id > MAX_SQLITE_INT else system_db_manager.get_algorithm(algo_id, conn=writer)
    if algo is None:
        raise ApiError(404, f"algorithm {algo_id} not found")
    if algo["status"] != "running":
        raise ApiError(409, f"card {algo_id} is stopped: its capital cannot change", state="stopped")
    return algo


def _answer(writer, algo_id: int, move_id: int, status: int = 201):
    card = cards.one_card(writer, db.stocks_reader(), algo_id)
    [move] = [m for m in system_db_manager.get_capital_moves(algo_id, conn=writer) if m["id"] == move_id]
    card["capital_move"] = {k: move[k] for k in ("id", "kind", "amount", "timestamp")}
    return jsonify(card), status


@bp.post("/api/algorithms/<int:algo_id>/deposit")
@require_token("deposit")
def deposit(algo_id: int):
    cents = _amount(json_object())
    _running_card(db.system_reader(), algo_id)  # a 404/409 before the broker is asked
    try:
        alpaca_cash, _ = _gateway().account_cash(max_age=timedelta(0))
    except BrokerDown as exc:
        raise ApiError(503, f"{exc}; nothing was deposited") from None
    at = clock.stamp_or_refuse("nothing was deposited")  # the trading clock: the exchange's in a simulation
    writer = db.system_writer()
    with system_db_manager.atomic(writer):
        _running_card(writer, algo_id)
        cash = card_calculations.available_cash(alpaca_cash, conn=writer)
        if cents > round(cash["available_cash"] * 100):
            raise ApiError(422, f"the deposit {cents / 100:,.2f} is more than the account's available cash "
                                f"{cash['available_cash']:,.2f}", field="amount", **cash)
        move_id = system_db_manager.deposit(algo_id, cents / 100, at=at, conn=writer)
    logger.info("card %d: deposited %.2f", algo_id, cents / 100)
    return _answer(writer, algo_id, move_id)


@bp.post("/api/algorithms/<int:algo_id>/withdraw")
@require_token("withdraw")
def withdraw(algo_id: int):
    cents = _amount(json_object())
    at = clock.stamp_or_refuse("nothing was withdrawn")
    writer = db.system_writer()
    with system_db_manager.atomic(writer):
        _running_card(writer, algo_id)
        try:
            move_id = system_db_manager.withdraw(algo_id, cents / 100, at=at, conn=writer)
        except system_db_manager.WithdrawalTooLarge as exc:
            raise ApiError(422, str(exc), field="amount", withdrawable=exc.withdrawable,
                           uninvested_cash=exc.uninvested_cash, open_buys=exc.open_buys) from None
    logger.info("card %d: withdrew %.2f", algo_id, cents / 100)
    return _answer(writer, algo_id, move_id)
