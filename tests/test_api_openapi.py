"""The OpenAPI document is the whole API, and the API keeps to it under fuzzing.

schemathesis generates requests from ``api/openapi.json`` (valid and invalid ones) and sends them
to the real app served by waitress on 127.0.0.1, with a valid token for each action, over real
databases and a paper exchange: no 5xx, every status, header, content type and body as
documented, invalid input refused, authentication enforced, undocumented methods answered 405.
The stateful run follows the document's links: create a card, read it, stop it, read it again.
"""
from __future__ import annotations

import json
import re
import shutil
import threading

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from waitress.server import create_server
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

import api_server
from api.openapi import OPENAPI_PATH
from database import db_manager
from system_databse import system_db_manager
from system_databse.create_system_db import create_system_db
from tests.fixtures.api import auth, broker_factory, get_token
from tests.fixtures.exchange import start_paper_exchange

pytestmark = pytest.mark.slow(55)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, ignored_auth, unsupported_method]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, stocks_db_template):
    """An app over its own databases (one card with a trade and bars) and a real paper exchange."""
    folder = tmp_path_factory.mktemp("fuzz")
    create_system_db(folder / "system.db")
    shutil.copyfile(stocks_db_template, folder / "stocks.db")
    ledger = system_db_manager.get_connection(folder / "system.db")
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 5_000, conn=ledger)
    system_db_manager.record_buy(algo_id, 10, 100.0, conn=ledger)
    ledger.close()
    market = db_manager.get_connection(folder / "stocks.db")
    db_manager.upsert_bars(market, [{"ticker": "NVDA", "timestamp": "2030-01-02T15:00:00Z", "open": 101, "high": 101,
                                     "low": 101, "close": 101, "volume": 5}])
    market.close()
    exchange = start_paper_exchange(folder / "exchange")
    try:  # a failed start still stops the exchange
        app = api_server.create_app({"SYSTEM_DB": folder / "system.db", "STOCKS_DB": folder / "stocks.db",
                                     "BROKER_FACTORY": broker_factory(exchange.env), "TOKEN_TTL_SECONDS": 3600,
                                     "TESTING": True})
        client = app.test_client()
        tokens = {action: get_token(client, action)
                  for action in ("add", "stop", "deposit", "withdraw", "export", "pause", "resume", "limits")}
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        yield app, tokens, f"http://127.0.0.1:{server.effective_port}"
        server.close()
        thread.join(timeout=30)
    finally:
        exchange.stop()


schema = schemathesis.openapi.from_dict(json.loads(OPENAPI_PATH.read_text()))
# The stateful run follows only the document's own links: links inferred from listings depend on
# what earlier examples left on the server, which hypothesis cannot replay.
chained = schemathesis.openapi.from_dict(json.loads(OPENAPI_PATH.read_text()), config=SchemathesisConfig.from_dict(
    {"phases": {"stateful": {"inference": {"algorithms": []}}}}))


def headers_for(tokens: dict, case) -> dict:
    """The token minted for the action the operation performs."""
    return auth(tokens[action_of(case.method, case.path)])


def action_of(method: str, path: str) -> str:
    if path.startswith("/api/export/"):
        return "export"
    if path.endswith(("/deposit", "/withdraw")):
        return path.rsplit("/", 1)[1]
    if path == "/api/pause":
        return "pause"
    if path.endswith("/resume"):
        return "resume"
    if path.endswith("/limits"):
        return "limits"
    return "stop" if method.upper() == "DELETE" else "add"


# Operations that start a child process per valid request (the chart's indicators) get fewer examples.
SLOW_OPERATIONS = r"/chart$"


@schema.exclude(path_regex=SLOW_OPERATIONS).parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_keeps_to_its_openapi_document(case, fuzzed):
    _app, tokens, base_url = fuzzed
    case.call_and_validate(base_url=base_url, headers=headers_for(tokens, case), checks=CHECKS, timeout=60)


@schema.include(path_regex=SLOW_OPERATIONS).parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_operations_with_a_child_process_keep_to_the_document(case, fuzzed):
    _app, tokens, base_url = fuzzed
    case.call_and_validate(base_url=base_url, headers=headers_for(tokens, case), checks=CHECKS, timeout=60)


def test_create_read_stop_read_sequences_keep_to_the_document(fuzzed):
    """Stateful: requests chained through the document's links, each response checked like above."""
    _app, tokens, base_url = fuzzed

    class Workflow(chained.as_state_machine()):
        def before_call(self, case):
            """A create the exchange accepts (a random ticker is rarely tradable), so the chain goes on."""
            positive = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
            if positive and case.method == "POST" and case.path == "/api/algorithms":
                case.body = {"ticker": "NVDA", "algorithm_type": "sma_crossover", "initial_capital": 100}

        def get_call_kwargs(self, case):
            return {"base_url": base_url, "headers": headers_for(tokens, case), "timeout": 60}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=[*CHECKS, ensure_resource_availability],
                                   transport_kwargs=kwargs or None, recorder=self.recorder)

    run_state_machine_as_test(Workflow, settings=settings(
        max_examples=40, stateful_step_count=6, deadline=None, suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate]))


def test_every_route_is_documented_and_every_documented_route_exists(fuzzed):
    app = fuzzed[0]
    document = app.test_client().get("/api/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, item in document["paths"].items()
                  for method in item if method in ("get", "post", "delete", "put", "patch")}
    routed = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routed
