"""Hostile input at every parameter of every documented operation: always a 4xx, never a 5xx, nothing written.

An attacker on the network (or a passer-by at the wall) sends unicode digits, huge numbers,
NaN/Infinity, deeply nested containers, control characters and very long strings. The operations
and their parameters are read from ``api/openapi.json``, so every endpoint added to the document
is covered too. system.db must be unchanged row for row after each request; stocks.db (1.3 million
calendar rows, too many to read per request) must keep its size, modification time and bars, and
its content hash over the whole run.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import string
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.openapi import OPENAPI_PATH
from system_databse import system_db_manager
from tests.fixtures.api import auth, get_token, table_rows
from tests.test_api_openapi import action_of

DOCUMENT = json.loads(OPENAPI_PATH.read_text())
METHODS = ("get", "post", "put", "patch", "delete")
VALID_BODIES = {
    ("POST", "/api/algorithms"): {"ticker": "NVDA", "algorithm_type": "sma_crossover", "initial_capital": 10},
    ("POST", "/api/validate-pin"): {"pin": "2021", "action": "add"},  # a valid shape; the value never reaches the check
    ("POST", "/api/algorithms/{algo_id}/deposit"): {"amount": 10},
    ("POST", "/api/algorithms/{algo_id}/withdraw"): {"amount": 10},
}

VALID_VALUES = {"parameters": (None, {})}  # hostile values that are valid for the field: the algorithm's defaults


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _operations():
    """(method, path, item-level + operation-level parameters, body schema or None) per documented operation."""
    for path, item in DOCUMENT["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            parameters = item.get("parameters", []) + operation.get("parameters", [])
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            yield method.upper(), path, parameters, _resolve(body) if body else None


OPERATIONS = list(_operations())
TARGETS = [(m, p, "param", prm["in"], prm["name"]) for m, p, params, _ in OPERATIONS for prm in params] + [
    (m, p, "field", "body", name) for m, p, _, body in OPERATIONS if body for name in body.get("properties", {})]


# --------------------------------------------------------------------------- hostile values

unicode_digits = st.text(st.characters(categories=["Nd", "No", "Nl"], exclude_characters=string.digits),
                         min_size=1, max_size=12)
mixed_digits = st.tuples(st.text(string.digits, max_size=4), unicode_digits).map("".join)
huge_numbers = st.integers(min_value=10**19, max_value=10**400).flatmap(
    lambda n: st.sampled_from([str(n), f"-{n}", f"{n}.5", f"{str(n)[:3]}e{len(str(n))}"]))
not_numbers = st.sampled_from(["NaN", "nan", "Infinity", "-Infinity", "inf", "-inf", "1e999", "-0", "0x10",
                               "1_000", "+5", " 5", "5 ", "5\x00", "١٢", "²", "１２", "𝟙𝟚"])
control_text = st.tuples(st.text(max_size=8), st.characters(categories=["Cc", "Cf", "Zl", "Zp"]),
                         st.text(max_size=8)).map("".join)
long_text = st.one_of(st.integers(11, 20_000).map(lambda n: "A" * n),
                      st.text(min_size=300, max_size=2_000))
nested_text = st.integers(2, 5_000).flatmap(lambda n: st.sampled_from(["[" * n, "{" * n, '{"a":' * n, "[" * n + "]" * n]))
HOSTILE_STRINGS = st.one_of(unicode_digits, mixed_digits, huge_numbers, not_numbers, control_text, long_text,
                            nested_text)

nested_values = st.recursive(st.one_of(st.none(), st.booleans(), st.text(max_size=5)),
                             lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=3), inner, max_size=3)),
                             max_leaves=10).filter(lambda v: isinstance(v, (list, dict)) and v)  # {} is a valid
# value of the optional object fields (a new card's parameters and limits: all defaults)
HOSTILE_JSON_VALUES = st.one_of(HOSTILE_STRINGS, nested_values, st.booleans(),
                                st.integers(min_value=10**19, max_value=10**300),
                                st.integers(max_value=-(10**19)), st.floats(min_value=1e300, allow_infinity=False))
HOSTILE_BODIES = st.one_of(
    st.integers(2, 5_000).map(lambda n: "[" * n),
    st.integers(17, 3_000).map(lambda n: '{"pin":' + "[" * n + "]" * n + "}"),
    st.sampled_from(['{"pin": NaN}', '{"initial_capital": Infinity}', "-Infinity", "1" * 5_000, "{" * 3 + "}" * 3,
                     '{"a": 1, "a": 2', "\ufeff{}", "\x00", '"\\ud800"', "[]" * 4_000]),
)


# --------------------------------------------------------------------------- the app under attack


def _file_state(path: Path) -> list:
    files = [path, path.with_name(path.name + "-wal")]
    stats = [f.stat() if f.exists() else None for f in files]  # readers create and remove an empty -wal
    return [(st.st_size, st.st_mtime_ns) if st is not None and st.st_size else None for st in stats]


def _bars(path: Path) -> list:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT * FROM bars ORDER BY 1, 2").fetchall()
    finally:
        conn.close()


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for f in (path, path.with_name(path.name + "-wal")):
        digest.update(f.read_bytes() if f.exists() else b"")
    return digest.hexdigest()


@pytest.fixture
def target(api_factory, api_exchange, system_db, stocks_db):
    """An app with one card, tokens for both actions, and a snapshot function for both databases."""
    app = api_factory(api_exchange)
    client = app.test_client()
    card_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1_000)
    tokens = {action: get_token(client, action) for action in ("add", "stop", "deposit", "withdraw", "export", "pause",
                                                                "resume", "limits")}
    snapshot = lambda: (table_rows(system_db), _file_state(stocks_db), _bars(stocks_db))  # noqa: E731
    stocks_before = _content_hash(stocks_db)
    yield client, card_id, tokens, snapshot
    assert _content_hash(stocks_db) == stocks_before


def _valid_param(parameter: dict, card_id: int) -> str:
    schema = parameter.get("schema", {})
    if parameter["in"] == "path":
        return str(card_id) if schema.get("type") == "integer" else str(parameter.get("example", "x"))
    for key in ("default", "example"):
        if key in schema or key in parameter:
            return str(schema.get(key, parameter.get(key)))
    return str(schema["enum"][0]) if "enum" in schema else "1"


def _send(client, method, path, card_id, tokens, *, path_values=None, query=None, body=None, raw=None):
    url = path
    for name, value in (path_values or {}).items():
        url = url.replace("{" + name + "}", quote(value, safe=""))
    if query:
        url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
    headers = auth(tokens[action_of(method, path)])
    if raw is not None:
        return client.open(url, method=method, data=raw.encode("utf-8", "surrogatepass"),
                           content_type="application/json", headers=headers)
    return client.open(url, method=method, json=body, headers=headers)


def _assert_refused_safely(response, before, after):
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.is_json
    if response.status_code >= 400:
        assert isinstance(response.get_json()["error"], str)
    assert after == before, "a hostile request changed a database"


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_values_at_every_parameter_are_refused_without_writes(target, data):
    client, card_id, tokens, snapshot = target
    method, path, kind, location, name = data.draw(st.sampled_from(TARGETS), label="target")
    parameters = next(params for m, p, params, _ in OPERATIONS if (m, p) == (method, path))
    values = {prm["in"]: {} for prm in parameters}
    for prm in parameters:
        values[prm["in"]][prm["name"]] = _valid_param(prm, card_id)
    body = dict(VALID_BODIES.get((method, path), {})) if any((m, p) == (method, path) and b for m, p, _, b in
                                                             OPERATIONS) else None
    if kind == "param":
        values[location][name] = data.draw(HOSTILE_STRINGS, label=name)
    else:
        body[name] = data.draw(HOSTILE_JSON_VALUES.filter(lambda value: value not in VALID_VALUES.get(name, ())),
                               label=name)
    before = snapshot()
    response = _send(client, method, path, card_id, tokens, path_values=values.get("path"),
                     query=values.get("query"), body=body)
    _assert_refused_safely(response, before, snapshot())


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_raw_bodies_are_refused_without_writes(target, data):
    client, card_id, tokens, snapshot = target
    method, path = data.draw(st.sampled_from([(m, p) for m, p, _, b in OPERATIONS if b]), label="operation")
    raw = data.draw(HOSTILE_BODIES, label="body")
    before = snapshot()
    response = _send(client, method, path, card_id, tokens, path_values={"algo_id": str(card_id)}, raw=raw)
    _assert_refused_safely(response, before, snapshot())
    assert 400 <= response.status_code < 500


# --------------------------------------------------------------------------- the two reported inputs


def test_three_thousand_open_brackets_to_validate_pin_are_a_400(offline_client, system_db):
    before = table_rows(system_db)
    response = offline_client.post("/api/validate-pin", data="[" * 3000, content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper than" in response.get_json()["error"]
    assert table_rows(system_db) == before


@pytest.mark.parametrize("limit", ["²", "999999999999999999999999", "١٢", "１２", "-1", "0", "1e3", " 5", ""])
def test_a_limit_that_is_not_plain_digits_in_range_is_a_400(offline_client, limit):
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1_000)
    response = offline_client.get(f"/api/algorithms/{algo_id}?limit={quote(limit)}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "limit must be an integer from 1 to 100000"


@pytest.mark.parametrize("algo_id", ["²", "١", "１", "1²"])
def test_unicode_digits_in_a_card_id_match_no_card(offline_client, algo_id):
    system_db_manager.create_algorithm("NVDA", "sma_crossover", 1_000)
    response = offline_client.get(f"/api/algorithms/{quote(algo_id)}")
    assert response.status_code == 404 and response.is_json


def test_a_repeated_query_parameter_is_a_400(offline_client):
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1_000)
    response = offline_client.get(f"/api/algorithms/{algo_id}/history?window=1d&window=all")
    assert response.status_code == 400 and "more than once" in response.get_json()["error"]
