"""The wall's deeper API: a card's detail, its price chart with indicators, history, P&L split, exports."""
from __future__ import annotations

import csv
import io

import pytest

from database import db_manager
from system_databse import system_db_manager
from tests.fixtures.api import auth, get_token


def bar(ticker, stamp, close, low=None, high=None):
    return {"ticker": ticker, "timestamp": stamp, "open": close, "high": high or close, "low": low or close,
            "close": close, "volume": 100}


def backdate(ledger, algo_id, stamp):
    """Cards are created "now"; the stories below happened on fixed past days."""
    ledger.execute("UPDATE algorithm_instances SET created_at = ? WHERE id = ?", (stamp, algo_id))


@pytest.fixture
def traded(ledger, market):
    """NVDA card: bought 10 @ 100 and 10 @ 110, sold 15 @ 120; NVDA last at 105. A stopped AAPL card."""
    nvda = system_db_manager.create_algorithm("NVDA", "sma_crossover", 10_000, conn=ledger)
    backdate(ledger, nvda, "2026-11-20T14:30:00Z")
    system_db_manager.record_buy(nvda, 10, 100.0, timestamp="2026-11-20T15:00:00Z", conn=ledger)
    system_db_manager.record_buy(nvda, 10, 110.0, timestamp="2026-11-23T15:00:00Z", conn=ledger)
    system_db_manager.record_sell(nvda, 15, 120.0, timestamp="2026-11-23T16:00:00Z", conn=ledger)
    aapl = system_db_manager.create_algorithm("AAPL", "bollinger_reversion", 5_000, conn=ledger)
    backdate(ledger, aapl, "2026-11-20T14:30:00Z")
    system_db_manager.record_buy(aapl, 20, 200.0, timestamp="2026-11-20T15:00:00Z", conn=ledger)
    system_db_manager.record_sell(aapl, 20, 190.0, timestamp="2026-11-23T15:30:00Z", conn=ledger)
    system_db_manager.stop_algorithm(aapl, conn=ledger)
    closes = [100.0 + (i % 7) for i in range(120)]
    bars = [bar("NVDA", f"2026-11-20T{14 + (30 + i) // 60:02d}:{(30 + i) % 60:02d}:00Z", c) for i, c in enumerate(closes)]
    bars += [bar("NVDA", "2026-11-20T20:59:00Z", 102.0), bar("NVDA", "2026-11-23T20:59:00Z", 105.0)]
    bars += [bar("AAPL", "2026-11-20T20:59:00Z", 198.0), bar("AAPL", "2026-11-23T20:59:00Z", 191.0)]
    db_manager.upsert_bars(market, bars)
    return {"nvda": nvda, "aapl": aapl}


def test_detail_shows_open_lots_realized_pnl_and_the_fills(offline_client, traded):
    card = offline_client.get(f"/api/algorithms/{traded['nvda']}/detail").get_json()
    assert (card["current_shares"], card["current_price"]) == (5, 105.0)
    assert card["lots"] == [{"shares": 5, "entry_price": 110.0, "opened": "2026-11-23T15:00:00Z",
                             "transaction_id": card["transactions"][1]["id"], "cost": 550.0, "unrealized_pnl": -25.0}]
    assert (card["realized_pnl"], card["unrealized_pnl"]) == (250.0, -25.0)
    assert card["pnl"] == card["realized_pnl"] + card["unrealized_pnl"] == 225.0
    assert [(t["type"], t["shares"], t["price"], t["value"]) for t in card["transactions"]] == [
        ("sell", 15, 120.0, 1800.0), ("buy", 10, 110.0, 1100.0), ("buy", 10, 100.0, 1000.0)]
    assert card["last_decision"] is None and card["frozen"] is None


