"""Request-body rules: mutating requests speak JSON, and the JSON must be strict and an object.

Requiring ``application/json`` means a foreign web page cannot forge a mutating request with a
plain HTML form: a cross-origin JSON request needs a CORS pre-flight, which this API never grants.
"""
from __future__ import annotations

import json
from typing import Any

from flask import Flask, request

from api.errors import ApiError

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_REQUIRED = frozenset({"POST", "PUT", "PATCH"})


def _has_body() -> bool:
    return bool(request.content_length) or request.headers.get("Transfer-Encoding", "").lower() == "chunked"


def require_json_content_type():
    """before_request: 415 for a mutating request whose body is not declared as JSON.

    A DELETE without a body needs no content type (it carries its bearer token, which already
    forces a pre-flight cross-origin). Unknown routes are left alone so they answer 404/405.
    """
    if request.routing_exception is not None or request.method not in MUTATING_METHODS:
        return None
    if request.method not in BODY_REQUIRED and not _has_body():
        return None
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported media type: send the body as application/json")
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_object() -> dict[str, Any]:
    """The request body as a JSON object; 400 with a clear message for anything else."""
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"malformed JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the JSON body must be an object")
    return body


def init_app(app: Flask) -> None:
    app.before_request(require_json_content_type)
