"""Decision checking: only valid, affordable, coverable decisions pass; nothing is resized."""
from __future__ import annotations

import numpy as np
import pytest

from algorithms import check_decision

CARD = {"position": 40, "uninvested_cash": 1000.0, "price": 25.0}


def test_an_affordable_buy_is_accepted_as_asked():
    checked = check_decision(("buy", 40), **CARD)
    assert (checked.action, checked.shares, checked.accepted) == ("buy", 40, True)
    assert checked.reason == "buy 40 shares at ~$25.00 = $1,000.00 of $1,000.00 uninvested"
    assert checked.is_trade


def test_a_buy_costing_more_than_the_uninvested_cash_is_refused_not_resized():
    checked = check_decision(("buy", 41), **CARD)
    assert (checked.action, checked.shares, checked.accepted) == ("hold", 0, False)
    assert (checked.requested_action, checked.requested_shares) == ("buy", 41)
    assert "costs $1,025.00, more than the card's uninvested cash $1,000.00" in checked.reason
    assert not checked.is_trade


def test_float_noise_in_the_cash_does_not_refuse_an_exact_fit():
    cash = 1000.0 - 3 * 33.33 + 3 * 33.33 - 1e-12
    assert check_decision(("buy", 40), position=0, uninvested_cash=cash, price=25.0).accepted


def test_selling_part_or_all_of_the_position_is_accepted():
    assert check_decision(("sell", 40), **CARD).shares == 40
    assert check_decision(("sell", 1), **CARD).reason == "sell 1 of 40 shares"


def test_selling_more_than_the_position_is_refused():
    checked = check_decision(("sell", 41), **CARD)
    assert not checked.accepted and checked.action == "hold"
    assert checked.reason == "refused: sell 41 shares but the card holds 40"


def test_hold_with_zero_is_accepted_and_keeps_the_algorithms_note():
    assert check_decision(("hold", 0), **CARD).reason == "hold"
    assert check_decision(("hold", 0, "waiting for a dip"), **CARD).reason == "waiting for a dip"


def test_the_algorithms_note_leads_the_reason_of_a_trade():
    checked = check_decision(("sell", 40, "stop-loss hit"), **CARD)
    assert checked.reason == "stop-loss hit; sell 40 of 40 shares"


def test_numpy_integers_are_whole_numbers():
    checked = check_decision(("buy", np.int64(4)), **CARD)
    assert checked.accepted and checked.shares == 4 and type(checked.shares) is int


@pytest.mark.parametrize("decision, message", [
    (("short", 5), "action must be 'buy', 'sell' or 'hold', got 'short'"),
    (("BUY", 5), "action must be 'buy', 'sell' or 'hold', got 'BUY'"),
    ((None, 0), "action must be"),
    (("buy", 2.0), "shares must be a whole number (int), got 2.0 (float)"),
    (("buy", np.float64(2)), "shares must be a whole number"),
    (("buy", "2"), "shares must be a whole number"),
    (("buy", True), "shares must be a whole number"),
    (("buy", 0), "buy needs a positive number of shares, got 0"),
    (("sell", -3), "sell needs a positive number of shares, got -3"),
    (("hold", 5), "a hold must come with 0 shares, got 5"),
    ("buy", "expected (action, shares)"),
    (None, "expected (action, shares)"),
    (("buy",), "expected (action, shares)"),
    (("buy", 1, "note", "extra"), "expected (action, shares)"),
    ({"action": "buy"}, "expected (action, shares)"),
])
def test_malformed_decisions_are_refused_with_a_reason(decision, message):
    checked = check_decision(decision, **CARD)
    assert (checked.action, checked.shares, checked.accepted) == ("hold", 0, False)
    assert message in checked.reason


@pytest.mark.parametrize("price", [0.0, -1.0, float("nan"), float("inf"), None])
def test_a_buy_without_a_valid_price_is_refused(price):
    checked = check_decision(("buy", 1), position=0, uninvested_cash=1000.0, price=price)
    assert not checked.accepted and "without a valid current price" in checked.reason


def test_a_sell_does_not_need_a_price():
    assert check_decision(("sell", 5), position=5, uninvested_cash=0.0, price=None).accepted


def test_a_checked_decision_serialises_for_logs_and_json():
    assert check_decision(("sell", 5), **CARD).to_dict() == {
        "action": "sell", "shares": 5, "accepted": True, "reason": "sell 5 of 40 shares",
        "requested_action": "sell", "requested_shares": 5}