def test_a_split_and_a_dividend_show_on_the_detail_and_keep_the_identities(offline_client, ledger, market, traded):
    nvda = traded["nvda"]
    system_db_manager.record_corporate_action({"id": "split-1", "symbol": "NVDA", "kind": "forward_split",
                                               "ex_date": "2026-11-24", "effective_at": "2026-11-24T14:30:00Z",
                                               "old_rate": 1, "new_rate": 2}, conn=ledger)
    system_db_manager.record_corporate_action({"id": "div-1", "symbol": "NVDA", "kind": "cash_dividend",
                                               "ex_date": "2026-11-25", "effective_at": "2026-11-25T14:30:00Z",
                                               "rate": 0.5}, conn=ledger)
    db_manager.upsert_bars(market, [bar("NVDA", "2026-11-25T20:59:00Z", 52.5)])
    card = offline_client.get(f"/api/algorithms/{nvda}/detail").get_json()
    # the 5 shares @ 110 became 10 @ 55; the 10 shares paid 5.00
    assert [(lot["shares"], lot["entry_price"]) for lot in card["lots"]] == [(10, 55.0)]
    assert (card["dividends"], card["realized_pnl"], card["unrealized_pnl"]) == (5.0, 255.0, -25.0)
    assert card["pnl"] == card["realized_pnl"] + card["unrealized_pnl"]
    assert [a["description"] for a in card["corporate_actions"]] == [
        "dividend $0.5/share on 10 shares: +$5.00", "2-for-1 forward split: 5 shares +5"]


def test_detail_shows_the_last_decision_its_refusal_and_error_as_stored(offline_client, ledger, traded):
    nvda = traded["nvda"]
    system_db_manager.record_decisions([
        {"algorithm_id": nvda, "minute": "2026-11-23T20:58:00Z", "kind": "refused", "action": "hold", "shares": 0,
         "requested_action": "sell", "requested_shares": 99, "reason": "cannot sell 99 shares: the card holds 5",
         "price": 105.0},
        {"algorithm_id": nvda, "minute": "2026-11-23T20:59:00Z", "kind": "decision", "action": "hold", "shares": 0,
         "reason": "no cross: SMA20 above SMA50", "price": 105.0},
    ], conn=ledger)
    card = offline_client.get(f"/api/algorithms/{nvda}/detail").get_json()
    assert card["last_decision"]["reason"] == "no cross: SMA20 above SMA50"
    assert card["last_decision"]["minute"] == "2026-11-23T20:59:00Z"
    assert card["last_refusal"]["requested_shares"] == 99
    assert card["last_refusal"]["reason"] == "cannot sell 99 shares: the card holds 5"
    assert card["last_error"] is None
    assert [d["kind"] for d in card["recent_decisions"]] == ["decision", "refused"]


def test_only_the_newest_decisions_of_each_kind_are_kept(ledger, traded):
    nvda = traded["nvda"]
    for i in range(60):
        system_db_manager.record_decisions([{"algorithm_id": nvda, "minute": f"m{i:02d}", "kind": "decision",
                                             "action": "hold", "shares": 0, "reason": f"r{i}"}], conn=ledger)
    system_db_manager.record_decisions([{"algorithm_id": nvda, "minute": "e", "kind": "error", "reason": "boom"}],
                                       conn=ledger)
    kept = system_db_manager.get_decisions(nvda, kind="decision", limit=100, conn=ledger)
    assert len(kept) == system_db_manager.DECISIONS_KEPT == 50
    assert kept[0]["reason"] == "r59" and kept[-1]["reason"] == "r10"
    assert system_db_manager.get_decisions(nvda, kind="error", conn=ledger)[0]["reason"] == "boom"


def test_a_card_whose_ticker_the_broker_disagrees_on_is_shown_frozen(offline_client, ledger, traded):
    system_db_manager.write_heartbeat("orchestrator", {"position_mismatches": [
        {"ticker": "NVDA", "broker": 7, "cards": 5}]}, conn=ledger)
    card = offline_client.get(f"/api/algorithms/{traded['nvda']}/detail").get_json()
    assert card["frozen"] == "frozen: the broker holds 7 shares of NVDA, the cards add up to 5"


