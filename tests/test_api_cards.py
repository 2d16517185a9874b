"""Cards: listing, one card, history, creating and stopping — and every refusal leaves system.db untouched."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from database import db_manager
from system_databse import system_db_manager
from tests.fixtures.api import auth, get_token, table_rows

FMT = "%Y-%m-%dT%H:%M:%SZ"


def bar(ticker, stamp, close):
    return {"ticker": ticker, "timestamp": stamp, "open": close, "high": close, "low": close, "close": close,
            "volume": 100}


def minute(start: datetime, offset: int, seconds: int = 0) -> str:
    return (start + timedelta(minutes=offset, seconds=seconds)).strftime(FMT)


@pytest.fixture
def after_creation():
    """The minute after now: bars from here on come after any card created in the test."""
    return datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)


# --------------------------------------------------------------------------- reading


def test_a_card_that_bought_50_at_100_shows_plus_250_at_105(offline_client, ledger, market):
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 10_000, conn=ledger)
    system_db_manager.record_buy(algo_id, 50, 100.0, conn=ledger)
    db_manager.upsert_bars(market, [bar("NVDA", "2026-11-23T14:30:00Z", 104.0), bar("NVDA", "2026-11-23T14:31:00Z", 105.0)])

    card = offline_client.get("/api/algorithms").get_json()["algorithms"][0]
    assert card["id"] == algo_id and card["ticker"] == "NVDA" and card["algorithm_type"] == "sma_crossover"
    assert card["display_name"].startswith("NVDA_sma_crossover_")
    assert (card["current_shares"], card["trade_count"]) == (50, 1)
    assert (card["current_price"], card["price_timestamp"]) == (105.0, "2026-11-23T14:31:00Z")
    assert (card["current_value"], card["pnl"], card["pnl_percent"]) == (10_250.0, 250.0, 2.5)
    assert card["uninvested_cash"] == 5_000.0
    assert (card["status"], card["state"], card["stopped_at"]) == ("running", "running", None)


def test_listing_shows_running_and_still_liquidating_cards_only(offline_client, ledger, market):
    running = system_db_manager.create_algorithm("TSLA", "sma_crossover", 1_000, conn=ledger)
    closing = system_db_manager.create_algorithm("AAPL", "sma_crossover", 5_000, conn=ledger)
    system_db_manager.record_buy(closing, 10, 200.0, conn=ledger)
    done = system_db_manager.create_algorithm("MSFT", "sma_crossover", 5_000, conn=ledger)
    system_db_manager.record_buy(done, 10, 300.0, conn=ledger)
    system_db_manager.record_sell(done, 10, 310.0, conn=ledger)
    for algo_id in (closing, done):
        system_db_manager.stop_algorithm(algo_id, conn=ledger)
    db_manager.upsert_bars(market, [bar("AAPL", "2026-11-23T14:30:00Z", 190.0)])

    cards = offline_client.get("/api/algorithms").get_json()["algorithms"]
    assert [c["id"] for c in cards] == [running, closing]
    tsla, aapl = cards
    assert (tsla["current_price"], tsla["price_timestamp"], tsla["current_value"], tsla["pnl"]) == (None, None, 1000.0, 0.0)
    assert (aapl["status"], aapl["state"], aapl["current_shares"]) == ("stopped", "closing", 10)
    assert (aapl["current_value"], aapl["pnl"], aapl["pnl_percent"]) == (4_900.0, -100.0, -2.0)


def test_market_status_falls_back_to_the_calendar_and_says_so(offline_client, api_clock):
    body = offline_client.get("/api/algorithms").get_json()
    assert body["market_open"] is True  # Monday 2026-11-23 10:00 New York
    assert body["market"]["source"] == "calendar" and "unreachable" in body["market"]["error"]
    assert body["market"]["next_close"] == "2026-11-23T21:00:00Z"
    assert body["server_time"] == "2026-11-23T15:00:00Z"


def test_market_status_on_a_weekend_from_the_calendar(api_factory, api_clock):
    api_clock.now = datetime(2026, 11, 28, 15, 0, tzinfo=timezone.utc)
    body = api_factory("down").test_client().get("/api/algorithms").get_json()
    assert body["market_open"] is False and body["market"]["next_open"] == "2026-11-30T14:30:00Z"


def test_market_status_comes_from_the_broker_clock_cached_to_the_minute(api_factory, paper_exchange_factory, api_clock):
    exchange = paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=1)
    client = api_factory(exchange).test_client()
    first = client.get("/api/algorithms").get_json()
    assert first["market_open"] is True and first["market"]["source"] == "broker" and first["market"]["error"] is None
    exchange.set_clock("2026-11-23T22:00:00Z")
    api_clock.advance(30)
    assert client.get("/api/algorithms").get_json()["market_open"] is True  # same minute: cached
    api_clock.advance(30)
    later = client.get("/api/algorithms").get_json()
    assert later["market_open"] is False and later["market"]["next_open"] == "2026-11-24T14:30:00Z"


def test_one_card_with_its_transactions_newest_first(offline_client, ledger):
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 10_000, conn=ledger)
    system_db_manager.record_buy(algo_id, 10, 100.0, timestamp="2026-11-23T14:31:00Z", conn=ledger)
    system_db_manager.record_buy(algo_id, 5, 101.0, timestamp="2026-11-23T14:32:00Z", conn=ledger)
    system_db_manager.record_sell(algo_id, 3, 102.0, timestamp="2026-11-23T14:33:00Z", conn=ledger)

    card = offline_client.get(f"/api/algorithms/{algo_id}").get_json()
    assert (card["id"], card["current_shares"], card["trade_count"]) == (algo_id, 12, 3)
    assert [(t["type"], t["shares"], t["price"], t["timestamp"]) for t in card["transactions"]] == [
        ("sell", 3, 102.0, "2026-11-23T14:33:00Z"), ("buy", 5, 101.0, "2026-11-23T14:32:00Z"),
        ("buy", 10, 100.0, "2026-11-23T14:31:00Z")]
    limited = offline_client.get(f"/api/algorithms/{algo_id}?limit=1").get_json()
    assert [t["type"] for t in limited["transactions"]] == ["sell"] and limited["trade_count"] == 3


@pytest.mark.parametrize("url", ["/api/algorithms/999", "/api/algorithms/0", "/api/algorithms/99999999999999999999999",
                                 "/api/algorithms/999/history"])
def test_unknown_card_is_a_json_404(offline_client, url):
    response = offline_client.get(url)
    assert response.status_code == 404
    assert response.get_json() == {"error": "algorithm " + url.split("/")[3] + " not found"}


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=abc", "limit=100001"])
def test_bad_transaction_limit_is_400(offline_client, ledger, query):
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 10_000, conn=ledger)
    response = offline_client.get(f"/api/algorithms/{algo_id}?{query}")
    assert response.status_code == 400 and "limit" in response.get_json()["error"]


# --------------------------------------------------------------------------- history


@pytest.fixture
def traded_card(ledger, market, after_creation):
    """2,000 capital; NVDA closes 100..109 over ten minutes; buys 10 @ 101 in minute 1, sells 5 @ 105 in minute 5."""
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 2_000, conn=ledger)
    db_manager.upsert_bars(market, [bar("NVDA", minute(after_creation, i), 100.0 + i) for i in range(10)])
    system_db_manager.record_buy(algo_id, 10, 101.0, timestamp=minute(after_creation, 1, 5), conn=ledger)
    system_db_manager.record_sell(algo_id, 5, 105.0, timestamp=minute(after_creation, 5, 30), conn=ledger)
    return algo_id


def test_history_values_the_card_at_every_bar(offline_client, traded_card, after_creation):
    body = offline_client.get(f"/api/algorithms/{traded_card}/history?window=1h").get_json()
    assert (body["bar_count"], body["downsampled"], body["window"]) == (10, False, "1h")
    assert (body["start"], body["end"]) == (minute(after_creation, -1), minute(after_creation, 9))
    points = body["points"]
    assert [p["price"] for p in points] == [100.0 + i for i in range(10)]
    assert [p["shares"] for p in points] == [0, 10, 10, 10, 10, 5, 5, 5, 5, 5]
    assert [points[i]["value"] for i in (0, 1, 2, 5, 9)] == [2000.0, 2000.0, 2010.0, 2040.0, 2060.0]
    assert points[9]["pnl"] == 60.0
    assert [(t["type"], t["shares"], t["price"]) for t in body["trades"]] == [("buy", 10, 101.0), ("sell", 5, 105.0)]


def test_history_is_thinned_to_the_requested_points_keeping_both_ends(offline_client, traded_card, after_creation):
    body = offline_client.get(f"/api/algorithms/{traded_card}/history?window=1h&points=4").get_json()
    assert body["downsampled"] is True and body["bar_count"] == 10
    assert [p["timestamp"] for p in body["points"]] == [minute(after_creation, i) for i in (0, 4, 8, 9)]
    assert [p["value"] for p in body["points"]] == [2000.0, 2030.0, 2055.0, 2060.0]
    assert len(body["trades"]) == 2


def test_history_window_cuts_older_bars(offline_client, ledger, market, after_creation):
    algo_id = system_db_manager.create_algorithm("AMD", "sma_crossover", 1_000, conn=ledger)
    db_manager.upsert_bars(market, [bar("AMD", minute(after_creation, i), 50.0) for i in range(120)])
    assert offline_client.get(f"/api/algorithms/{algo_id}/history?window=1h").get_json()["bar_count"] == 61
    assert offline_client.get(f"/api/algorithms/{algo_id}/history?window=all").get_json()["bar_count"] == 120


def test_history_ignores_bars_from_before_the_card_existed(offline_client, ledger, market):
    algo_id = system_db_manager.create_algorithm("AMD", "sma_crossover", 1_000, conn=ledger)
    db_manager.upsert_bars(market, [bar("AMD", "2026-01-05T15:00:00Z", 50.0)])
    body = offline_client.get(f"/api/algorithms/{algo_id}/history?window=all").get_json()
    assert (body["points"], body["bar_count"], body["start"]) == ([], 0, None)


@pytest.mark.parametrize("query", ["window=2d", "window=", "points=1", "points=5001", "points=x"])
def test_bad_history_parameters_are_400(offline_client, traded_card, query):
    response = offline_client.get(f"/api/algorithms/{traded_card}/history?{query}")
    assert response.status_code == 400 and response.get_json()["error"]


# --------------------------------------------------------------------------- available algorithms


def test_available_algorithms_come_from_the_folder_scan(offline_client, tmp_path, api_factory):
    names = [a["name"] for a in offline_client.get("/api/available-algorithms").get_json()["algorithms"]]
    assert "sma_crossover" in names
    folder = tmp_path / "algos"
    folder.mkdir()
    (folder / "buy_once.py").write_text('"""Buys once."""\nclass Algorithm:\n'
                                        "    def __init__(self, ticker, initial_capital): pass\n"
                                        "    def get_data_requirements(self, current_time): return {'bars': 1}\n"
                                        "    def on_data(self, bars, transaction_history): return ('hold', 0)\n")
    (folder / "broken.py").write_text("this is not python\n")
    client = api_factory(ALGORITHMS_DIR=folder).test_client()
    assert client.get("/api/available-algorithms").get_json() == {
        "algorithms": [{"name": "buy_once", "description": "Buys once.", "parameters": []}]}


# --------------------------------------------------------------------------- creating


NEW = {"ticker": "NVDA", "algorithm_type": "sma_crossover", "initial_capital": 2500}


def test_create_a_card(api_client, token, system_db, market):
    db_manager.upsert_bars(market, [bar("NVDA", "2026-11-23T14:30:00Z", 120.0)])
    response = api_client.post("/api/algorithms", json={**NEW, "ticker": " nvda "}, headers=auth(token))
    assert response.status_code == 201
    card = response.get_json()
    assert response.headers["Location"] == f"/api/algorithms/{card['id']}"
    assert (card["ticker"], card["algorithm_type"], card["initial_capital"], card["status"]) == (
        "NVDA", "sma_crossover", 2500.0, "running")
    assert (card["current_shares"], card["current_value"], card["pnl"], card["current_price"]) == (0, 2500.0, 0.0, 120.0)
    stored = system_db_manager.get_algorithm(card["id"])
    assert (stored["ticker"], stored["initial_capital"], stored["status"], stored["stopped_at"]) == (
        "NVDA", 2500.0, "running", None)
    assert [c["id"] for c in api_client.get("/api/algorithms").get_json()["algorithms"]] == [card["id"]]


REFUSALS = [
    # (body, status, words in the error)
    ({"algorithm_type": "sma_crossover", "initial_capital": 100}, 400, "missing field(s): ticker"),
    ({"ticker": "NVDA", "initial_capital": 100}, 400, "missing field(s): algorithm_type"),
    ({"ticker": "NVDA", "algorithm_type": "sma_crossover"}, 400, "missing field(s): initial_capital"),
    ({**NEW, "ticker": None}, 400, "missing"),
    ({**NEW, "ticker": 123}, 400, "ticker must be a string"),
    ({**NEW, "ticker": ""}, 400, "ticker"),
    ({**NEW, "ticker": "NV DA"}, 400, "not a valid symbol"),
    ({**NEW, "ticker": "1ABC"}, 400, "not a valid symbol"),
    ({**NEW, "ticker": "ABCDEFGHIJK"}, 400, "not a valid symbol"),
    ({**NEW, "algorithm_type": 5}, 400, "algorithm_type must be"),
    ({**NEW, "algorithm_type": "  "}, 400, "algorithm_type must be"),
    ({**NEW, "initial_capital": "1000"}, 400, "initial_capital must be a number"),
    ({**NEW, "initial_capital": True}, 400, "initial_capital must be a number"),
    ({**NEW, "initial_capital": 0}, 400, "positive finite"),
    ({**NEW, "initial_capital": -50}, 400, "positive finite"),
    ({**NEW, "initial_capital": 10**400}, 400, "positive finite"),
    ({**NEW, "display_name": "mine"}, 400, "unknown field(s): display_name"),
    ({**NEW, "algorithm_type": "no_such_algorithm"}, 422, "unknown algorithm_type"),
    ({**NEW, "algorithm_type": "../api_server"}, 422, "unknown algorithm_type"),
    ({**NEW, "algorithm_type": "_loader"}, 422, "unknown algorithm_type"),
    ({**NEW, "ticker": "ZZZZ"}, 422, "not a tradable asset"),
    ({**NEW, "initial_capital": 100_000.01}, 422, "exceeds the available cash 100000.00"),
]


@pytest.mark.parametrize("body,status,words", REFUSALS, ids=[f"{s}-{w[:30]}" for _, s, w in REFUSALS])
def test_refused_card_writes_nothing(api_client, token, system_db, body, status, words):
    before = table_rows(system_db)
    response = api_client.post("/api/algorithms", json=body, headers=auth(token))
    assert response.status_code == status
    assert words in response.get_json()["error"]
    assert table_rows(system_db) == before


@pytest.mark.parametrize("raw,content_type,status", [
    ('{"ticker": "NVDA", ', "application/json", 400),
    ('{"ticker": "NVDA", "algorithm_type": "sma_crossover", "initial_capital": NaN}', "application/json", 400),
    ('{"ticker": "NVDA", "algorithm_type": "sma_crossover", "initial_capital": Infinity}', "application/json", 400),
    ('[1, 2]', "application/json", 400),
    ('"text"', "application/json", 400),
    (b'\xff\xfe', "application/json", 400),
    ("ticker=NVDA&algorithm_type=sma_crossover&initial_capital=10", "application/x-www-form-urlencoded", 415),
    ('{"ticker": "NVDA", "algorithm_type": "sma_crossover", "initial_capital": 10}', "text/plain", 415),
    ("", None, 415),
])
def test_malformed_or_foreign_bodies_write_nothing(api_client, token, system_db, raw, content_type, status):
    before = table_rows(system_db)
    response = api_client.post("/api/algorithms", data=raw, content_type=content_type, headers=auth(token))
    assert response.status_code == status
    assert response.is_json and response.get_json()["error"]
    assert table_rows(system_db) == before


def test_capital_is_checked_against_cash_minus_running_reserves(api_client, token, ledger, system_db):
    busy = system_db_manager.create_algorithm("AAPL", "sma_crossover", 60_000, conn=ledger)
    system_db_manager.record_buy(busy, 100, 200.0, conn=ledger)  # 20,000 invested, 40,000 still reserved
    before = table_rows(system_db)
    too_much = api_client.post("/api/algorithms", json={**NEW, "initial_capital": 60_000.01}, headers=auth(token))
    assert too_much.status_code == 422
    assert too_much.get_json()["available_cash"] == 60_000.0
    assert table_rows(system_db) == before
    exact = api_client.post("/api/algorithms", json={**NEW, "initial_capital": 60_000}, headers=auth(token))
    assert exact.status_code == 201
    card = exact.get_json()
    assert card["initial_capital"] == 60000.0
    stored = system_db_manager.get_algorithm(card["id"])
    assert (stored["ticker"], stored["initial_capital"], stored["status"]) == (NEW["ticker"], 60000.0, "running")


def test_broker_down_refuses_creation_with_503_and_writes_nothing(offline_client, system_db):
    token = get_token(offline_client, "add")
    before = table_rows(system_db)
    response = offline_client.post("/api/algorithms", json=NEW, headers=auth(token))
    assert response.status_code == 503
    assert "nothing was created" in response.get_json()["error"]
    assert table_rows(system_db) == before


# --------------------------------------------------------------------------- stopping


def test_stop_a_card_and_stop_it_again(offline_client, ledger, system_db):
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1_000, conn=ledger)
    token = get_token(offline_client, "stop")
    first = offline_client.delete(f"/api/algorithms/{algo_id}", headers=auth(token))
    assert first.status_code == 200
    card = first.get_json()
    assert (card["status"], card["state"], card["already_stopped"]) == ("stopped", "stopped", False)
    stored = system_db_manager.get_algorithm(algo_id)
    assert stored["status"] == "stopped" and stored["stopped_at"] == card["stopped_at"]

    before = table_rows(system_db)
    again = offline_client.delete(f"/api/algorithms/{algo_id}", headers=auth(token))
    assert again.status_code == 200 and again.get_json()["already_stopped"] is True
    assert again.get_json()["stopped_at"] == card["stopped_at"]
    assert table_rows(system_db) == before
    assert offline_client.get("/api/algorithms").get_json()["algorithms"] == []


def test_a_stopped_card_holding_shares_stays_listed_as_closing(offline_client, ledger):
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1_000, conn=ledger)
    system_db_manager.record_buy(algo_id, 2, 100.0, conn=ledger)
    token = get_token(offline_client, "stop")
    stopped = offline_client.delete(f"/api/algorithms/{algo_id}", headers=auth(token)).get_json()
    assert stopped["state"] == "closing"
    listed = offline_client.get("/api/algorithms").get_json()["algorithms"]
    assert [(c["id"], c["state"]) for c in listed] == [(algo_id, "closing")]


def test_stopping_an_unknown_card_is_404_and_writes_nothing(offline_client, system_db):
    token = get_token(offline_client, "stop")
    before = table_rows(system_db)
    for algo_id in (7, 99999999999999999999999):
        response = offline_client.delete(f"/api/algorithms/{algo_id}", headers=auth(token))
        assert response.status_code == 404 and response.get_json()["error"] == f"algorithm {algo_id} not found"
    assert table_rows(system_db) == before


def test_delete_with_a_non_json_body_is_415(offline_client, ledger, system_db):
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1_000, conn=ledger)
    token = get_token(offline_client, "stop")
    before = table_rows(system_db)
    response = offline_client.delete(f"/api/algorithms/{algo_id}", data="stop", content_type="text/plain",
                                     headers=auth(token))
    assert response.status_code == 415
    assert table_rows(system_db) == before
    assert offline_client.delete(f"/api/algorithms/{algo_id}", json={}, headers=auth(token)).status_code == 200


def test_history_lists_at_most_the_newest_thousand_trades(offline_client, ledger, market, after_creation):
    algo_id = system_db_manager.create_algorithm("QQQ", "sma_crossover", 1_000_000, conn=ledger)
    db_manager.upsert_bars(market, [bar("QQQ", minute(after_creation, i), 10.0) for i in range(3)])
    for i in range(1005):
        system_db_manager.record_buy(algo_id, 1, 10.0, timestamp=minute(after_creation, 1, 30), conn=ledger)
    body = offline_client.get(f"/api/algorithms/{algo_id}/history?window=all").get_json()
    assert body["trades_in_window"] == 1005 and len(body["trades"]) == 1000
    assert body["trades"][-1]["id"] == max(t["id"] for t in body["trades"])
    assert [p["shares"] for p in body["points"]] == [0, 1005, 1005]
