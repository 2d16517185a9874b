"""AutoTrader's API server and kiosk page (Flask). It reads the databases and never trades.

``create_app(config, settings)`` builds the application (importing this module starts nothing);
``python api_server.py`` reads the process's ``Settings`` once and serves it with waitress on
``API_HOST``:``API_PORT`` (127.0.0.1:5000).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import sys
from typing import Any, Mapping, Optional

from flask import Flask, request

from api import (account_routes, algorithms_routes, auth, capital_routes, clock, controls_routes, db, errors,
                 frontend, health_routes, inputs, json_body, openapi, preview, wall_routes)
from api.broker import BrokerGateway, broker_factory
from api.heartbeat_watch import HeartbeatWatch
from database import db_manager
from shared import notifier, private_files
from shared.clock import computer_now
from shared.config import REPO_ROOT, ApiSettings, ConfigError, Settings, load_env
from shared.logging_setup import setup_logging
from system_databse import system_db_manager

logger = logging.getLogger(__name__)


def trusted_hosts(api: ApiSettings) -> Optional[list[str]]:
    """Host headers a loopback-bound server answers (a DNS-rebinding guard), or None for no check.

    Werkzeug compares only the part before the first ':', so an IPv6 literal cannot be listed:
    an IPv6 or non-loopback binding runs without the check.
    """
    if not api.is_loopback or ":" in api.host:
        return None
    return sorted({"localhost", "127.0.0.1", api.host})


def default_config(settings: Settings) -> dict[str, Any]:
    """Everything the app reads; ``create_app(config)`` overrides any of it (tests pass a dict)."""
    return {
        "SYSTEM_DB": settings.databases.system_db,
        "STOCKS_DB": settings.databases.stocks_db,
        # the same folder the orchestrator runs: AUTOTRADER_ALGORITHMS_DIR, else the repository's algorithms/
        "ALGORITHMS_DIR": settings.daemon.algorithms_dir,
        "FRONTEND_DIR": REPO_ROOT / "frontend",
        "BROKER_FACTORY": broker_factory(settings),  # () -> BrokerReader, called on first use
        "NOW": computer_now,                         # liveness: token lifetimes, lock-outs, caches, heartbeat age
        "CLOCK_KIND": settings.daemon.clock,         # the trading clock (AUTOTRADER_CLOCK): api/clock.py
        "TRADING_CLOCK": None,                       # None: built from CLOCK_KIND (tests may pass their own)
        "LIVE_TRADING": settings.api.live_trading,   # live keys: the default PIN may not add or stop cards
        "TOKEN_TTL_SECONDS": 300,
        "PIN_MAX_ATTEMPTS": 5,
        "PIN_LOCKOUT_SECONDS": 60,                   # first lock-out; doubles each time
        "PIN_LOCKOUT_MAX_SECONDS": 24 * 3600,
        "CASH_CACHE_SECONDS": 10,
        "HEARTBEAT_STALE_SECONDS": 180,              # market open: the daemon writes every minute
        "HEARTBEAT_STALE_SECONDS_CLOSED": 600,       # off hours it writes every few minutes
        "HISTORY_MAX_POINTS": 500,
        "MAX_CONTENT_LENGTH": 16 * 1024,
        "TRUSTED_HOSTS": None,                       # a list limits Host headers (DNS-rebinding guard)
        "NOTIFIER": notifier.from_settings(settings),  # NOTIFY_URL (off when empty)
        "PREVIEW_DAYS": 20,                          # the add dialog's "try it first": trading days replayed
        "PREVIEW_TIME_LIMIT_SECONDS": settings.api.preview_seconds,  # the replay's limit
        "PREVIEW_FETCH_SECONDS": 120.0,              # fetching the missing history's limit
        "PREVIEW_ENV": None,                         # extra environment for the preview process (tests)
        "CARD_LIMIT_DEFAULTS": settings.controls.card_defaults(),  # a new card's limits unless the request says
        "DAILY_ORDER_LIMIT": settings.controls.daily_order_limit,  # shown beside the day's orders (the daemon acts)
    }


# The kiosk page runs only its own files: no inline script or style, no plug-ins, no framing,
# and fetch() only back to this server.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
    "font-src 'self'", "manifest-src 'self'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
])


def _security_headers(response):
    if request.method == "OPTIONS" and response.status_code == 200 and not response.get_data():
        response.status_code = 204  # Flask's automatic answer: just the Allow header, no (HTML) body
        response.headers.pop("Content-Type", None)
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/api/") or response.mimetype == "application/json":
        response.headers["Cache-Control"] = "no-store"  # cards, cash and tokens are never cached
    return response


def create_app(config: Optional[Mapping[str, Any]] = None, settings: Optional[Settings] = None) -> Flask:
    """The app for ``settings`` (the process environment's when None), with ``config`` on top."""
    app = Flask(__name__, static_folder=None)
    app.config.update(default_config(settings or Settings.from_env(os.environ)))
    if config:
        app.config.update(config)
    app.json.sort_keys = False
    inputs.init_app(app)  # the strict <int:...> converter, before any route is added
    errors.register_error_handlers(app)
    db.init_app(app)
    json_body.init_app(app)
    auth.init_app(app)
    app.extensions["autotrader_heartbeat_watch"] = HeartbeatWatch(app.config["NOTIFIER"])
    gateway = app.extensions["autotrader_broker"] = BrokerGateway(
        app.config["BROKER_FACTORY"], app.config["NOW"], app.config["CASH_CACHE_SECONDS"])
    trading = app.extensions[clock.EXTENSION] = (app.config["TRADING_CLOCK"]
                                                 or clock.build(app.config["CLOCK_KIND"], gateway))
    gateway.market_now = trading.peek
    gateway.observe_clock = getattr(trading, "observe", gateway.observe_clock)  # a broker clock stays warm
    for blueprint in (algorithms_routes.bp, account_routes.bp, capital_routes.bp, health_routes.bp, openapi.bp,
                      wall_routes.bp, preview.bp, controls_routes.bp):
        app.register_blueprint(blueprint)
    frontend.init_app(app)
    app.after_request(_security_headers)
    return app


def _check_database(path, manager) -> None:
    """Fail at start-up, with the manager's message, rather than on the first request."""
    manager.get_connection(path, read_only=True).close()


def _broker_mode(settings: Settings) -> str:
    """For the start-up line; missing keys only disable cash and new cards, so they are not fatal."""
    try:
        broker = settings.broker
    except ConfigError as exc:
        logger.warning("broker not configured (%s): cash and new cards will answer 503", exc)
        return "broker not configured"
    return f"broker {broker.mode} mode, {broker.feed} feed, {broker.trading_url or 'Alpaca'}"


def announce(settings: Settings, app: Flask) -> None:
    """The start-up line (address, broker mode, databases) and a warning when bound beyond loopback."""
    api = settings.api
    logger.info("AutoTrader API on http://%s:%d (%s; %s clock; system.db %s, stocks.db %s)", api.host, api.port,
                _broker_mode(settings), app.extensions[clock.EXTENSION].kind, app.config["SYSTEM_DB"],
                app.config["STOCKS_DB"])
    if not api.is_loopback:
        logger.warning("API bound to %s, beyond loopback: anyone who can reach this port sees the dashboard "
                       "and can try PINs; keep it on 127.0.0.1 unless the network is trusted", api.host)


def main() -> int:
    """Serve with waitress (never Flask's debug server); 2 with a one-line message on bad settings."""
    from waitress import serve

    private_files.restrict_new_files()
    load_env()
    try:
        settings = Settings.from_env(os.environ)
        setup_logging("api", settings)
        private_files.warn_if_exposed(private_files.private_paths(settings))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    api = settings.api
    app = create_app({"TRUSTED_HOSTS": trusted_hosts(api)}, settings)
    try:
        _check_database(app.config["SYSTEM_DB"], system_db_manager)
        _check_database(app.config["STOCKS_DB"], db_manager)
    except (FileNotFoundError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    announce(settings, app)
    serve(app, host=api.host, port=api.port, threads=4, ident="autotrader")
    return 0


if __name__ == "__main__":
    sys.exit(main())
