"""The net order as an object, driven in-process event by event on a real ledger (no broker, no
threads): its journal, its states and the table of allowed moves, and the one function that
applies a broker event and writes the cards' transactions."""
from __future__ import annotations

import pytest

from orchestra import net_order
from orchestra.allocation import Intent, net_ticker
from orchestra.exceptions import OperationalError
from orchestra.net_order import BrokerUpdate, Missing, Rejected
from system_databse import fifo, system_db_manager as ledger_db
from system_databse.orders import OrderStateError, TRANSITIONS

NOW = "2026-06-04T14:31:05Z"


def _card(ledger, ticker="NVDA", capital=100_000):
    return ledger_db.create_algorithm(ticker, "x", capital, conn=ledger)


def _journal(ledger, coid, plan, price=100.0, minute="2026-06-04T14:31:00Z"):
    return net_order.journal(ledger, plan, coid, minute=minute, price=price, now=NOW)


def _states(ledger, coid):
    return [(e["event"], e["state_before"], e["state_after"]) for e in ledger_db.get_order_events(coid, conn=ledger)]


def test_an_order_goes_pending_submitted_partially_filled_filled_and_its_fill_is_written_once(ledger):
    first, second = _card(ledger), _card(ledger)
    plan = net_ticker("NVDA", [Intent(first, "buy", 6, "sma cross up"), Intent(second, "buy", 4)])
    order = _journal(ledger, "at-NVDA-1", plan)
    assert (order.state, order.parts, order.shares) == ("pending", {first: 6, second: 4}, 10)
    assert _journal(ledger, "at-NVDA-1", plan) is None  # the same minute is never journaled twice

    accepted = net_order.apply(ledger, "at-NVDA-1", BrokerUpdate("accepted", 0, None, None, "b-1"), now=NOW)
    partial = net_order.apply(ledger, "at-NVDA-1", BrokerUpdate("partially_filled", 7, 101.5, None, "b-1"), now=NOW)
    assert (accepted.order.state, partial.order.state, partial.order.filled) == ("submitted", "partially_filled", 7)
    assert ledger_db.get_transactions(first, conn=ledger) == []  # nothing is written until the order ends

    filled = net_order.apply(ledger, "at-NVDA-1", BrokerUpdate("filled", 10, 101.5, "2026-06-04T14:31:02Z", "b-1"),
                             now=NOW)
    again = net_order.apply(ledger, "at-NVDA-1", BrokerUpdate("filled", 10, 101.5, "2026-06-04T14:31:02Z", "b-1"),
                            now=NOW)
    assert (filled.order.state, filled.changed, again.changed) == ("filled", True, False)
    assert [(c.card_id, c.filled) for c in again.cards] == [(first, 6), (second, 4)]
    assert [(t["type"], t["shares"], t["price"], t["timestamp"]) for t in ledger_db.get_transactions(first, conn=ledger)] \
        == [("buy", 6, 101.5, "2026-06-04T14:31:02Z")]
    assert _states(ledger, "at-NVDA-1") == [("journaled", None, "pending"), ("broker_update", "pending", "submitted"),
                                            ("broker_update", "submitted", "partially_filled"),
                                            ("broker_update", "partially_filled", "filled")]
    assert ledger_db.get_open_orders(conn=ledger) == []


def test_a_partial_fill_then_cancel_ends_cancelled_with_the_fill_split_pro_rata(ledger):
    cards = [_card(ledger) for _ in range(3)]
    plan = net_ticker("NVDA", [Intent(c, "buy", n) for c, n in zip(cards, (5, 3, 2))])
    _journal(ledger, "at-NVDA-2", plan)
    ended = net_order.apply(ledger, "at-NVDA-2", BrokerUpdate("canceled", 7, 99.0, NOW, "b-2"), now=NOW)
    assert (ended.order.state, [c.filled for c in ended.cards]) == ("cancelled", [4, 2, 1])  # quotas 3.5, 2.1, 1.4


def test_crosses_are_filled_with_the_journal_and_a_minute_that_cancels_out_sends_nothing(ledger):
    buyer, seller = _card(ledger, "KO"), _card(ledger, "KO")
    ledger_db.record_buy(seller, 5, 60.0, timestamp="2026-06-04T14:00:00Z", conn=ledger)
    order = _journal(ledger, "at-KO-1", net_ticker("KO", [Intent(buyer, "buy", 5), Intent(seller, "sell", 5)]),
                     price=62.0)
    assert (order.state, order.crosses, order.is_open) == ("crossed", {buyer: 5, seller: 5}, False)
    assert ledger_db.get_position_totals(buyer, conn=ledger)["shares"] == 5
    assert ledger_db.get_position_totals(seller, conn=ledger)["shares"] == 0
    assert ledger_db.get_transactions(buyer, conn=ledger)[0]["price"] == 62.0


def test_nothing_filled_ends_cancelled_or_failed_without_a_transaction_and_later_events_change_nothing(ledger):
    card = _card(ledger)
    for coid in ("a", "b", "c"):
        _journal(ledger, coid, net_ticker("NVDA", [Intent(card, "buy", 10)]))
    assert net_order.apply(ledger, "a", BrokerUpdate("expired", 0), now=NOW).order.state == "cancelled"
    assert net_order.apply(ledger, "b", Rejected("insufficient buying power"), now=NOW).order.state == "failed"
    assert net_order.apply(ledger, "c", BrokerUpdate("rejected", 0), now=NOW).order.state == "failed"
    late = net_order.apply(ledger, "b", BrokerUpdate("filled", 10, 5.0, NOW), now=NOW)  # ended stays ended
    assert (late.changed, late.order.state) == (False, "failed")
    assert ledger_db.get_transactions(card, conn=ledger) == []
    assert ledger_db.get_order("b", conn=ledger)["error"] == "rejected: insufficient buying power"


