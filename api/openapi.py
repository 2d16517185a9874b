"""``GET /api/openapi.json``: the API's contract, kept beside the code in ``api/openapi.json``."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, jsonify

OPENAPI_PATH = Path(__file__).resolve().parent / "openapi.json"

bp = Blueprint("openapi", __name__)


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    return json.loads(OPENAPI_PATH.read_text())


@bp.get("/api/openapi.json")
def openapi():
    return jsonify(openapi_document())
