"""AutoTrader's API server and kiosk page (Flask). It reads the databases and never trades.

``create_app(config)`` builds the application (importing this module starts nothing);
``python api_server.py`` serves it with waitress on ``API_HOST``:``API_PORT`` (127.0.0.1:5000).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import sys
from typing import Any, Mapping, Optional

from flask import Flask, request

from api import (account_routes, algorithms_routes, auth, clock, db, errors, frontend, health_routes, inputs,
                 json_body, openapi, preview, wall_routes)
from api.broker import BrokerGateway, default_broker_factory
from api.heartbeat_watch import HeartbeatWatch
from database import db_manager
from shared import config as settings, notifier
from shared import private_files
from shared.clock import ClockError, clock_kind, computer_now
from shared.logging_setup import setup_logging
from system_databse import system_db_manager

logger = logging.getLogger(__name__)



def trusted_hosts(api: settings.ApiSettings) -> Optional[list[str]]:
    """Host headers a loopback-bound server answers (a DNS-rebinding guard), or None for no check.

    Werkzeug compares only the part before the first ':', so an IPv6 literal cannot be listed:
    an IPv6 or non-loopback binding runs without the check.
    """
    if not api.is_loopback or ":" in api.host:
        return None
    return sorted({"localhost", "127.0.0.1", api.host})


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise settings.ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise settings.ConfigError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def live_trading(env: Mapping[str, str]) -> bool:
    """True unless ``ALPACA_PAPER`` says paper; a malformed value counts as live (the careful reading)."""
    try:
        return not settings.flag(env, "ALPACA_PAPER", True)
    except settings.ConfigError:
        return True


def default_config() -> dict[str, Any]:
    """Everything the app reads; ``create_app(config)`` overrides any of it (tests pass a dict)."""
    return {
        "SYSTEM_DB": system_db_manager.default_db_path(),
        "STOCKS_DB": db_manager.default_db_path(),
        # the same folder the orchestrator runs: AUTOTRADER_ALGORITHMS_DIR, else the repository's algorithms/
        "ALGORITHMS_DIR": os.environ.get("AUTOTRADER_ALGORITHMS_DIR", "").strip() or None,
        "FRONTEND_DIR": settings.REPO_ROOT / "frontend",
        "BROKER_FACTORY": default_broker_factory,    # () -> AlpacaWrapper, called on first use
        "NOW": computer_now,                         # liveness: token lifetimes, lock-outs, caches, heartbeat age
        "CLOCK_KIND": os.environ.get("AUTOTRADER_CLOCK", "").strip() or "system",  # the trading clock: api/clock.py
        "TRADING_CLOCK": None,                       # None: built from CLOCK_KIND (tests may pass their own)
        "LIVE_TRADING": live_trading(os.environ),    # live keys: the default PIN may not add or stop cards
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
        "NOTIFIER": None,                            # None: built from NOTIFY_URL (off when empty)
        "PREVIEW_DAYS": 20,                          # the add dialog's "try it first": trading days replayed
        "PREVIEW_TIME_LIMIT_SECONDS": _env_seconds("AUTOTRADER_PREVIEW_SECONDS", 30.0),  # the replay's limit
        "PREVIEW_FETCH_SECONDS": 120.0,              # fetching the missing history's limit
        "PREVIEW_ENV": None,                         # extra environment for the preview process (tests)
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


def _notifier():
    """The webhook notifier of ``NOTIFY_URL``; a bad URL is logged and leaves notifications off."""
    try:
        return notifier.from_env()
    except settings.ConfigError as exc:
        logger.error("notifications off: %s", exc)
        return notifier.from_env({})


def create_app(config: Optional[Mapping[str, Any]] = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config.update(default_config())
    if config:
        app.config.update(config)
    app.json.sort_keys = False
    inputs.init_app(app)  # the strict <int:...> converter, before any route is added
    errors.register_error_handlers(app)
    db.init_app(app)
    json_body.init_app(app)
    auth.init_app(app)
    app.extensions["autotrader_heartbeat_watch"] = HeartbeatWatch(app.config["NOTIFIER"] or _notifier())
    gateway = app.extensions["autotrader_broker"] = BrokerGateway(
        app.config["BROKER_FACTORY"], app.config["NOW"], app.config["CASH_CACHE_SECONDS"])
    trading = app.extensions[clock.EXTENSION] = (app.config["TRADING_CLOCK"]
                                                 or clock.build(app.config["CLOCK_KIND"], gateway))
    gateway.market_now = trading.peek
    gateway.observe_clock = getattr(trading, "observe", gateway.observe_clock)  # a broker clock stays warm
    for blueprint in (algorithms_routes.bp, account_routes.bp, health_routes.bp, openapi.bp, wall_routes.bp,
                      preview.bp):
        app.register_blueprint(blueprint)
    frontend.init_app(app)
    app.after_request(_security_headers)
    return app


def _check_database(path, manager) -> None:
    """Fail at start-up, with the manager's message, rather than on the first request."""
    manager.get_connection(path, read_only=True).close()


def _broker_mode(env: Mapping[str, str]) -> str:
    """For the start-up line; missing keys only disable cash and new cards, so they are not fatal."""
    try:
        broker = settings.AlpacaSettings.from_env(env)
    except settings.ConfigError as exc:
        logger.warning("broker not configured (%s): cash and new cards will answer 503", exc)
        return "broker not configured"
    return f"broker {broker.mode} mode, {broker.feed} feed, {broker.trading_url or 'Alpaca'}"


def announce(api: settings.ApiSettings, app: Flask, env: Mapping[str, str]) -> None:
    """The start-up line (address, broker mode, databases) and a warning when bound beyond loopback."""
    logger.info("AutoTrader API on http://%s:%d (%s; %s clock; system.db %s, stocks.db %s)", api.host, api.port,
                _broker_mode(env), app.extensions[clock.EXTENSION].kind, app.config["SYSTEM_DB"],
                app.config["STOCKS_DB"])
    if not api.is_loopback:
        logger.warning("API bound to %s, beyond loopback: anyone who can reach this port sees the dashboard "
                       "and can try PINs; keep it on 127.0.0.1 unless the network is trusted", api.host)


def main() -> int:
    """Serve with waitress (never Flask's debug server); 2 with a one-line message on bad settings."""
    from waitress import serve

    private_files.restrict_new_files()
    settings.load_env()
    env = os.environ
    try:
        setup_logging("api", env=env)
        private_files.warn_if_exposed(private_files.private_paths(env))
        api = settings.ApiSettings.from_env(env)
        clock_kind(env)
    except (settings.ConfigError, ClockError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = create_app({"TRUSTED_HOSTS": trusted_hosts(api)})
    try:
        _check_database(app.config["SYSTEM_DB"], system_db_manager)
        _check_database(app.config["STOCKS_DB"], db_manager)
    except (FileNotFoundError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    announce(api, app, env)
    serve(app, host=api.host, port=api.port, threads=4, ident="autotrader")
    return 0


if __name__ == "__main__":
    sys.exit(main())
