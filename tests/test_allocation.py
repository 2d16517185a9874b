"""Netting a ticker's decisions and splitting a fill: pure functions, checked by property."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from orchestra.allocation import Intent, allocate_fill, largest_remainder, net_ticker

weights = st.dictionaries(st.integers(1, 500), st.integers(0, 10_000), min_size=1, max_size=30)


@settings(deadline=None)  # a busy machine is not a failure
@given(weights, st.data())
def test_a_split_adds_up_never_exceeds_a_part_and_is_always_the_same(parts, data):
    total = data.draw(st.integers(0, sum(parts.values())))
    split = largest_remainder(total, parts)
    assert sum(split.values()) == total
    assert all(0 <= split[card] <= parts[card] for card in parts)
    assert split == largest_remainder(total, dict(reversed(list(parts.items()))))  # order of cards is irrelevant
    exact = {card: total * w / max(sum(parts.values()), 1) for card, w in parts.items()}
    assert all(abs(split[card] - exact[card]) < 1 for card in parts)  # never a whole share from its quota


def test_a_partial_fill_of_ten_over_parts_of_5_3_2_with_7_filled():
    assert allocate_fill(7, {1: 5, 2: 3, 3: 2}) == {1: 4, 2: 2, 3: 1}  # quotas 3.5, 2.1, 1.4


def test_ties_go_to_the_larger_part_then_the_older_card():
    assert largest_remainder(1, {4: 1, 2: 1}) == {2: 1, 4: 0}
    assert largest_remainder(2, {1: 1, 2: 2, 3: 1}) == {1: 1, 2: 1, 3: 0}  # remainders .5, 0, .5


def test_three_cards_that_buy_sell_and_hold_send_one_order_for_the_net():
    plan = net_ticker("AAPL", [Intent(1, "buy", 10), Intent(2, "sell", 4), Intent(3, "buy", 0)])
    assert (plan.side, plan.net_shares) == ("buy", 6)
    assert plan.crossed == {2: 4, 1: 4}
    assert plan.order_parts == {1: 6}


def test_sells_larger_than_buys_cross_the_buys_and_sell_the_rest_pro_rata():
    plan = net_ticker("KO", [Intent(1, "sell", 6), Intent(2, "sell", 3), Intent(3, "buy", 3)])
    assert (plan.side, plan.net_shares) == ("sell", 6)
    assert plan.crossed == {3: 3, 1: 2, 2: 1}
    assert plan.order_parts == {1: 4, 2: 2}


def test_decisions_that_cancel_out_exactly_send_no_order():
    plan = net_ticker("F", [Intent(1, "buy", 5), Intent(2, "sell", 5)])
    assert (plan.side, plan.net_shares, plan.order_parts, plan.crossed) == (None, 0, {}, {1: 5, 2: 5})


intents = st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(0, 1000)), max_size=20)


@settings(deadline=None)
@given(intents)
def test_every_share_decided_is_either_crossed_or_in_the_net_order(raw):
    plan = net_ticker("SPY", [Intent(card, side, shares) for card, (side, shares) in enumerate(raw, 1)])
    bought = sum(s for side, s in raw if side == "buy")
    sold = sum(s for side, s in raw if side == "sell")
    assert plan.net_shares == abs(bought - sold)
    for card, (side, shares) in enumerate(raw, 1):
        assert plan.crossed.get(card, 0) + plan.order_parts.get(card, 0) == shares
        if plan.order_parts.get(card):
            assert side == plan.side
    crossed_buys = sum(plan.crossed.get(c, 0) for c, (side, _) in enumerate(raw, 1) if side == "buy")
    crossed_sells = sum(plan.crossed.get(c, 0) for c, (side, _) in enumerate(raw, 1) if side == "sell")
    assert crossed_buys == crossed_sells  # an internal cross has a buyer for every seller


def test_a_card_cannot_decide_twice():
    with pytest.raises(ValueError):
        net_ticker("AAPL", [Intent(1, "buy", 1), Intent(1, "sell", 1)])
