"""A card is created with parameter values the API checks against the algorithm's declaration,
and shows them back; refused values name the parameter and write nothing."""
from __future__ import annotations

import pytest

from system_databse import system_db_manager
from tests.fixtures.api import auth, get_token, table_rows

NEW = {"ticker": "NVDA", "algorithm_type": "sma_crossover", "initial_capital": 2500}


def test_the_add_dialog_learns_each_algorithms_parameters(offline_client):
    listed = {a["name"]: a["parameters"] for a in offline_client.get("/api/available-algorithms").get_json()["algorithms"]}
    assert listed["sma_crossover"] == [
        {"name": "fast", "type": "int", "default": 20, "help": "fast moving average, in minute bars (shorter than slow)",
         "min": 2, "max": 200},
        {"name": "slow", "type": "int", "default": 50, "help": "slow moving average, in minute bars", "min": 3,
         "max": 400}]
    assert [p["name"] for p in listed["lot_take_profit"]] == ["take_profit", "stop_loss", "lot_size"]
    assert [(p["name"], p["default"]) for p in listed["bollinger_reversion"]] == [("window", 20), ("width", 2.0)]


def test_a_card_keeps_the_values_it_was_created_with(api_client, token, system_db):
    response = api_client.post("/api/algorithms", json={**NEW, "parameters": {"fast": 10}}, headers=auth(token))
    assert response.status_code == 201, response.get_json()
    card = response.get_json()
    assert card["parameters"] == {"fast": 10, "slow": 50}  # the default is stored too
    assert system_db_manager.get_algorithm_parameters(card["id"]) == {"fast": 10, "slow": 50}
    assert api_client.get(f"/api/algorithms/{card['id']}").get_json()["parameters"] == {"fast": 10, "slow": 50}
    [listed] = api_client.get("/api/algorithms").get_json()["algorithms"]
    assert listed["parameters"] == {"fast": 10, "slow": 50}


def test_a_float_parameter_takes_an_integer_and_is_stored_as_a_number(api_client, token):
    body = {**NEW, "algorithm_type": "lot_take_profit", "parameters": {"take_profit": 0.05, "lot_size": 1}}
    card = api_client.post("/api/algorithms", json=body, headers=auth(token)).get_json()
    assert card["parameters"] == {"take_profit": 0.05, "stop_loss": 0.01, "lot_size": 1.0}


@pytest.mark.parametrize("parameters, field, words", [
    ({"fast": "10"}, "parameters.fast", "parameter 'fast' must be an integer from 2 to 200, got '10'"),
    ({"fast": 10.5}, "parameters.fast", "parameter 'fast' must be an integer from 2 to 200, got 10.5"),
    ({"slow": 1000}, "parameters.slow", "parameter 'slow' must be an integer from 3 to 400, got 1000"),
    ({"slow": -3}, "parameters.slow", "got -3"),
    ({"fast": None}, "parameters.fast", "got None"),
    ({"window": 20}, "parameters.window", "unknown parameter(s) 'window'; allowed: fast, slow"),
    ([10, 50], "parameters", "parameters must be an object of name: value"),
    (None, "parameters", "parameters must be an object of name: value"),
])
def test_bad_values_are_refused_with_400_naming_the_parameter_and_nothing_is_written(
        api_client, token, system_db, parameters, field, words):
    before = table_rows(system_db)
    response = api_client.post("/api/algorithms", json={**NEW, "parameters": parameters}, headers=auth(token))
    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert words in response.get_json()["error"]
    assert table_rows(system_db) == before


def test_an_algorithm_without_parameters_refuses_any(tmp_path, api_factory, api_exchange):
    folder = tmp_path / "algos"
    folder.mkdir()
    (folder / "plain.py").write_text('"""Plain."""\nclass Algorithm:\n'
                                     "    def __init__(self, ticker, initial_capital): pass\n"
                                     "    def get_data_requirements(self, current_time): return {'bars': 1}\n"
                                     "    def on_data(self, bars, transaction_history): return ('hold', 0)\n")
    client = api_factory(api_exchange, ALGORITHMS_DIR=folder).test_client()
    token = get_token(client, "add")
    body = {**NEW, "algorithm_type": "plain"}
    refused = client.post("/api/algorithms", json={**body, "parameters": {"fast": 5}}, headers=auth(token))
    assert refused.status_code == 400
    assert "allowed: none (this algorithm takes no parameters)" in refused.get_json()["error"]
    created = client.post("/api/algorithms", json=body, headers=auth(token))
    assert created.status_code == 201 and created.get_json()["parameters"] == {}
