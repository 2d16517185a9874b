"""Trading controls on the wall: PAUSE and RESUME for the whole account, a card's limits and RESUME CARD.

``GET /api/controls`` (the pause, the day's broker orders against the daily limit, the limits a
new card gets), ``POST /api/pause`` and ``POST /api/resume`` (PIN tokens for ``pause`` and
``resume``), ``PUT /api/algorithms/<id>/limits`` (token ``limits``) and
``POST /api/algorithms/<id>/resume`` (token ``resume``). The API only writes the ledger: the
orchestrator reads the pause and the limits every minute, before anything is sent.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Dict, Mapping, Optional

from flask import Blueprint, current_app, jsonify

from api import cards, clock, db
from api.auth import require_token
from api.errors import ApiError
from api.inputs import MAX_SQLITE_INT, refuse_unknown_fields
from api.json_body import json_object
from database import market_calendar
from shared.clock import computer_now, stamp
from system_databse import system_db_manager as ledger

logger = logging.getLogger(__name__)

bp = Blueprint("controls", __name__)

def pause_stamp() -> str:
    """The stamp of a pause or resume: the trading clock's, or the computer's when the broker's
    cannot be read (a pause must never wait for the broker)."""
    return stamp(clock.now_if_known() or computer_now())


def _market_now() -> datetime:
    """The market's now on the trading clock: which trading day it is (the computer's clock when
    the broker's cannot be read, for a read-only figure)."""
    return clock.now_if_known() or computer_now()


# --------------------------------------------------------------------------- a card's limits in a request


def parse_limits(raw: Any, base: Optional[Mapping[str, Any]] = None, *, field: str = "limits") -> Dict[str, Any]:
    """A limits object from a request (each field a number or null, ``on_trip`` 'pause' or
    'liquidate'), over ``base`` (a new card's defaults) for the fields it leaves out; 400 naming the field."""
    if not isinstance(raw, dict):
        raise ApiError(400, f"{field} must be an object of {', '.join(ledger.LIMIT_FIELDS)} and on_trip",
                       field=field)
    refuse_unknown_fields(raw, ledger.LIMIT_FIELDS + ("on_trip",))
    for name, value in raw.items():
        try:
            ledger.check_limits({name: value})
        except ledger.LedgerError as exc:
            raise ApiError(400, str(exc), field=name) from None
    return ledger.check_limits({**(base or {}), **raw})


def card_limit_defaults() -> Dict[str, Any]:
    return dict(current_app.config["CARD_LIMIT_DEFAULTS"])


# --------------------------------------------------------------------------- the account


def controls_view(system) -> Dict[str, Any]:
    """The pause, the trading day's broker orders against the limit, and a new card's default limits."""
    pause = ledger.get_pause(conn=system)
    session = market_calendar.latest_session(_market_now())
    since = market_calendar.to_utc_string(session[0]) if session else None
    if since and pause["resumed_at"] and pause["resumed_at"] > since:
        since = pause["resumed_at"]
    sent = ledger.orders_sent_since(since, conn=system) if since else 0
    return {"pause": pause, "daily_orders": {"limit": current_app.config["DAILY_ORDER_LIMIT"], "sent": sent,
                                             "since": since},
            "card_limit_defaults": card_limit_defaults()}


@bp.get("/api/controls")
def get_controls():
    return jsonify(controls_view(db.system_reader()))


@bp.post("/api/pause")
@require_token("pause")
def pause():
    refuse_unknown_fields(json_object(), ())  # the wall has no keyboard for a reason; the shell can give one
    writer = db.system_writer()
    paused_now = ledger.pause_trading("owner", "", at=pause_stamp(), conn=writer)
    if paused_now:
        logger.warning("trading PAUSED by the owner from the wall")
    return jsonify({**ledger.get_pause(conn=writer), "already_paused": not paused_now})


@bp.post("/api/resume")
@require_token("resume")
def resume():
    refuse_unknown_fields(json_object(), ())
    writer = db.system_writer()
    before = ledger.get_pause(conn=writer)
    resumed_now = ledger.resume_trading(at=pause_stamp(), conn=writer)
    if resumed_now:
        logger.warning("trading RESUMED by the owner (was paused by the %s since %s)", before["paused_by"],
                       before["since"])
    return jsonify({**ledger.get_pause(conn=writer), "already_trading": not resumed_now})


# --------------------------------------------------------------------------- one card


def _card_or_404(writer, algo_id: int) -> Dict[str, Any]:
    algo = ledger.get_algorithm(algo_id, conn=writer) if algo_id <= MAX_SQLITE_INT else None
    if algo is None:
        raise ApiError(404, f"algorithm {algo_id} not found")
    return algo


@bp.put("/api/algorithms/<int:algo_id>/limits")
@require_token("limits")
def set_limits(algo_id: int):
    limits = parse_limits(json_object(), field="body")
    writer = db.system_writer()
    with ledger.atomic(writer):
        algo = _card_or_404(writer, algo_id)
        if algo["status"] != "running":
            raise ApiError(409, f"card {algo_id} is stopped: its limits no longer apply")
        ledger.set_card_limits(algo_id, limits, at=clock.stamp_or_refuse("no limit was changed"), conn=writer)
    logger.info("card %d: limits set to %s", algo_id, limits)
    return jsonify(cards.one_card(writer, db.stocks_reader(), algo_id))


@bp.post("/api/algorithms/<int:algo_id>/resume")
@require_token("resume")
def resume_card(algo_id: int):
    refuse_unknown_fields(json_object(), ())
    writer = db.system_writer()
    with ledger.atomic(writer):
        algo = _card_or_404(writer, algo_id)
        if algo["status"] != "running":
            raise ApiError(409, f"card {algo_id} is stopped: it cannot be resumed")
        resumed_now = ledger.resume_card(algo_id, at=clock.stamp_or_refuse("the card was not resumed"), conn=writer)
    if resumed_now:
        logger.info("card %d resumed by the owner", algo_id)
    card = cards.one_card(writer, db.stocks_reader(), algo_id)
    card["already_running"] = not resumed_now
    return jsonify(card)
