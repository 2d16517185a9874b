"""``/api/algorithms`` (list, one, create, stop, history) and ``/api/available-algorithms``."""
from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any, Dict

from flask import Blueprint, current_app, jsonify

from algorithms._discovery import listed_algorithms
from api import algorithm_params, cards, clock, controls_routes, db, history, symbol_limit
from api.auth import require_token
from api.broker import BrokerDown, BrokerGateway
from api.errors import ApiError
from api.inputs import MAX_SQLITE_INT, body_str, query_choice, query_int, refuse_unknown_fields
from api.json_body import json_object
from database import market_calendar
from system_databse import card_calculations, system_db_manager

logger = logging.getLogger(__name__)

bp = Blueprint("algorithms", __name__)

NEW_CARD_FIELDS = ("ticker", "algorithm_type", "initial_capital")
OPTIONAL_CARD_FIELDS = ("parameters", "limits")
MAX_ALGORITHM_TYPE_LENGTH = 64
DEFAULT_TRANSACTION_LIMIT = 500


def gateway() -> BrokerGateway:
    return current_app.extensions["autotrader_broker"]


utc_string = market_calendar.to_utc_string


def discovered_algorithms() -> list[Dict[str, Any]]:
    """``[{"name", "description", "parameters"}]`` read from the files' source: the web process runs no algorithm."""
    return [info.to_dict() for info in listed_algorithms(current_app.config["ALGORITHMS_DIR"])]


def _card_or_404(algo_id: int) -> Dict[str, Any]:
    card = None
    if algo_id <= MAX_SQLITE_INT:
        card = cards.one_card(db.system_reader(), db.stocks_reader(), algo_id)
    if card is None:
        raise ApiError(404, f"algorithm {algo_id} not found")
    return card


@bp.get("/api/algorithms")
def list_algorithms():
    market = gateway().market_status()
    return jsonify({
        "algorithms": cards.listed_cards(db.system_reader(), db.stocks_reader()),
        "pause": system_db_manager.get_pause(conn=db.system_reader()),
        "market_open": market["is_open"],
        "market": market,
        "server_time": utc_string(current_app.config["NOW"]()),
    })


@bp.get("/api/algorithms/<int:algo_id>")
def get_algorithm(algo_id: int):
    limit = query_int("limit", DEFAULT_TRANSACTION_LIMIT, 1, 100_000)
    card = _card_or_404(algo_id)
    card["transactions"] = system_db_manager.get_recent_transactions(algo_id, limit, conn=db.system_reader())
    return jsonify(card)


@bp.get("/api/algorithms/<int:algo_id>/history")
def get_history(algo_id: int):
    window = query_choice("window", "1d", history.WINDOWS)
    max_points = query_int("points", current_app.config["HISTORY_MAX_POINTS"], 2, 5000)
    algo = None if algo_id > MAX_SQLITE_INT else system_db_manager.get_algorithm(algo_id, conn=db.system_reader())
    if algo is None:
        raise ApiError(404, f"algorithm {algo_id} not found")
    return jsonify(history.card_history(db.system_reader(), db.stocks_reader(), algo, window, max_points))


@bp.get("/api/available-algorithms")
def list_available_algorithms():
    return jsonify({"algorithms": discovered_algorithms()})