def test_chart_has_bars_fills_and_the_algorithms_own_indicator_lines(offline_client, traded):
    chart = offline_client.get(f"/api/algorithms/{traded['nvda']}/chart?zoom=all&points=1000").get_json()
    closes = [p["close"] for p in chart["points"]]
    assert chart["bar_count"] == len(closes) == 122 and chart["bars_per_point"] == 1
    assert set(chart["indicators"]) == {"SMA20", "SMA50"}
    sma20 = chart["indicators"]["SMA20"]
    assert sma20[:19] == [None] * 19
    assert sma20[19] == pytest.approx(sum(closes[:20]) / 20)
    assert chart["indicators"]["SMA50"][-1] == pytest.approx(sum(closes[-50:]) / 50)
    assert [(t["type"], t["price"]) for t in chart["trades"]] == [("buy", 100.0), ("buy", 110.0), ("sell", 120.0)]


def test_a_long_window_is_merged_into_candles_that_keep_highs_and_lows(offline_client, traded):
    chart = offline_client.get(f"/api/algorithms/{traded['nvda']}/chart?zoom=all&points=10").get_json()
    assert len(chart["points"]) <= 10 and chart["bars_per_point"] == 13
    assert max(p["high"] for p in chart["points"]) == 106.0 and min(p["low"] for p in chart["points"]) == 100.0
    assert chart["points"][-1]["close"] == 105.0 and len(chart["indicators"]["SMA20"]) == len(chart["points"])


def test_today_zoom_starts_at_the_newest_session(offline_client, traded):
    chart = offline_client.get(f"/api/algorithms/{traded['nvda']}/chart?zoom=today").get_json()
    assert [p["timestamp"] for p in chart["points"]] == ["2026-11-23T20:59:00Z"]
    assert chart["start"] == "2026-11-23T00:00:00Z"
    # the lines are warmed up on the bars before the window: SMA20 is defined on the first bar drawn
    assert chart["indicators"]["SMA20"][0] is not None


def test_an_algorithm_without_the_indicator_hook_has_no_lines(offline_client, ledger, market):
    algo = system_db_manager.create_algorithm("TSLA", "lot_take_profit", 1_000, conn=ledger)
    backdate(ledger, algo, "2026-11-20T14:30:00Z")
    db_manager.upsert_bars(market, [bar("TSLA", "2026-11-20T15:00:00Z", 300.0)])
    chart = offline_client.get(f"/api/algorithms/{algo}/chart?zoom=5d").get_json()
    assert chart["indicators"] == {} and len(chart["points"]) == 1


@pytest.mark.parametrize("query", ["zoom=1y", "zoom=", "zoom=all&points=1", "zoom=all&points=x"])
def test_bad_chart_queries_are_400(offline_client, traded, query):
    response = offline_client.get(f"/api/algorithms/{traded['nvda']}/chart?{query}")
    assert response.status_code == 400 and "error" in response.get_json()


def test_unknown_cards_are_404_everywhere(offline_client):
    for path in ("/api/algorithms/999/detail", "/api/algorithms/999/chart"):
        assert offline_client.get(path).status_code == 404


def test_history_lists_the_stopped_card_with_its_realized_pnl_and_daily_pnl(offline_client, traded):
    body = offline_client.get("/api/history").get_json()
    assert [(c["id"], c["ticker"], c["trade_count"], c["realized_pnl"]) for c in body["closed"]] == [
        (traded["aapl"], "AAPL", 2, -200.0)]
    assert body["closed"][0]["created_at"] == "2026-11-20T14:30:00Z" and body["closed"][0]["stopped_at"]
    # Nov 20: NVDA 10 x (102 - 100) = 20, AAPL 20 x (198 - 200) = -40 -> -20.
    # Nov 23: NVDA mark 5 x 105 - (1000 + 1100 - 1800) = 225; AAPL realized -200 -> total 25, day +45.
    assert body["daily_pnl"] == [{"date": "2026-11-20", "pnl": -20.0, "cumulative": -20.0},
                                 {"date": "2026-11-23", "pnl": 45.0, "cumulative": 25.0}]
    assert (body["open_pnl"], body["realized_pnl"]) == (-25.0, 50.0)


