"""The example in algorithms/README.md is a working algorithm that does what its docstring says."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from algorithms import Bars, available_algorithms, decide_for_card

README = Path(__file__).resolve().parents[1] / "algorithms" / "README.md"
START = np.datetime64("2026-01-05T14:30:00")


def example_source() -> str:
    return re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)


def make_bars(closes) -> Bars:
    stamps = START + np.arange(len(closes)).astype("timedelta64[m]")
    return Bars.from_columns(stamps, closes, [c + 0.25 for c in closes], [c - 0.25 for c in closes], closes)


def test_the_readme_example_breaks_out_and_back(tmp_path):
    (tmp_path / "my_breakout.py").write_text(example_source())
    assert [info.description for info in available_algorithms(tmp_path)] == [
        "Breakout: buy when the close tops the last hour's high, sell everything when it falls below the low."]
    card = {"id": 9, "algorithm_type": "my_breakout", "ticker": "AAPL", "initial_capital": 1_000.0}
    up = decide_for_card(card, make_bars([100.0] * 60 + [101.0]), [], 101.0, directory=tmp_path)
    assert (up.action, up.shares) == ("buy", 9)  # 101 > high 100.25; 1,000 / 101 = 9.9
    held = [{"id": 1, "type": "buy", "shares": 9, "price": 101.0, "timestamp": "2026-01-05T15:31:00Z"}]
    down = decide_for_card(card, make_bars([100.0] * 60 + [99.0]), held, 99.0, directory=tmp_path)
    assert (down.action, down.shares) == ("sell", 9)
    assert down.reason == "close 99.00 fell below the 60-minute low; sell 9 of 9 shares"
    flat = decide_for_card(card, make_bars([100.0] * 61), [], 100.0, directory=tmp_path)
    assert flat.action == "hold"


def test_the_readme_parameters_example_declares_what_the_dialog_shows_and_uses_it(tmp_path):
    from algorithms import class_parameters, load_algorithm_class, static_parameters

    source = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[1]
    (tmp_path / "window_breakout.py").write_text(source)
    cls = load_algorithm_class("window_breakout", tmp_path)
    assert [(p.name, p.type, p.default) for p in class_parameters(cls)] == [
        ("window", "int", 60), ("margin", "float", 0.0), ("exit", "choice", "low")]
    assert static_parameters(source) == class_parameters(cls)
    card = {"id": 9, "algorithm_type": "window_breakout", "ticker": "AAPL", "initial_capital": 1_000.0,
            "parameters": {"window": 5}}
    closes = [100.0] * 60 + [101.0]
    up = decide_for_card(card, make_bars(closes), [], 101.0, directory=tmp_path)
    assert (up.action, up.shares) == ("buy", 9)
    assert up.reason.startswith("close 101.00 broke the 5-minute high")
