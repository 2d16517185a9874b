"""What the wall shows around a split and a dividend: no cliff in the value line, markers, lots, history."""
from __future__ import annotations

import pytest

from database import db_manager
from system_databse import system_db_manager

MONDAY, TUESDAY_OPEN = "2026-11-23", "2026-11-24T14:30:00Z"


def minute(day: str, index: int) -> str:
    """The index-th minute of a session (14:30Z open)."""
    return f"{day}T{14 + (30 + index) // 60:02d}:{(30 + index) % 60:02d}:00Z"


def bars(ticker: str, day: str, closes: list[float]) -> list[dict]:
    return [{"ticker": ticker, "timestamp": minute(day, i), "open": c, "high": c, "low": c, "close": c, "volume": 100}
            for i, c in enumerate(closes)]


@pytest.fixture
def split_card(ledger, market):
    """119 NVDA bought Monday at $140.00; a 10:1 split on Tuesday; stored bars adjusted like the daemon does."""
    card = system_db_manager.create_algorithm("NVDA", "sma_crossover", 20_000, conn=ledger)
    ledger.execute("UPDATE algorithm_instances SET created_at = ? WHERE id = ?", (f"{MONDAY}T14:30:00Z", card))
    system_db_manager.record_buy(card, 119, 140.00, timestamp=f"{MONDAY}T14:31:00Z", conn=ledger)
    db_manager.upsert_bars(market, bars("NVDA", MONDAY, [140.0, 140.5, 141.0, 141.5]))  # raw, as streamed
    system_db_manager.record_corporate_action(
        {"id": "nvda-split", "symbol": "NVDA", "kind": "forward_split", "ex_date": "2026-11-24",
         "effective_at": TUESDAY_OPEN, "new_rate": 10, "old_rate": 1}, conn=ledger)
    db_manager.adjust_bars_for_split(market, "nvda-split", "NVDA", "2026-11-24", TUESDAY_OPEN, 0.1,
                                     "2026-11-24T14:00:00Z")
    db_manager.upsert_bars(market, bars("NVDA", "2026-11-24", [14.2, 14.1, 14.3]))  # raw after the split
    return card


def test_the_value_line_has_no_cliff_at_a_split_and_the_split_is_marked(offline_client, split_card):
    history = offline_client.get(f"/api/algorithms/{split_card}/history?window=all").get_json()
    values = [p["value"] for p in history["points"]]
    assert [p["shares"] for p in history["points"]] == [0] + [1190] * 6  # bought at the end of the second minute
    assert values == [20_000.00, 20_059.50, 20_119.00, 20_178.50, 20_238.00, 20_119.00, 20_357.00]
    assert max(abs(b - a) for a, b in zip(values, values[1:])) < 300  # not a ~15,000 cliff
    marker, = history["corporate_actions"]
    assert (marker["label"], marker["timestamp"], marker["shares_before"], marker["shares_after"]) == (
        "10:1 split", TUESDAY_OPEN, 119, 1190)


def test_the_detail_view_shows_one_lot_in_split_shares_and_lists_the_split(offline_client, split_card):
    card = offline_client.get(f"/api/algorithms/{split_card}/detail").get_json()
    assert (card["current_shares"], card["current_price"]) == (1190, 14.3)
    assert [(lot["shares"], lot["entry_price"], lot["cost"]) for lot in card["lots"]] == [(1190, 14.0, 16_660.0)]
    assert card["pnl"] == card["unrealized_pnl"] == 357.00 and card["realized_pnl"] == 0.0
    assert [a["description"] for a in card["corporate_actions"]] == ["10-for-1 forward split: 119 shares +1071"]


def test_selling_the_split_shares_realizes_the_same_money(offline_client, ledger, split_card):
    system_db_manager.record_sell(split_card, 1190, 14.3, timestamp="2026-11-24T14:33:00Z", conn=ledger)
    card = offline_client.get(f"/api/algorithms/{split_card}/detail").get_json()
    assert card["lots"] == [] and card["realized_pnl"] == card["pnl"] == 357.00


def test_a_dividend_is_realized_pnl_and_a_step_in_the_value_line(offline_client, ledger, market):
    card = system_db_manager.create_algorithm("KO", "sma_crossover", 10_000, conn=ledger)
    ledger.execute("UPDATE algorithm_instances SET created_at = ? WHERE id = ?", (f"{MONDAY}T14:30:00Z", card))
    system_db_manager.record_buy(card, 100, 62.00, timestamp=f"{MONDAY}T14:31:00Z", conn=ledger)
    db_manager.upsert_bars(market, bars("KO", MONDAY, [62.0, 62.0]) + bars("KO", "2026-11-24", [62.0, 62.0]))
    system_db_manager.record_corporate_action(
        {"id": "ko-div", "symbol": "KO", "kind": "cash_dividend", "ex_date": "2026-11-24",
         "effective_at": TUESDAY_OPEN, "rate": 0.25}, conn=ledger)

    history = offline_client.get(f"/api/algorithms/{card}/history?window=all").get_json()
    detail = offline_client.get(f"/api/algorithms/{card}/detail").get_json()
    view = offline_client.get("/api/history").get_json()

    assert [p["value"] for p in history["points"]] == [10_000.00, 10_000.00, 10_025.00, 10_025.00]
    assert [a["label"] for a in history["corporate_actions"]] == ["dividend $25.00"]
    assert (detail["realized_pnl"], detail["dividends"], detail["pnl"]) == (25.00, 25.00, 25.00)
    assert [(a["ticker"], a["label"]) for a in view["corporate_actions"]] == [("KO", "dividend $25.00")]
    assert view["realized_pnl"] == 25.00
    assert [d["cumulative"] for d in view["daily_pnl"]][-2:] == [0.00, 25.00]


def test_the_account_daily_pnl_has_no_cliff_at_a_split(offline_client, split_card):
    days = offline_client.get("/api/history").get_json()["daily_pnl"]
    assert [(d["date"], d["cumulative"]) for d in days][-2:] == [(MONDAY, 178.50), ("2026-11-24", 357.00)]


def test_the_price_charts_fill_markers_sit_on_the_split_adjusted_bars(offline_client, split_card):
    chart = offline_client.get(f"/api/algorithms/{split_card}/chart?zoom=all").get_json()
    assert [(t["type"], t["shares"], t["price"]) for t in chart["trades"]] == [("buy", 1190, 14.0)]
    assert min(p["low"] for p in chart["points"]) <= 14.0 <= max(p["high"] for p in chart["points"])