def test_pnl_summary_splits_open_and_realized_and_gives_today(offline_client, traded):
    body = offline_client.get("/api/pnl-summary").get_json()
    assert body == {"open_pnl": -25.0, "realized_pnl": 50.0,
                    "today": {"date": "2026-11-23", "pnl": 45.0, "cumulative": 25.0}}


def test_exports_need_a_pin_token(offline_client, traded):
    for path in ("/api/export/transactions.csv", "/api/export/realized.csv"):
        response = offline_client.get(path)
        assert response.status_code == 401 and "error" in response.get_json()


def test_transaction_export_has_one_row_per_fill_as_in_the_ledger(offline_client, ledger, traded):
    token = get_token(offline_client, "export")
    response = offline_client.get("/api/export/transactions.csv", headers=auth(token))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    ledger_rows = ledger.execute("SELECT algorithm_id, type, shares, price, timestamp FROM transactions"
                                 " ORDER BY timestamp, id").fetchall()
    assert [(int(r["card_id"]), r["side"], int(r["shares"]), float(r["price"]), r["time_utc"]) for r in rows] == \
        [tuple(r) for r in ledger_rows]
    assert rows[0]["value"] == "1000.0" and rows[0]["ticker"] == "NVDA"
    one_day = offline_client.get(f"/api/export/transactions.csv?card={traded['nvda']}&from=2026-11-23&to=2026-11-23",
                                 headers=auth(token))
    picked = list(csv.DictReader(io.StringIO(one_day.get_data(as_text=True))))
    assert [(r["side"], r["shares"]) for r in picked] == [("buy", "10"), ("sell", "15")]


def test_realized_export_per_card_and_year(offline_client, traded):
    token = get_token(offline_client, "export")
    text = offline_client.get("/api/export/realized.csv", headers=auth(token)).get_data(as_text=True)
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["row"] == "card"]
    assert [(r["ticker"], r["year"], r["shares_sold"], r["proceeds"], r["cost_basis"], r["realized_pnl"], r["dividends"])
            for r in rows] == [("NVDA", "2026", "15", "1800.0", "1550.0", "250.0", "0.0"),
                               ("AAPL", "2026", "20", "3800.0", "4000.0", "-200.0", "0.0")]


@pytest.mark.parametrize("query", ["from=2026-13-01", "from=yesterday", "to=2026-11-2", "card=abc", "card=999",
                                   "from=2026-11-24&to=2026-11-23", "limit=5"])
def test_bad_export_queries_are_refused(offline_client, traded, query):
    token = get_token(offline_client, "export")
    response = offline_client.get(f"/api/export/transactions.csv?{query}", headers=auth(token))
    assert response.status_code in (400, 404) and "error" in response.get_json()


HANGING = '''"""Hangs in its indicators hook."""
import time


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        return "hold", 0

    def indicators(self, bars):
        time.sleep(60)
'''
RAISING = HANGING.replace("time.sleep(60)", "raise RuntimeError('no lines today')").replace("Hangs", "Fails")


@pytest.mark.parametrize("name, source", [("hangs", HANGING), ("fails", RAISING)])
def test_a_hook_that_hangs_or_fails_leaves_the_chart_without_lines(api_factory, ledger, market, tmp_path, monkeypatch,
                                                                   name, source):
    from api import price_chart

    folder = tmp_path / "algos"
    folder.mkdir(mode=0o700)
    (folder / f"{name}.py").write_text(source)
    monkeypatch.setattr(price_chart, "INDICATOR_SECONDS", 3.0)
    algo = system_db_manager.create_algorithm("NVDA", name, 1_000, conn=ledger)
    backdate(ledger, algo, "2026-11-20T14:30:00Z")
    db_manager.upsert_bars(market, [bar("NVDA", "2026-11-20T15:00:00Z", 100.0)])
    client = api_factory("down", ALGORITHMS_DIR=str(folder)).test_client()
    chart = client.get(f"/api/algorithms/{algo}/chart?zoom=all").get_json()
    assert chart["indicators"] == {} and [p["close"] for p in chart["points"]] == [100.0]
