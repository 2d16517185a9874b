"""bollinger_reversion on hand-made closes.

19 closes of 100 and one of 95: mean 99.75, population variance (19 * 0.25^2 + 4.75^2) / 20
= 1.1875, sd 1.0897, lower band 99.75 - 2.1794 = 97.57: 95 is below it, a buy.
"""
from __future__ import annotations

import numpy as np
import pytest

from algorithms import Bars, decide_for_card
from algorithms.bollinger_reversion import bands

START = np.datetime64("2026-01-05T14:30:00")
CARD = {"id": 2, "algorithm_type": "bollinger_reversion", "ticker": "MSFT", "initial_capital": 1_000.0}


def make_bars(closes) -> Bars:
    stamps = START + np.arange(len(closes)).astype("timedelta64[m]")
    return Bars.from_columns(stamps, closes, closes, closes, closes)


def holding(shares: int, price: float) -> list[dict]:
    return [{"id": 1, "type": "buy", "shares": shares, "price": price, "timestamp": "2026-01-05T14:00:00Z"}]


def decide(closes, history=()):
    return decide_for_card(CARD, make_bars(closes), list(history), closes[-1])


def test_the_bands_match_the_worked_example():
    lower, mean, upper = bands([100.0] * 19 + [95.0])
    assert mean == pytest.approx(99.75)
    assert lower == pytest.approx(99.75 - 2 * 1.1875 ** 0.5)
    assert upper == pytest.approx(99.75 + 2 * 1.1875 ** 0.5)


def test_a_close_below_the_lower_band_buys_with_all_the_cash():
    decision = decide([100.0] * 19 + [95.0])
    assert (decision.action, decision.shares) == ("buy", 10)  # 1,000 / 95 = 10.5
    assert decision.reason.startswith("close 95.00 below the lower band 97.57")


def test_a_small_dip_inside_the_bands_holds():
    # 19 x 100 and 99: mean 99.95, sd 0.218, lower 99.51: 99 is below... so use 99.8
    decision = decide([100.0] * 10 + [99.6, 100.4] * 4 + [100.0, 99.8])
    assert decision.action == "hold" and "inside the bands" in decision.reason


def test_it_does_not_add_to_an_open_position():
    decision = decide([100.0] * 19 + [95.0], holding(5, 96.0))
    assert decision.action == "hold" and decision.reason.startswith("holding 5")


def test_back_at_the_mean_sells_everything():
    # 19 x 95 and 96: mean 95.05, the close 96 is above it
    decision = decide([95.0] * 19 + [96.0], holding(10, 95.0))
    assert (decision.action, decision.shares) == ("sell", 10)
    assert decision.reason == "close 96.00 is back at the mean 95.05; sell 10 of 10 shares"


def test_flat_prices_have_zero_width_bands_and_never_trade():
    assert decide([100.0] * 20).action == "hold"


def test_it_needs_20_bars():
    assert decide([100.0] * 19).reason == "waiting for data: 19 of 20 bars"
