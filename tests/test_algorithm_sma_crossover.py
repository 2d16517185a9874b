"""sma_crossover on hand-made closes where the right answer is worked out in the comments.

Base series: 50 closes of 100 then 10 of 99. On its last bar SMA20 = (10*100 + 10*99)/20 = 99.5
and SMA50 = (40*100 + 10*99)/50 = 99.8: SMA20 is below. Adding one close X gives
SMA20 = (1890 + X)/20 and SMA50 = (4890 + X)/50, so SMA20 > SMA50 exactly when X > 110;
X = 110 makes the averages equal (both 100): a tie.
"""
from __future__ import annotations

import numpy as np
import pytest

from algorithms import Bars, decide_for_card
from algorithms.sma_crossover import crossover_signal

START = np.datetime64("2026-01-05T14:30:00")
BELOW = [100.0] * 50 + [99.0] * 10
ABOVE = [100.0] * 50 + [101.0] * 10  # mirror: SMA20 above; X < 90 crosses down, X = 90 ties
CARD = {"id": 1, "algorithm_type": "sma_crossover", "ticker": "AAPL", "initial_capital": 10_000.0}


def make_bars(closes) -> Bars:
    stamps = START + np.arange(len(closes)).astype("timedelta64[m]")
    return Bars.from_columns(stamps, closes, closes, closes, closes, [100] * len(closes))


def bought(shares: int, price: float) -> list[dict]:
    return [{"id": 1, "type": "buy", "shares": shares, "price": price, "timestamp": "2026-01-05T14:00:00Z"}]


def decide(closes, history=(), card=CARD):
    return decide_for_card(card, make_bars(closes), list(history), closes[-1])


def test_it_asks_for_51_bars_plus_a_tie_lookback():
    from algorithms import requirements_for_card
    assert requirements_for_card(CARD, "2026-01-05T15:31:00Z") == {"bars": 61}


def test_a_cross_above_buys_with_all_the_uninvested_cash():
    decision = decide(BELOW + [111.0])
    assert (decision.action, decision.shares, decision.accepted) == ("buy", 90, True)  # 90 * 111 = 9,990
    assert decision.reason.startswith("SMA20 100.0500 crossed above SMA50 100.0200; buy 90 shares at ~$111.00")


def test_staying_above_after_the_cross_holds_and_says_where_it_stands():
    decision = decide(BELOW + [111.0, 112.0], bought(90, 111.0))
    assert (decision.action, decision.reason) == ("hold", "no cross: SMA20 above SMA50")


def test_a_cross_below_sells_the_whole_position():
    decision = decide(ABOVE + [89.0], bought(90, 101.0))
    assert (decision.action, decision.shares) == ("sell", 90)
    assert "crossed below" in decision.reason


def test_a_cross_below_with_nothing_held_holds_and_says_why():
    decision = decide(ABOVE + [89.0])
    assert decision.action == "hold" and decision.reason.endswith("nothing to sell")


def test_an_exact_tie_is_not_a_cross():
    assert crossover_signal(np.array(BELOW + [110.0]))[0] == 0
    assert decide(BELOW + [110.0]).reason == "no cross: SMA20 level with SMA50"


def test_crossing_through_a_tie_fires_on_the_first_bar_past_it():
    # signs: -1 (bar 59), 0 (bar 60: X = 110), +1 (bar 61)
    decision = decide(BELOW + [110.0, 112.0])
    assert decision.action == "buy"


def test_a_tie_then_back_to_the_same_side_is_not_a_cross():
    # -1, 0 (tie), then -1 again: SMA20 dips back below
    assert decide(BELOW + [110.0, 80.0]).action == "hold"
    # +1, 0 (tie at 90), +1 again
    assert decide(ABOVE + [90.0, 130.0], bought(10, 100.0)).action == "hold"


def test_float_rounding_of_cent_prices_does_not_fake_a_cross():
    closes = [round(c * 1.01, 2) for c in BELOW + [110.0]]  # 101.00, 99.99, ..., tie at 111.10
    fast, slow = sum(closes[-20:]) / 20, sum(closes[-50:]) / 50
    assert fast > slow  # naive float comparison would call this a cross up...
    assert decide(closes).reason == "no cross: SMA20 level with SMA50"  # ...but it is a tie


def test_a_card_with_little_cash_left_cannot_buy_a_share():
    card = {**CARD, "initial_capital": 100.0}
    decision = decide(BELOW + [111.0], card=card)
    assert decision.action == "hold" and decision.accepted
    assert decision.reason.endswith("but the cash buys no share")


def test_a_warm_up_window_is_a_hold():
    decision = decide([100.0] * 30)
    assert decision.action == "hold" and decision.reason == "waiting for data: 30 of 61 bars"


@pytest.mark.parametrize("tail, expected", [([111.0], 1), ([110.0], 0), ([109.0], 0), ([110.0, 112.0], 1)])
def test_crossover_signal_on_its_own(tail, expected):
    assert crossover_signal(BELOW + tail)[0] == expected


def test_a_run_of_ties_longer_than_the_lookback_is_no_cross():
    # 61 equal closes: every spread is a tie, there is no earlier sign to cross from
    assert crossover_signal([100.0] * 70 + [101.0])[0] == 0


def exact_signs(closes) -> list[int]:
    """sign(SMA20 - SMA50) per bar from 49 on, in exact integer cents: 5*sum20 - 2*sum50."""
    cents = np.round(np.asarray(closes) * 100).astype(np.int64)
    sums = np.concatenate([[0], np.cumsum(cents)])
    t = np.arange(49, len(cents))
    return np.sign(5 * (sums[t + 1] - sums[t - 19]) - 2 * (sums[t + 1] - sums[t - 49])).tolist()


def test_it_fires_exactly_where_an_exact_stateful_engine_does_on_a_tie_heavy_walk():
    rng = np.random.default_rng(3)
    closes = np.round(100 + np.cumsum(rng.choice([-0.01, 0.01], size=20_000)), 2).tolist()
    signs = exact_signs(closes)
    assert signs.count(0) > 40  # ties are common with cent steps: the case the rule is for
    expected, last = [], 0
    for t, sign in enumerate(signs, start=49):
        if sign and last and sign != last and t >= 60:
            expected.append((t, sign))
        last = sign or last
    ours = [(t, s) for t in range(60, len(closes)) if (s := crossover_signal(closes[t - 60:t + 1])[0])]
    assert len(expected) > 200
    assert ours == expected
