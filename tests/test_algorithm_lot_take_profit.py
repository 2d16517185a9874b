"""lot_take_profit: every buy lot exits at its own take-profit (+2%) or stop-loss (-1%).

The spec's two lots: 100 shares at $150.50 (take-profit 153.51, stop-loss 148.995) and 50 shares
at $145.25 (take-profit 148.155, stop-loss 143.7975).
"""
from __future__ import annotations

import numpy as np
import pytest

from algorithms import Bars, decide_for_card
from algorithms.lot_take_profit import open_lots

START = np.datetime64("2026-01-05T15:00:00")
CARD = {"id": 3, "algorithm_type": "lot_take_profit", "ticker": "NVDA", "initial_capital": 60_000.0}
TWO_LOTS = [
    {"id": 1, "type": "buy", "shares": 100, "price": 150.50, "timestamp": "2024-06-04T14:30:00Z"},
    {"id": 2, "type": "buy", "shares": 50, "price": 145.25, "timestamp": "2024-06-04T14:31:00Z"},
]


def make_bars(closes, highs=None) -> Bars:
    stamps = START + np.arange(len(closes)).astype("timedelta64[m]")
    return Bars.from_columns(stamps, closes, highs or closes, closes, closes)


def decide(closes, history, highs=None):
    return decide_for_card(CARD, make_bars(closes, highs), history, closes[-1])


def flat_then(price: float) -> list[float]:
    return [price] * 30


def test_a_lot_inside_its_own_band_is_kept():
    decision = decide(flat_then(147.00), TWO_LOTS[1:])  # 143.80 < 147 < 148.155
    assert decision.action == "hold"


def test_only_the_cheaper_lot_reaches_its_take_profit():
    decision = decide(flat_then(149.00), TWO_LOTS)  # 149 >= 148.155, and 149 > 148.995
    assert (decision.action, decision.shares) == ("sell", 50)
    assert decision.reason.startswith("$145.25 lot hit its take-profit $148.16")


def test_after_that_sale_the_dearer_lot_is_what_remains():
    history = TWO_LOTS + [{"id": 3, "type": "sell", "shares": 50, "price": 149.00,
                           "timestamp": "2024-06-04T15:00:00Z"}]
    lots = open_lots(history)
    assert [(lot.price, lot.shares) for lot in lots] == [(150.50, 100)]
    assert decide(flat_then(153.60), history).shares == 100  # its own take-profit, 153.51
    decision = decide(flat_then(148.90), history)  # its own stop-loss, 148.995
    assert (decision.action, decision.shares) == ("sell", 100)
    assert "$150.50 lot hit its stop-loss $149.00" in decision.reason


def test_both_lots_exit_together_when_both_are_hit():
    decision = decide(flat_then(148.50), TWO_LOTS)  # 145.25 take-profit and 150.50 stop-loss
    assert (decision.action, decision.shares) == ("sell", 150)


def test_the_specs_partial_sell_is_taken_from_a_triggered_lot_first():
    history = [TWO_LOTS[0], TWO_LOTS[1],
               {"id": 3, "type": "sell", "shares": 25, "price": 155.75, "timestamp": "2024-06-04T14:32:00Z"}]
    # at 155.75 both lots are past their take-profits: the oldest triggered lot gives the 25
    assert [(lot.price, lot.shares) for lot in open_lots(history)] == [(150.50, 75), (145.25, 50)]


def test_a_liquidation_is_matched_oldest_first_when_no_lot_is_triggered():
    history = TWO_LOTS + [{"id": 3, "type": "sell", "shares": 120, "price": 147.0,
                           "timestamp": "2024-06-04T15:00:00Z"}]
    assert [(lot.price, lot.shares) for lot in open_lots(history)] == [(145.25, 30)]


def test_a_dip_below_the_30_bar_high_buys_a_quarter_of_the_capital():
    closes = [100.0] * 29 + [98.9]  # 1.1% below the high of 100
    decision = decide(closes, [])
    assert (decision.action, decision.shares) == ("buy", 151)  # 15,000 / 98.9 = 151.7
    assert "1.1% below the 30-minute high 100.00: new lot" in decision.reason


def test_a_shallow_dip_holds():
    assert decide([100.0] * 29 + [99.5], []).action == "hold"


def test_no_new_lot_within_the_cooldown_of_the_last_buy():
    closes = [100.0] * 29 + [98.9]  # last bar starts 15:29
    recent = [{"id": 1, "type": "buy", "shares": 10, "price": 99.0, "timestamp": "2026-01-05T15:25:00Z"}]
    decision = decide(closes, recent)
    assert decision.action == "hold" and "less than 10 minutes ago" in decision.reason
    older = [dict(recent[0], timestamp="2026-01-05T15:19:00Z")]
    assert decide(closes, older).action == "buy"


def test_at_most_four_lots():
    lots = [{"id": i, "type": "buy", "shares": 10, "price": 99.0, "timestamp": f"2026-01-05T13:0{i}:00Z"}
            for i in range(4)]
    assert decide([100.0] * 29 + [98.9], lots).reason == "4 lots open, the most allowed"


def test_a_lot_is_capped_by_the_uninvested_cash():
    spent = [{"id": 1, "type": "buy", "shares": 500, "price": 100.0, "timestamp": "2026-01-05T13:00:00Z"},
             {"id": 2, "type": "sell", "shares": 500, "price": 100.0, "timestamp": "2026-01-05T13:30:00Z"},
             {"id": 3, "type": "buy", "shares": 553, "price": 99.5, "timestamp": "2026-01-05T14:00:00Z"}]
    # 60,000 - 55,023.50 = 4,976.50 left: the lot is 4,976.50 / 98.9 = 50 shares, not 15,000's worth
    decision = decide([100.0] * 29 + [98.9], spent)
    assert (decision.action, decision.shares) == ("buy", 50)


@pytest.mark.parametrize("price, expected", [(148.155, 50), (148.15, 0), (143.79, 50)])
def test_thresholds_are_inclusive(price, expected):
    decision = decide(flat_then(price), TWO_LOTS[1:])
    assert decision.shares == expected
