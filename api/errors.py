"""One JSON error shape for the whole API: ``{"error": message, ...}`` with a 4xx/5xx status.

Every HTTPException (404, 405, 413, a bad Host header...) and every unexpected exception is
turned into that shape, so no client ever sees an HTML page or a traceback.
"""
from __future__ import annotations

import logging
import sqlite3
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, MethodNotAllowed

logger = logging.getLogger(__name__)

_MESSAGES = {
    400: "bad request",
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
    415: "unsupported media type: send application/json",
}


class ApiError(Exception):
    """A refusal a view raises: becomes ``{"error": message, **extra}`` with ``status``."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def error_response(status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
    response = jsonify({"error": message, **extra})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _http_error(exc: HTTPException):
    status = exc.code or 500
    message = _MESSAGES.get(status) if exc.description == type(exc).description else exc.description
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return error_response(status, message or exc.name.lower(), headers=headers)


def _api_error(exc: ApiError):
    return error_response(exc.status, exc.message, headers=exc.headers, **exc.extra)


def _database_busy(exc: sqlite3.OperationalError):
    logger.warning("database error: %s", exc)
    return error_response(503, f"database unavailable, try again: {exc}")


def _unexpected(exc: Exception):
    logger.exception("unhandled error in request")
    return error_response(500, "internal server error; see the API log")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(sqlite3.OperationalError, _database_busy)
    app.register_error_handler(Exception, _unexpected)
