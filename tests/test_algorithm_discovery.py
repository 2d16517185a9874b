"""The web process reads algorithm files, never runs them; the loader refuses files other users may write."""
from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import pytest

from algorithms import AlgorithmLoadError, load_algorithm_class, scan_algorithms
from algorithms._discovery import listed_algorithms, read_algorithm, read_algorithms
from tests.fixtures.api import auth, get_token

FILES = Path(__file__).resolve().parent / "algorithm_files"
HOLD_CLASS = ("class Algorithm:\n"
              "    def __init__(self, ticker, initial_capital): pass\n"
              "    def get_data_requirements(self, current_time): return {'bars': 1}\n"
              "    def on_data(self, bars, transaction_history): return ('hold', 0)\n")
HOLD = '"""Holds forever."""\n' + HOLD_CLASS


@pytest.fixture
def folder(tmp_path) -> Path:
    path = tmp_path / "algorithms"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    return path


def write(folder: Path, name: str, text: str, mode: int = 0o644) -> Path:
    path = folder / f"{name}.py"
    path.write_text(text)
    path.chmod(mode)
    return path


def algorithm_modules() -> set[str]:
    return {name for name in sys.modules if name.startswith("autotrader_algorithm_")}


def test_the_shipped_algorithms_read_from_source_match_what_the_loader_runs():
    read = {info.name: info for info in read_algorithms().algorithms}
    loaded = {info.name: info for info in scan_algorithms().algorithms}
    assert set(read) == set(loaded) >= {"sma_crossover", "bollinger_reversion", "lot_take_profit"}
    for name, info in loaded.items():
        assert (read[name].description, read[name].parameters) == (info.description, info.parameters), name


def test_broken_files_are_refused_with_what_the_source_shows(tmp_path):
    shutil.copytree(FILES, tmp_path / "algorithms")
    result = read_algorithms(tmp_path / "algorithms")
    assert [info.name for info in result.algorithms] == [
        "bad_requirements", "good_hold", "mutates_history", "mutates_inputs", "raises_in_on_data",
        "returns_float_shares"]
    assert "syntax error in syntax_error.py line 5" in result.errors["syntax_error"]
    assert "defines no class named Algorithm" in result.errors["no_algorithm_class"]
    assert "must be defined in the file itself" in result.errors["imported_class"]
    assert "has no method on_data()" in result.errors["missing_on_data"]
    assert "Algorithm(ticker, initial_capital) cannot be called" in result.errors["wrong_signature"]
    assert "_private_helper" not in result.errors and "_private_helper" not in result.algorithms


def test_a_file_that_hangs_at_import_is_listed_at_once_and_never_run(api_factory, folder, tmp_path):
    marker = tmp_path / "ran.txt"
    write(folder, "hangs", f'"""Hangs when imported."""\nopen({str(marker)!r}, "w").close()\nwhile True:\n    pass\n'
          + HOLD_CLASS)
    write(folder, "holds", HOLD)
    client = api_factory(ALGORITHMS_DIR=folder).test_client()
    before = algorithm_modules()
    answers = []
    worker = threading.Thread(target=lambda: answers.append(client.get("/api/available-algorithms")), daemon=True)
    worker.start()
    worker.join(60)  # a file run in the request would never return
    assert answers, "the listing did not answer: the hanging file was run"
    listed = answers[0].get_json()["algorithms"]
    assert [(a["name"], a["description"]) for a in listed] == [("hangs", "Hangs when imported."),
                                                              ("holds", "Holds forever.")]
    assert not marker.exists()
    assert algorithm_modules() == before


def test_creating_a_card_checks_the_type_without_running_the_file(api_factory, api_exchange, folder, tmp_path):
    marker = tmp_path / "ran.txt"
    write(folder, "noisy", f'"""Writes a file when run."""\nopen({str(marker)!r}, "w").close()\n' + HOLD_CLASS)
    client = api_factory(api_exchange, ALGORITHMS_DIR=folder).test_client()
    before = algorithm_modules()
    response = client.post("/api/algorithms", headers=auth(get_token(client, "add")),
                           json={"ticker": "NVDA", "algorithm_type": "noisy", "initial_capital": 100})
    assert response.status_code == 201, response.get_json()
    assert not marker.exists() and algorithm_modules() == before


@pytest.mark.parametrize("file_mode,folder_mode,who", [
    (0o664, 0o755, "algorithm file"), (0o646, 0o755, "algorithm file"), (0o644, 0o775, "algorithm folder"),
    (0o644, 0o777, "algorithm folder"),
])
def test_a_file_or_folder_other_users_may_write_is_refused_and_reported(folder, file_mode, folder_mode, who, caplog):
    path = write(folder, "shared", HOLD, mode=file_mode)
    folder.chmod(folder_mode)
    with pytest.raises(AlgorithmLoadError) as refused:
        load_algorithm_class("shared", folder)
    message = refused.value.message
    assert f"refused: the {who}" in message and "writable by" in message and "chmod go-w" in message
    assert scan_algorithms(folder).errors["shared"] == message
    assert read_algorithms(folder).errors["shared"] == message
    with caplog.at_level("WARNING"):
        assert listed_algorithms(folder) == []
    assert "algorithm shared not offered: refused" in caplog.text


def test_the_owner_fixing_the_mode_makes_it_usable_again(folder):
    path = write(folder, "shared", HOLD, mode=0o664)
    with pytest.raises(AlgorithmLoadError):
        load_algorithm_class("shared", folder)
    path.chmod(0o644)
    assert load_algorithm_class("shared", folder).__name__ == "Algorithm"
    assert read_algorithm("shared", folder).description == "Holds forever."


def test_a_link_to_a_file_outside_the_folder_and_bad_names_are_refused(folder, tmp_path):
    outside = write(tmp_path, "elsewhere", HOLD)
    (folder / "linked.py").symlink_to(outside)
    write(folder, "two-words", HOLD)
    result = read_algorithms(folder)
    assert result.algorithms == [] and "linked" in result.errors and "two-words" not in result.errors
    with pytest.raises(AlgorithmLoadError):
        read_algorithm("../elsewhere", folder)


def test_a_huge_file_is_refused_without_parsing(folder):
    write(folder, "huge", HOLD + "#" * (1024 * 1024) + "\n")
    assert "at most" in read_algorithms(folder).errors["huge"]


def test_no_documented_read_runs_an_algorithm_in_the_web_process(api_factory, api_exchange, ledger):
    """Every GET of the API document, for a card with a trade: no algorithm module is imported here."""
    import json

    from api.openapi import OPENAPI_PATH
    from system_databse import system_db_manager

    card = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1_000, conn=ledger)
    system_db_manager.record_buy(card, 1, 100.0, conn=ledger)
    client = api_factory(api_exchange).test_client()
    token = get_token(client, "export")
    before = algorithm_modules()
    paths = [p for p, item in json.loads(OPENAPI_PATH.read_text())["paths"].items() if "get" in item]
    for path in paths:
        response = client.get(path.replace("{algo_id}", str(card)), headers=auth(token))
        assert response.status_code < 500, path
    assert algorithm_modules() == before
