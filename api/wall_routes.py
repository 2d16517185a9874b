"""The wall's deeper views: a card's detail and price chart, the history view, P&L totals, exports.

``GET /api/algorithms/<id>/detail``, ``GET /api/algorithms/<id>/chart?zoom=today|5d|all``,
``GET /api/history`` (closed cards and daily P&L), ``GET /api/pnl-summary`` (open vs realized,
today), and the authenticated ``GET /api/export/transactions.csv`` / ``realized.csv``
(``card``, ``from``, ``to`` as in ``python -m scripts.export``).
"""
from __future__ import annotations

import re
from datetime import date

from flask import Blueprint, Response, current_app, jsonify, request

from api import daily, db, detail
from api.auth import require_token
from api.errors import ApiError
from api.inputs import MAX_SQLITE_INT, query_choice, query_int, query_str
from system_databse import exports, system_db_manager

bp = Blueprint("wall", __name__)

DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _gateway():
    return current_app.extensions["autotrader_broker"]


def _algo_or_404(algo_id: int):
    algo = None if algo_id > MAX_SQLITE_INT else system_db_manager.get_algorithm(algo_id, conn=db.system_reader())
    if algo is None:
        raise ApiError(404, f"algorithm {algo_id} not found")
    return algo


def _mismatches() -> list:
    beat = system_db_manager.get_heartbeat("orchestrator", conn=db.system_reader())
    payload = beat["payload"] if beat else {}
    found = payload.get("position_mismatches") if isinstance(payload, dict) else None
    return found if isinstance(found, list) else []


@bp.get("/api/algorithms/<int:algo_id>/detail")
def card_detail(algo_id: int):
    _algo_or_404(algo_id)
    card = detail.card_detail(db.system_reader(), db.stocks_reader(), algo_id, _gateway().market_status(),
                              _mismatches())
    return jsonify(card)


@bp.get("/api/algorithms/<int:algo_id>/chart")
def card_chart(algo_id: int):
    from api import price_chart  # pandas and numpy load with the first chart opened, not with every poll

    zoom = query_choice("zoom", "today", price_chart.ZOOMS)
    points = query_int("points", 400, 2, 2000)
    algo = _algo_or_404(algo_id)
    return jsonify(price_chart.price_chart(db.system_reader(), db.stocks_reader(), algo, zoom, points,
                                           current_app.config["ALGORITHMS_DIR"], current_app.config["STOCKS_DB"]))


@bp.get("/api/history")
def history_view():
    system, stocks = db.system_reader(), db.stocks_reader()
    return jsonify({"closed": detail.closed_cards(system), "daily_pnl": daily.account_daily_pnl(system, stocks),
                    **detail.pnl_totals(system, stocks), "corporate_actions": detail.corporate_actions(system)})


@bp.get("/api/pnl-summary")
def pnl_summary():
    system, stocks = db.system_reader(), db.stocks_reader()
    days = daily.account_daily_pnl(system, stocks, max_days=1)
    return jsonify({**detail.pnl_totals(system, stocks), "today": days[-1] if days else None})


def _export_args() -> tuple:
    unknown = sorted(set(request.args) - {"card", "from", "to"})
    if unknown:
        raise ApiError(400, f"unknown parameter(s): {', '.join(unknown)}")
    card = query_int("card", None, 0, MAX_SQLITE_INT)
    if card is not None:
        _algo_or_404(card)
    days = []
    for name in ("from", "to"):
        value = query_str(name)
        if value is not None:
            try:
                if not DAY.match(value):
                    raise ValueError(value)
                value = date.fromisoformat(value).isoformat()
            except ValueError:
                raise ApiError(400, f"{name} must be a date YYYY-MM-DD") from None
        days.append(value)
    if days[0] and days[1] and days[0] > days[1]:
        raise ApiError(400, "from must not be after to")
    return card, days[0], days[1]


def _csv(text: str, name: str) -> Response:
    return Response(text, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@bp.get("/api/export/transactions.csv")
@require_token("export")
def export_transactions():
    rows = exports.transaction_rows(db.system_reader(), *_export_args())
    return _csv(exports.to_csv(rows, exports.TRANSACTION_COLUMNS), "transactions.csv")


@bp.get("/api/export/realized.csv")
@require_token("export")
def export_realized():
    rows = exports.realized_rows(db.system_reader(), *_export_args())
    return _csv(exports.to_csv(rows, exports.REALIZED_COLUMNS), "realized.csv")
