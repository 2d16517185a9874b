"""Per-request database connections on ``flask.g``, closed when the request ends.

Reads go through read-only connections (``mode=ro``), so the API never takes a write lock
that could delay the orchestrator; the few writes (create/stop a card, PIN lock-out state) use
a normal connection and group themselves with ``system_db_manager.atomic``.
"""
from __future__ import annotations

import sqlite3
from typing import Callable

from flask import Flask, current_app, g

from api.errors import ApiError
from database import db_manager
from system_databse import system_db_manager


def _cached(name: str, open_connection: Callable[[], sqlite3.Connection]) -> sqlite3.Connection:
    if name not in g:
        try:
            setattr(g, name, open_connection())
        except FileNotFoundError as exc:
            raise ApiError(503, str(exc)) from None
    return getattr(g, name)


def system_reader() -> sqlite3.Connection:
    return _cached("system_reader", lambda: system_db_manager.get_connection(
        current_app.config["SYSTEM_DB"], read_only=True))


def system_writer() -> sqlite3.Connection:
    return _cached("system_writer", lambda: system_db_manager.get_connection(current_app.config["SYSTEM_DB"]))


def stocks_reader() -> sqlite3.Connection:
    return _cached("stocks_reader", lambda: db_manager.get_connection(current_app.config["STOCKS_DB"], read_only=True))


def close_connections(exc: BaseException | None = None) -> None:
    for name in ("system_reader", "system_writer", "stocks_reader"):
        conn = g.pop(name, None)
        if conn is not None:
            conn.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_connections)
