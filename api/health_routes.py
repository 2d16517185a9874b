"""``GET /api/health``: is the orchestrator alive, is the stream fed, can we reach the broker.

The orchestrator writes its heartbeat (payload: last cycle, stream state, last bar per ticker,
position mismatches, recent errors) into system.db; this endpoint adds its age, the newest bar
per running ticker read straight from stocks.db, and whether the broker's clock answered.
Payload keys that look like credentials are masked, so a careless heartbeat cannot leak them.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, jsonify

from api import clock, db
from api.broker import iso
from database import coverage, db_manager, market_calendar
from system_databse import system_db_manager

bp = Blueprint("health", __name__)

SECRET_KEY_PATTERN = re.compile(r"secret|password|passwd|token|api_?key|authorization|credential", re.I)


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "***" if SECRET_KEY_PATTERN.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _orchestrator(now: datetime, market_open: bool) -> dict:
    """Heartbeat age against a limit that is longer off hours, when the daemon writes less often."""
    beat = system_db_manager.get_heartbeat("orchestrator", conn=db.system_reader())
    limit = current_app.config["HEARTBEAT_STALE_SECONDS" if market_open else "HEARTBEAT_STALE_SECONDS_CLOSED"]
    if beat is None:
        return {"alive": False, "heartbeat_at": None, "age_seconds": None, "stale_after_seconds": limit, "details": {}}
    age = (now - market_calendar.utc_datetime(beat["updated_at"])).total_seconds()
    age = max(0, int(age))
    return {"alive": age <= limit, "heartbeat_at": beat["updated_at"], "age_seconds": age,
            "stale_after_seconds": limit, "details": redact(beat["payload"])}


def _running_tickers() -> set:
    return {a["ticker"] for a in system_db_manager.get_all_algorithms("running", conn=db.system_reader())}


def _last_bars() -> dict:
    return {t: db_manager.get_last_timestamp(db.stocks_reader(), t) for t in sorted(_running_tickers())}


def _session_minutes() -> dict:
    """This session's coverage per running ticker, on the trading clock ({} while it cannot be read)."""
    market_now = clock.now_if_known()
    if market_now is None:
        return {}
    return coverage.session_coverage(db.stocks_reader(), _running_tickers(), market_now)


@bp.get("/api/health")
def health():
    now = current_app.config["NOW"]()
    market = current_app.extensions["autotrader_broker"].market_status()
    orchestrator = _orchestrator(now, market["is_open"])
    current_app.extensions["autotrader_heartbeat_watch"].observe(
        orchestrator["alive"], orchestrator["heartbeat_at"], orchestrator["age_seconds"])
    broker = {"reachable": market["source"] == "broker", "error": market["error"]}
    details = orchestrator["details"] if isinstance(orchestrator["details"], dict) else {}
    return jsonify({
        "ok": orchestrator["alive"] and broker["reachable"],
        "server_time": iso(now),
        "orchestrator": orchestrator,
        "broker": broker,
        "market": market,
        "stream": details.get("stream"),
        "position_mismatches": details.get("position_mismatches", []),
        "errors_last_hour": details.get("errors_last_hour"),
        "clock_check": details.get("clock_check"),
        "last_bar": _last_bars(),
        "session_minutes": _session_minutes(),
    })
