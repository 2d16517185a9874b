"""``GET /api/account/cash``: what is free for a new card.

available = broker cash - uninvested cash of running cards (``card_calculations``): invested
money has already left the broker's cash, so only the unspent part of each allocation is reserved.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from api import db
from api.broker import BrokerDown, iso
from api.errors import ApiError
from system_databse import card_calculations

bp = Blueprint("account", __name__)


@bp.get("/api/account/cash")
def account_cash():
    try:
        alpaca_cash, read_at = current_app.extensions["autotrader_broker"].account_cash()
    except BrokerDown as exc:
        raise ApiError(503, f"{exc}; cash cannot be computed right now") from None
    reserved = card_calculations.running_cards_uninvested(conn=db.system_reader())
    cash = card_calculations.calculate_available_cash(alpaca_cash, reserved)
    return jsonify({**cash, "as_of": iso(read_at)})
