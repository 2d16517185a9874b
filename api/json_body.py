"""Request-body rules: mutating requests speak JSON, and the JSON must be strict, shallow and an object.

The size is bounded by ``MAX_CONTENT_LENGTH`` (413) and the nesting by ``MAX_JSON_DEPTH``, checked
on the raw bytes before parsing: Python's parser recurses once per ``[``/``{``, so a few thousand
of them would otherwise end in a RecursionError (a 500) instead of a 400.

Requiring ``application/json`` means a foreign web page cannot forge a mutating request with a
plain HTML form: a cross-origin JSON request needs a CORS pre-flight, which this API never grants.
"""
from __future__ import annotations

import json
from typing import Any

from flask import Flask, request

from api.errors import ApiError

MAX_JSON_DEPTH = 16
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


def json_depth(raw: bytes, limit: int) -> int:
    """Deepest nesting of ``[``/``{`` outside strings, counting no further than ``limit + 1``."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def json_object() -> dict[str, Any]:
    """The request body as a JSON object; 400 with a clear message for anything else."""
    raw = request.get_data(cache=True)
    if json_depth(raw, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ApiError(400, f"malformed JSON body: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(400, f"malformed JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the JSON body must be an object")
    return body


def init_app(app: Flask) -> None:
    app.before_request(require_json_content_type)
