"""Discovery and loading: only files of the algorithms folder, broken files reported and skipped."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from algorithms import (AlgorithmLoadError, available_algorithms, is_valid_algorithm_type, load_algorithm_class,
                        scan_algorithms)

FILES = Path(__file__).resolve().parent / "algorithm_files"
BROKEN = {
    "syntax_error": "syntax error in syntax_error.py line 5",
    "failing_import": "ModuleNotFoundError: No module named 'no_such_package_for_autotrader'",
    "raises_at_import": "RuntimeError: configuration missing",
    "exits_at_import": "SystemExit: 3",
    "no_algorithm_class": "defines no class named Algorithm",
    "imported_class": "must be defined in the file itself",
    "missing_on_data": "has no method on_data()",
    "wrong_signature": "Algorithm(ticker, initial_capital) cannot be called",
}


@pytest.fixture
def plugin_dir(tmp_path) -> Path:
    """A folder holding every fixture plugin, good and broken."""
    folder = tmp_path / "algorithms"
    shutil.copytree(FILES, folder)
    return folder


def test_the_shipped_algorithms_are_discovered_with_descriptions():
    found = {info.name: info.description for info in available_algorithms()}
    assert {"sma_crossover", "bollinger_reversion", "lot_take_profit"} <= set(found)
    assert found["sma_crossover"].startswith("SMA crossover: buy")
    assert all(description for description in found.values())
    assert not any(name.startswith("_") for name in found)


def test_broken_files_are_reported_with_their_error_and_the_others_still_load(plugin_dir, caplog):
    result = scan_algorithms(plugin_dir)
    assert [info.name for info in result.algorithms] == [
        "bad_requirements", "good_hold", "mutates_history", "mutates_inputs", "raises_in_on_data",
        "returns_float_shares"]
    assert set(result.errors) == set(BROKEN)
    for name, expected in BROKEN.items():
        assert expected in result.errors[name], (name, result.errors[name])
    with caplog.at_level("WARNING"):
        names = [info.name for info in available_algorithms(plugin_dir)]
    assert "good_hold" in names and "syntax_error" not in names
    assert "algorithm syntax_error skipped: syntax error" in caplog.text


def test_description_is_the_first_docstring_line(plugin_dir):
    descriptions = {info.name: info.description for info in available_algorithms(plugin_dir)}
    assert descriptions["good_hold"] == "Always holds: the smallest valid algorithm."


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_loading_a_broken_file_raises_a_load_error_naming_the_problem(plugin_dir, name):
    with pytest.raises(AlgorithmLoadError) as error:
        load_algorithm_class(name, plugin_dir)
    assert BROKEN[name] in str(error.value)
    assert error.value.algorithm_type == name


@pytest.mark.parametrize("name", ["../x", "os", "os.path", "_framework", "_private_helper", "", "class",
                                  "sma crossover", "sma_crossover.py", "a/b", "café", None, 42, "__init__"])
def test_names_that_are_not_plain_public_identifiers_or_not_files_here_are_refused(plugin_dir, name):
    with pytest.raises(AlgorithmLoadError):
        load_algorithm_class(name, plugin_dir)


def test_valid_type_names():
    assert is_valid_algorithm_type("sma_crossover")
    assert is_valid_algorithm_type("rsi2")
    for bad in ("../x", "_x", "x.y", "import", "", "x-y", "é"):
        assert not is_valid_algorithm_type(bad)


def test_an_outside_module_name_is_unknown_here_even_if_importable(plugin_dir):
    with pytest.raises(AlgorithmLoadError, match="unknown algorithm 'os'"):
        load_algorithm_class("os")
    with pytest.raises(AlgorithmLoadError, match="unknown algorithm 'json'"):
        load_algorithm_class("json", plugin_dir)


def test_a_symlink_leading_out_of_the_folder_is_refused(plugin_dir, tmp_path):
    outside = tmp_path / "elsewhere.py"
    shutil.copy(plugin_dir / "good_hold.py", outside)
    (plugin_dir / "sneaky").write_text("")
    (plugin_dir / "sneaky.py").symlink_to(outside)
    with pytest.raises(AlgorithmLoadError, match="unknown algorithm 'sneaky'"):
        load_algorithm_class("sneaky", plugin_dir)


def test_private_files_are_never_executed_by_discovery(plugin_dir):
    result = scan_algorithms(plugin_dir)  # _private_helper.py raises if run
    assert "_private_helper" not in result.errors


def _algorithm_source(action: str) -> str:
    return (f'"""Answers {action}."""\n'
            "class Algorithm:\n"
            "    def __init__(self, ticker, initial_capital):\n        pass\n"
            "    def get_data_requirements(self, current_time):\n        return {'bars': 1}\n"
            f"    def on_data(self, bars, transaction_history):\n        return ('{action}', 0)\n")


def test_an_edited_file_takes_effect_on_the_next_load_without_restarting(tmp_path):
    path = tmp_path / "flip.py"
    path.write_text(_algorithm_source("hold"))
    first = load_algorithm_class("flip", tmp_path)
    assert first("X", 1).on_data(None, ()) == ("hold", 0)
    assert load_algorithm_class("flip", tmp_path) is first  # unchanged file: not executed again
    path.write_text(_algorithm_source("sell"))  # same size, same second: content decides
    second = load_algorithm_class("flip", tmp_path)
    assert second("X", 1).on_data(None, ()) == ("sell", 0)
    assert available_algorithms(tmp_path)[0].description == "Answers sell."


def test_a_file_broken_by_an_edit_is_reported_then_fixed(tmp_path):
    path = tmp_path / "edited.py"
    path.write_text(_algorithm_source("hold"))
    load_algorithm_class("edited", tmp_path)
    path.write_text("class Algorithm(:\n")
    with pytest.raises(AlgorithmLoadError, match="syntax error"):
        load_algorithm_class("edited", tmp_path)
    path.write_text(_algorithm_source("hold"))
    assert load_algorithm_class("edited", tmp_path)("X", 1).on_data(None, ()) == ("hold", 0)


def test_a_new_file_is_discovered_on_the_next_scan(tmp_path):
    assert available_algorithms(tmp_path) == []
    (tmp_path / "fresh.py").write_text(_algorithm_source("hold"))
    assert [info.to_dict() for info in available_algorithms(tmp_path)] == [
        {"name": "fresh", "description": "Answers hold.", "parameters": []}]


def test_a_file_that_hangs_while_importing_blocks_only_its_own_load(tmp_path):
    import threading
    release = tmp_path / "release"
    (tmp_path / "hangs.py").write_text(
        "import pathlib, time\n"
        f"while not pathlib.Path({str(release)!r}).exists():\n    time.sleep(0.01)\n"
        + _algorithm_source("hold"))
    (tmp_path / "fine.py").write_text(_algorithm_source("sell"))
    loader = threading.Thread(target=load_algorithm_class, args=("hangs", tmp_path), daemon=True)
    loader.start()
    try:
        assert load_algorithm_class("fine", tmp_path)("X", 1).on_data(None, ()) == ("sell", 0)
        assert loader.is_alive()
    finally:
        release.write_text("go")
        loader.join(60)
    assert not loader.is_alive()


def test_a_broken_file_is_logged_once_not_on_every_scan(plugin_dir, caplog):
    with caplog.at_level("WARNING"):
        available_algorithms(plugin_dir)
        available_algorithms(plugin_dir)
    assert caplog.text.count("algorithm syntax_error skipped") == 1
    (plugin_dir / "syntax_error.py").write_text("class Algorithm(:\n    pass\n")  # a different error
    with caplog.at_level("WARNING"):
        available_algorithms(plugin_dir)
    assert caplog.text.count("algorithm syntax_error skipped") == 2


def test_an_algorithm_for_a_newer_interface_is_refused(tmp_path):
    (tmp_path / "future.py").write_text(_algorithm_source("hold").replace(
        "class Algorithm:\n", "class Algorithm:\n    interface_version = 2\n"))
    with pytest.raises(AlgorithmLoadError, match="written for interface version 2; this framework supports 1 to 1"):
        load_algorithm_class("future", tmp_path)