def test_the_table_refuses_a_move_it_does_not_list_and_an_older_update_is_ignored(ledger):
    card = _card(ledger)
    _journal(ledger, "p", net_ticker("NVDA", [Intent(card, "buy", 10)]))
    net_order.apply(ledger, "p", BrokerUpdate("partially_filled", 4, 10.0, None, "b"), now=NOW)
    stale = net_order.apply(ledger, "p", BrokerUpdate("new", 0, None, None, "b"), now=NOW)  # the stream, late
    assert (stale.changed, stale.order.state, stale.order.filled) == (False, "partially_filled", 4)
    assert "submitted" not in TRANSITIONS["partially_filled"] and TRANSITIONS["filled"] == frozenset()
    with pytest.raises(OrderStateError, match="cannot go from 'partially_filled' to 'failed'"):
        net_order.apply(ledger, "p", Rejected("too late"), now=NOW)
    assert ledger_db.get_order("p", conn=ledger)["status"] == "partially_filled"


def test_a_cross_after_a_late_fill_is_stamped_after_it_so_the_fifo_lots_still_add_up(ledger):
    buyer, seller = _card(ledger, "AMD"), _card(ledger, "AMD")
    _journal(ledger, "at-AMD-1", net_ticker("AMD", [Intent(seller, "buy", 20)]), price=495.0,
             minute="2026-11-23T16:00:00Z")
    net_order.apply(ledger, "at-AMD-1", BrokerUpdate("filled", 20, 495.37, "2026-11-23T16:01:07Z"), now=NOW)  # late
    _journal(ledger, "at-AMD-2", net_ticker("AMD", [Intent(buyer, "buy", 20), Intent(seller, "sell", 20)]),
             price=495.32, minute="2026-11-23T16:01:00Z")
    fills = ledger_db.get_transactions_between(seller, conn=ledger)
    assert [(t["type"], t["timestamp"]) for t in fills] == [("buy", "2026-11-23T16:01:07Z"),
                                                            ("sell", "2026-11-23T16:01:07Z")]
    lots = fifo.match(fills, [])
    assert (lots.shares, round(lots.realized, 2)) == (0, -1.00)


def test_a_stopped_card_can_only_journal_its_liquidation_and_nobody_sells_what_it_does_not_hold(ledger):
    card = _card(ledger)
    ledger_db.record_buy(card, 10, 100.0, timestamp="2026-06-04T14:00:00Z", conn=ledger)
    ledger_db.stop_algorithm(card, conn=ledger)
    with pytest.raises(net_order.CardsLeftOut) as stopped:
        _journal(ledger, "buy", net_ticker("NVDA", [Intent(card, "buy", 1)]))
    assert stopped.value.card_ids == [card] and ledger_db.get_order("buy", conn=ledger) is None
    with pytest.raises(ledger_db.LedgerError, match="holds 10 shares and cannot sell 11"):
        _journal(ledger, "too-many", net_ticker("NVDA", [Intent(card, "sell", 11, liquidation=True)]))
    _journal(ledger, "liq", net_ticker("NVDA", [Intent(card, "sell", 10, liquidation=True)]))
    net_order.apply(ledger, "liq", BrokerUpdate("filled", 10, 103.0, NOW), now=NOW)
    assert ledger_db.get_position_totals(card, conn=ledger)["held"] == 0


def test_a_fill_that_would_sell_more_than_a_card_holds_is_refused_and_writes_nothing(ledger):
    """The broker filled a sell the card no longer covers (it sold meanwhile by hand): the order
    stays open and the ledger never shows a negative position."""
    card = _card(ledger)
    ledger_db.record_buy(card, 5, 100.0, timestamp="2026-06-04T14:00:00Z", conn=ledger)
    _journal(ledger, "s", net_ticker("NVDA", [Intent(card, "sell", 5)]))
    ledger_db.record_sell(card, 2, 100.0, timestamp="2026-06-04T14:30:30Z", conn=ledger)
    with pytest.raises(ledger_db.LedgerError, match="holds 3 shares and cannot sell 5"):
        net_order.apply(ledger, "s", BrokerUpdate("filled", 5, 101.0, NOW), now=NOW)
    assert ledger_db.get_order("s", conn=ledger)["status"] == "pending"
    assert ledger_db.get_position_totals(card, conn=ledger)["held"] == 3


def test_a_missing_order_fails_if_never_acknowledged_and_needs_a_person_after_the_bound_if_it_was(ledger):
    card = _card(ledger)
    for coid in ("never", "acked"):
        _journal(ledger, coid, net_ticker("NVDA", [Intent(card, "buy", 1)]))
    assert net_order.apply(ledger, "never", Missing(), now=NOW).order.error == "the broker never received this order"
    net_order.apply(ledger, "acked", BrokerUpdate("new", 0, None, None, "b-1"), now=NOW)
    for n in range(1, net_order.MISSED_LOOKUP_BOUND):
        assert net_order.apply(ledger, "acked", Missing(), now=NOW).order.missed_lookups == n
    with pytest.raises(OperationalError, match="acked"):
        net_order.apply(ledger, "acked", Missing(), now=NOW)
    assert ledger_db.get_order("acked", conn=ledger)["missed_lookups"] == net_order.MISSED_LOOKUP_BOUND
    assert ledger_db.get_order("acked", conn=ledger)["status"] == "submitted"