def _parse_new_card(body: Dict[str, Any]) -> tuple[str, str, float]:
    """Field presence, types and formats; 400 naming the field at fault."""
    refuse_unknown_fields(body, NEW_CARD_FIELDS + OPTIONAL_CARD_FIELDS)
    missing = [f for f in NEW_CARD_FIELDS if body.get(f) is None]
    if missing:
        raise ApiError(400, f"missing field(s): {', '.join(missing)}")
    ticker, algo_type, capital = (body[f] for f in NEW_CARD_FIELDS)
    if not isinstance(ticker, str):
        raise ApiError(400, "ticker must be a string", field="ticker")
    try:
        ticker = system_db_manager.normalize_ticker(ticker)
    except system_db_manager.LedgerError as exc:
        raise ApiError(400, str(exc), field="ticker") from None
    if not isinstance(algo_type, str) or not algo_type.strip():
        raise ApiError(400, "algorithm_type must be a non-empty string", field="algorithm_type")
    body_str(body, "algorithm_type", max_length=MAX_ALGORITHM_TYPE_LENGTH)
    if isinstance(capital, bool) or not isinstance(capital, (int, float)):
        raise ApiError(400, "initial_capital must be a number", field="initial_capital")
    try:
        capital = float(capital)
    except OverflowError:
        capital = math.inf
    if not math.isfinite(capital) or capital <= 0:
        raise ApiError(400, "initial_capital must be a positive finite number", field="initial_capital")
    return ticker, algo_type.strip(), capital


def _broker(call, *args):
    try:
        return call(*args)
    except BrokerDown as exc:
        raise ApiError(503, f"{exc}; nothing was created") from None


@bp.post("/api/algorithms")
@require_token("add")
def create_algorithm():
    body = json_object()
    ticker, algo_type, capital = _parse_new_card(body)
    symbol_limit.check_room_for(ticker, db.system_reader())
    names = [a["name"] for a in discovered_algorithms()]
    if algo_type not in names:
        raise ApiError(422, f"unknown algorithm_type {algo_type!r}; available: {', '.join(names) or 'none'}",
                       field="algorithm_type")
    if "parameters" in body and not isinstance(body["parameters"], dict):
        raise ApiError(400, "parameters must be an object of name: value", field="parameters")
    parameters = algorithm_params.checked_values(algo_type, current_app.config["ALGORITHMS_DIR"],
                                                 body.get("parameters"))
    limits = controls_routes.parse_limits(body.get("limits", {}), controls_routes.card_limit_defaults())
    if not _broker(gateway().validate_ticker, ticker):
        raise ApiError(422, f"{ticker} is not a tradable asset at the broker", field="ticker")
    alpaca_cash, _ = _broker(lambda: gateway().account_cash(max_age=timedelta(0)))
    created_at = clock.stamp_or_refuse("nothing was created")  # the trading clock: the exchange's in a simulation
    writer = db.system_writer()
    with system_db_manager.atomic(writer):
        cash = card_calculations.available_cash(alpaca_cash, conn=writer)
        if capital > cash["available_cash"]:
            raise ApiError(422, f"initial_capital {capital:.2f} exceeds the available cash "
                                f"{cash['available_cash']:.2f}", field="initial_capital", **cash)
        algo_id = system_db_manager.create_algorithm(ticker, algo_type, capital, created_at=created_at, conn=writer)
        system_db_manager.set_algorithm_parameters(algo_id, parameters, conn=writer)
        system_db_manager.set_card_limits(algo_id, limits, at=created_at, conn=writer)
    logger.info("created card %d: %s %s with %.2f %s, limits %s", algo_id, ticker, algo_type, capital,
                parameters or "", limits)
    card = cards.one_card(writer, db.stocks_reader(), algo_id)
    return jsonify(card), 201, {"Location": f"/api/algorithms/{algo_id}"}


@bp.delete("/api/algorithms/<int:algo_id>")
@require_token("stop")
def stop_algorithm(algo_id: int):
    stopped_at = clock.stamp_or_refuse("nothing was stopped")
    writer = db.system_writer()
    with system_db_manager.atomic(writer):
        exists = algo_id <= MAX_SQLITE_INT and system_db_manager.get_algorithm(algo_id, conn=writer) is not None
        if not exists:
            raise ApiError(404, f"algorithm {algo_id} not found")
        stopped_now = system_db_manager.stop_algorithm(algo_id, stopped_at=stopped_at, conn=writer)
    if stopped_now:
        logger.info("stopped card %d", algo_id)
    card = cards.one_card(writer, db.stocks_reader(), algo_id)
    card["already_stopped"] = not stopped_now
    return jsonify(card)
