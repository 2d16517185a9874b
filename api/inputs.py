"""Strict parsing of everything a request carries: path ids, query parameters and body fields.

Python's own parsers are generous in ways an API must not be: ``"²".isdigit()`` is true but
``int("²")`` raises, ``int("١٢")`` is 12, ``int("9" * 5000)`` raises, and ``json.loads`` of a few
thousand ``[`` exhausts the recursion limit. Every input goes through one of these helpers, so a
bad value is a 400 naming the parameter, never a 500. Use them in every view:

    limit = query_int("limit", default=500, low=1, high=100_000)
    window = query_choice("window", default="1d", choices=WINDOWS)
    body = json_body.json_object()                      # size and nesting checked before parsing
    name = body_str(body, "algorithm_type", max_length=64)

Path ids use the app's ``int`` converter, replaced by ``StrictIntConverter`` (ASCII digits only;
anything else matches no route and answers 404); views compare ids with ``MAX_SQLITE_INT``.
"""
from __future__ import annotations

import math
import re
from typing import Any, Collection, Optional

from flask import Flask, request
from werkzeug.routing import IntegerConverter

from api.errors import ApiError

MAX_SQLITE_INT = 2**63 - 1
MAX_STRING_LENGTH = 256
_ASCII_INT = re.compile(r"[0-9]{1,19}")


class StrictIntConverter(IntegerConverter):
    """``<int:...>`` in every route: ASCII digits only (``²`` or ``١٢`` match no route: 404)."""

    regex = r"[0-9]{1,64}"  # longer than any id, short enough for int(); views answer "not found" past 2**63-1


def parse_int(raw: Any, name: str, low: int, high: int) -> int:
    """``raw`` (a str) as an integer in ``[low, high]``: ASCII digits only, at most 19 of them."""
    if not isinstance(raw, str) or not _ASCII_INT.fullmatch(raw) or not low <= int(raw) <= high:
        raise ApiError(400, f"{name} must be an integer from {low} to {high}", field=name)
    return int(raw)


def _one_query_value(name: str) -> Optional[str]:
    values = request.args.getlist(name)
    if len(values) > 1:
        raise ApiError(400, f"{name} is given more than once", field=name)
    return values[0] if values else None


def query_str(name: str) -> Optional[str]:
    """A query parameter given at most once, or None; the caller checks its format."""
    return _one_query_value(name)


def query_int(name: str, default: Optional[int], low: int, high: int) -> Optional[int]:
    """An integer query parameter (``default`` when absent); 400 for anything but ASCII digits in range."""
    raw = _one_query_value(name)
    return default if raw is None else parse_int(raw, name, low, high)


def query_choice(name: str, default: str, choices: Collection[str]) -> str:
    """A query parameter that must be one of ``choices`` (``default`` when absent)."""
    raw = _one_query_value(name)
    if raw is None:
        return default
    if raw not in choices:
        raise ApiError(400, f"{name} must be one of {', '.join(choices)}", field=name)
    return raw


def body_str(body: dict, name: str, *, max_length: int = MAX_STRING_LENGTH, pattern: Optional[re.Pattern] = None,
             required: bool = True) -> Optional[str]:
    """A string field: no control characters, at most ``max_length``, matching ``pattern`` if given."""
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"missing field: {name}", field=name)
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string", field=name)
    if len(value) > max_length or not value.isprintable():
        raise ApiError(400, f"{name} must be at most {max_length} printable characters", field=name)
    if pattern is not None and not pattern.fullmatch(value):
        raise ApiError(400, f"{name} has an invalid format", field=name)
    return value


def body_number(body: dict, name: str, *, low: float, high: float, required: bool = True) -> Optional[float]:
    """A JSON number field (not a bool, not a string) that is finite and within ``[low, high]``."""
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"missing field: {name}", field=name)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"{name} must be a number", field=name)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or not low <= number <= high:
        raise ApiError(400, f"{name} must be a finite number from {low:g} to {high:g}", field=name)
    return number


def refuse_unknown_fields(body: dict, allowed: Collection[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        shown = ", ".join(name[:40] for name in unknown[:5])
        raise ApiError(400, f"unknown field(s): {shown}")


def init_app(app: Flask) -> None:
    """Replace the ``int`` converter before any blueprint adds its routes."""
    app.url_map.converters["int"] = StrictIntConverter
