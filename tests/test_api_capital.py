"""Issue #24: the owner adds money to a running card, or takes some back, without stopping it.

Through the real API (a paper exchange process holds the account's $100,000) and the real ledger:
a deposit or a withdrawal moves the card's allocation, its uninvested cash and the account's
available cash by exactly the amount and leaves its P&L alone; every refusal is a 4xx with a
plain reason, and nothing is written (``table_rows`` before and after).
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from database import db_manager
from database.market_calendar import TIMESTAMP_FORMAT, utc_datetime
from orchestra import net_order
from orchestra.allocation import Intent, net_ticker
from system_databse import system_db_manager
from tests.fixtures.api import auth, get_token, table_rows

BAR_AT = "2026-11-23T14:31:00Z"


def bar(ticker, stamp, close):
    return {"ticker": ticker, "timestamp": stamp, "open": close, "high": close, "low": close, "close": close,
            "volume": 100}


@pytest.fixture
def nvda(ledger, market):
    """A $10,000 NVDA card that bought 50 at $100 and is now worth 50 x $105: P&L +$250."""
    card = system_db_manager.create_algorithm("NVDA", "sma_crossover", 10_000, conn=ledger)
    system_db_manager.record_buy(card, 50, 100.0, timestamp="2026-11-23T14:30:00Z", conn=ledger)
    db_manager.upsert_bars(market, [bar("NVDA", BAR_AT, 105.0)])
    return card


def card_of(client, card_id):
    return next(c for c in client.get("/api/algorithms").get_json()["algorithms"] if c["id"] == card_id)


def available(client):
    return client.get("/api/account/cash").get_json()["available_cash"]


def move(client, card_id, kind, amount, token=None):
    token = token or get_token(client, kind)
    return client.post(f"/api/algorithms/{card_id}/{kind}", json={"amount": amount}, headers=auth(token))


# --------------------------------------------------------------------------- the stories


def test_deposit_5000_into_a_10000_card_then_withdraw_2000(api_client, nvda):
    before, cash_before = card_of(api_client, nvda), available(api_client)
    assert (before["capital"], before["uninvested_cash"], before["current_value"], before["pnl"]) == (
        10_000.0, 5_000.0, 10_250.0, 250.0)

    deposited = move(api_client, nvda, "deposit", 5_000)
    assert deposited.status_code == 201, deposited.get_json()
    assert deposited.get_json()["capital_move"]["kind"] == "deposit"
    after = card_of(api_client, nvda)
    assert (after["initial_capital"], after["capital"], after["deposits"]) == (10_000.0, 15_000.0, 5_000.0)
    assert after["uninvested_cash"] == before["uninvested_cash"] + 5_000
    assert after["current_value"] == before["current_value"] + 5_000
    assert after["pnl"] == before["pnl"] == 250.0, "a deposit is never a gain"
    assert available(api_client) == cash_before - 5_000

    withdrawn = move(api_client, nvda, "withdraw", 2_000)
    assert withdrawn.status_code == 201, withdrawn.get_json()
    assert withdrawn.get_json()["capital_move"]["amount"] == 2_000.0
    last = card_of(api_client, nvda)
    assert (last["capital"], last["withdrawals"]) == (13_000.0, 2_000.0)
    assert last["uninvested_cash"] == after["uninvested_cash"] - 2_000
    assert last["current_value"] == after["current_value"] - 2_000
    assert last["pnl"] == 250.0
    assert available(api_client) == cash_before - 3_000
    assert (last["current_shares"], last["trade_count"]) == (50, 1), "no share was bought or sold"


def test_pnl_percent_is_taken_on_all_the_capital_the_card_was_given(api_client, nvda):
    assert card_of(api_client, nvda)["pnl_percent"] == 2.5                 # 250 / 10,000
    move(api_client, nvda, "deposit", 15_000)
    assert card_of(api_client, nvda)["pnl_percent"] == 1.0                 # 250 / 25,000
    move(api_client, nvda, "withdraw", 20_000)                             # all its cash back
    card = card_of(api_client, nvda)
    assert (card["capital"], card["uninvested_cash"], card["pnl"]) == (5_000.0, 0.0, 250.0)
    assert card["pnl_percent"] == 1.0, "money given back does not make the same gain look bigger"


def test_a_withdrawal_of_exactly_the_uninvested_cash_leaves_zero(api_client, nvda):
    assert move(api_client, nvda, "withdraw", 5_000).status_code == 201
    assert card_of(api_client, nvda)["uninvested_cash"] == 0.0


# --------------------------------------------------------------------------- refusals write nothing


def test_withdrawing_more_than_the_uninvested_cash_is_refused_and_nothing_is_written(api_client, nvda, system_db):
    token = get_token(api_client, "withdraw")
    before = table_rows(system_db)
    response = move(api_client, nvda, "withdraw", 5_000.01, token)
    assert response.status_code == 422
    body = response.get_json()
    assert "more than card" in body["error"] and "uninvested cash 5,000.00" in body["error"]
    assert "never sells shares" in body["error"]
    assert (body["field"], body["withdrawable"]) == ("amount", 5_000.0)
    assert table_rows(system_db) == before


def test_cash_an_open_buy_has_promised_cannot_be_withdrawn(api_client, nvda, ledger, system_db):
    net_order.journal(ledger, net_ticker("NVDA", [Intent(nvda, "buy", 10, "test")]), "at-NVDA-open-buy",
                      minute=BAR_AT, price=105.0, now=BAR_AT)  # pending at the broker: $1,050 promised
    token = get_token(api_client, "withdraw")
    before = table_rows(system_db)
    response = move(api_client, nvda, "withdraw", 4_000, token)
    assert response.status_code == 422
    assert response.get_json()["withdrawable"] == 3_950.0 and "1,050.00" in response.get_json()["error"]
    assert table_rows(system_db) == before
    assert move(api_client, nvda, "withdraw", 3_950).status_code == 201


def test_depositing_more_than_the_accounts_available_cash_is_refused(api_client, nvda, system_db):
    cash = available(api_client)  # $100,000 at the broker less the card's $5,000 uninvested
    token = get_token(api_client, "deposit")
    before = table_rows(system_db)
    response = move(api_client, nvda, "deposit", cash + 0.01, token)
    assert response.status_code == 422
    body = response.get_json()
    assert f"available cash {cash:,.2f}" in body["error"] and body["available_cash"] == cash
    assert table_rows(system_db) == before
    assert move(api_client, nvda, "deposit", cash).status_code == 201
    assert available(api_client) == 0.0


@pytest.mark.parametrize("kind", ["deposit", "withdraw"])
def test_a_stopped_card_cannot_take_or_give_money(api_client, nvda, ledger, system_db, kind):
    system_db_manager.stop_algorithm(nvda, conn=ledger)
    token = get_token(api_client, kind)
    before = table_rows(system_db)
    response = move(api_client, nvda, kind, 100, token)
    assert response.status_code == 409
    assert response.get_json()["error"] == f"card {nvda} is stopped: its capital cannot change"
    assert table_rows(system_db) == before


@pytest.mark.parametrize("kind", ["deposit", "withdraw"])
def test_an_unknown_card_is_a_404(api_client, system_db, kind):
    before = table_rows(system_db)
    response = move(api_client, 999, kind, 100)
    assert response.status_code == 404 and response.get_json()["error"] == "algorithm 999 not found"
    assert table_rows(system_db) == before


BAD_AMOUNTS = [
    ({"amount": 0}, "positive"),
    ({"amount": -100}, "positive"),
    ({"amount": -0.0}, "positive"),
    ({"amount": "100"}, "must be a number"),
    ({"amount": True}, "must be a number"),
    ({"amount": [100]}, "must be a number"),
    ({"amount": 100.001}, "more than two decimals"),
    ({"amount": 0.001}, "more than two decimals"),
    ({"amount": 1e300}, "too large"),
    ({}, "missing field: amount"),
    ({"amount": None}, "missing field: amount"),
    ({"amount": 100, "card": 2}, "unknown field(s): card"),
]


@pytest.mark.parametrize("kind", ["deposit", "withdraw"])
@pytest.mark.parametrize("body,words", BAD_AMOUNTS, ids=[repr(b) for b, _ in BAD_AMOUNTS])
def test_bad_amounts_are_refused_and_nothing_is_written(api_client, nvda, system_db, kind, body, words):
    token = get_token(api_client, kind)
    before = table_rows(system_db)
    response = api_client.post(f"/api/algorithms/{nvda}/{kind}", json=body, headers=auth(token))
    assert response.status_code == 400
    assert words in response.get_json()["error"]
    assert table_rows(system_db) == before


@pytest.mark.parametrize("raw", ['{"amount": NaN}', '{"amount": Infinity}', '{"amount": -Infinity}', '{"amount": 1',
                                 '[100]'])
def test_amounts_json_cannot_carry_are_refused(api_client, nvda, system_db, raw):
    token = get_token(api_client, "deposit")
    before = table_rows(system_db)
    response = api_client.post(f"/api/algorithms/{nvda}/deposit", data=raw, content_type="application/json",
                               headers=auth(token))
    assert response.status_code == 400 and response.get_json()["error"]
    assert table_rows(system_db) == before


def test_each_way_needs_its_own_pin_token(api_client, nvda, system_db):
    before = table_rows(system_db)
    assert move(api_client, nvda, "withdraw", 100, get_token(api_client, "deposit")).status_code == 401
    assert move(api_client, nvda, "deposit", 100, get_token(api_client, "add")).status_code == 401
    no_token = api_client.post(f"/api/algorithms/{nvda}/deposit", json={"amount": 100})
    assert no_token.status_code == 401 and "POST /api/validate-pin" in no_token.get_json()["error"]
    assert table_rows(system_db) == before


def test_a_deposit_needs_the_brokers_cash_a_withdrawal_does_not(offline_client, ledger, system_db):
    card = system_db_manager.create_algorithm("NVDA", "sma_crossover", 10_000, conn=ledger)
    token = get_token(offline_client, "deposit")
    before = table_rows(system_db)
    down = move(offline_client, card, "deposit", 100, token)
    assert down.status_code == 503 and "nothing was deposited" in down.get_json()["error"]
    assert table_rows(system_db) == before
    assert move(offline_client, card, "withdraw", 100).status_code == 201
    assert card_of(offline_client, card)["capital"] == 9_900.0


@pytest.mark.parametrize("kind", ["deposit", "withdraw"])
def test_live_keys_refuse_money_moves_while_the_pin_is_the_default(api_factory, api_exchange, nvda, system_db, kind):
    client = api_factory(api_exchange, LIVE_TRADING=True).test_client()
    token = get_token(client, kind)
    before = table_rows(system_db)
    response = move(client, nvda, kind, 100, token)
    assert response.status_code == 403 and "PIN is still the default" in response.get_json()["error"]
    assert table_rows(system_db) == before


# --------------------------------------------------------------------------- where the moves show


def test_the_cards_detail_history_and_chart_show_the_moves(api_client, nvda, market):
    move(api_client, nvda, "deposit", 5_000)
    move(api_client, nvda, "withdraw", 1_234.56)
    detail = api_client.get(f"/api/algorithms/{nvda}/detail").get_json()
    assert [(m["kind"], m["amount"]) for m in detail["capital_moves"]] == [("withdrawal", 1_234.56), ("deposit", 5_000.0)]
    assert (detail["capital"], detail["pnl"]) == (13_765.44, 250.0)
    assert detail["unrealized_pnl"] + detail["realized_pnl"] == detail["pnl"], "FIFO is blind to capital moves"
    assert [(t["type"], t["shares"]) for t in detail["transactions"]] == [("buy", 50)]


def test_the_value_line_steps_with_a_deposit_and_the_pnl_line_does_not(api_client, ledger, market):
    """The chart's points before a deposit keep the capital of their time."""
    card = system_db_manager.create_algorithm("NVDA", "sma_crossover", 10_000, conn=ledger)
    minute = "2026-11-23T14:30:00Z"
    ledger.execute("UPDATE algorithm_instances SET created_at = ? WHERE id = ?", (minute, card))
    system_db_manager.record_buy(card, 50, 100.0, timestamp=minute, conn=ledger)
    stamps = [shift(minute, k) for k in (1, 2, 3)]
    db_manager.upsert_bars(market, [bar("NVDA", s, 100.0 + k) for k, s in enumerate(stamps)])
    system_db_manager.deposit(card, 5_000, at=shift(minute, 2, seconds=30), conn=ledger)  # during the second bar
    points = api_client.get(f"/api/algorithms/{card}/history?window=all").get_json()
    by_time = {p["timestamp"]: p for p in points["points"]}
    assert [(by_time[s]["capital"], by_time[s]["value"], by_time[s]["pnl"]) for s in stamps] == [
        (10_000.0, 10_000.0, 0.0), (15_000.0, 15_050.0, 50.0), (15_000.0, 15_100.0, 100.0)]
    assert points["capital"] == 15_000.0
    assert [(m["kind"], m["label"]) for m in points["capital_moves"]] == [("deposit", "deposit $5,000.00")]


def shift(stamp, minutes, seconds=0):
    return (utc_datetime(stamp) + timedelta(minutes=minutes, seconds=seconds)).strftime(TIMESTAMP_FORMAT)


def test_exports_list_the_moves_among_the_fills(api_client, nvda):
    move(api_client, nvda, "deposit", 5_000)
    move(api_client, nvda, "withdraw", 2_000.5)
    text = api_client.get(f"/api/export/transactions.csv?card={nvda}",
                          headers=auth(get_token(api_client, "export"))).get_data(as_text=True)
    rows = [line.split(",") for line in text.strip().splitlines()[1:]]
    assert [(r[3], r[4], r[5], r[6]) for r in rows] == [
        ("buy", "50", "100.0", "5000.0"), ("deposit", "", "", "5000.0"), ("withdrawal", "", "", "2000.5")]
    realized = api_client.get(f"/api/export/realized.csv?card={nvda}",
                              headers=auth(get_token(api_client, "export"))).get_data(as_text=True)
    assert "deposit" not in realized and "withdrawal" not in realized
