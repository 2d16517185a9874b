"""``GET /api/account/cash``: what is free for a new card.

available = broker cash - what the cards still claim of it (``system_databse.positions``): a
running card's uninvested cash (invested money has already left the broker's cash) and the
proceeds of its open sells, and the cost of a stopped card's open buys.
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
    cash = card_calculations.available_cash(alpaca_cash, conn=db.system_reader())
    return jsonify({**cash, "as_of": iso(read_at)})
