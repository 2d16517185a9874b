"""Per-card limits, through the real API and orchestrator on the paper exchange, on scripted prices.

Cards are added through the API with their limits; the exchange's prices follow a script
(``price_path``); the orchestrator checks every card's limits each minute with the card's own
numbers. Each limit trips on its own card only, says which and when on the wall, and sends one
notification to a local receiver: a fall from the peak stops and liquidates its card, a day's
loss pauses its card with its shares, a fifth trade in a day is never made, and a losing sale
holds its card back for its cooldown, after which it trades again.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.clock import BrokerClock
from system_databse import system_db_manager as ledger
from tests.fixtures.api import auth, get_token
from tests.fixtures.orchestrator import orchestrator_env, wait_until, write_test_algorithms
from tests.test_notifications import Receiver
from tests.test_orchestrator_pause import CHURN

pytestmark = pytest.mark.slow(45)

START = "2026-11-23T15:00:00Z"  # Monday 10:00 New York on the exchange's clock


def at(exchange, minutes: int = 0) -> str:
    """The exchange's minute now, plus ``minutes``."""
    now = datetime.fromisoformat(exchange.state()["clock"]["now"].replace("Z", "+00:00")).replace(second=0, microsecond=0)
    return (now + timedelta(minutes=minutes)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp_of(minute: str, plus: int) -> str:
    moment = datetime.fromisoformat(minute.replace("Z", "+00:00")) + timedelta(minutes=plus)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def script(exchange, symbol: str, *points) -> None:
    exchange.control(price_path={"symbol": symbol, "points": [list(p) for p in points]})


@pytest.fixture
def desk(system_db, stocks_db, paper_exchange_factory, api_factory, tmp_path):
    exchange = paper_exchange_factory(start=START, speed=40)
    folder = write_test_algorithms(tmp_path / "algorithms", ["buy_and_hold"])
    (folder / "churn.py").write_text(CHURN)
    exchange_clock = BrokerClock(lambda: datetime.fromisoformat(exchange.state()["clock"]["now"].replace("Z", "+00:00")))
    api = api_factory(exchange, ALGORITHMS_DIR=folder, NOW=exchange_clock.now).test_client()  # stamps on its clock
    receiver = Receiver()
    env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db, algorithms_dir=folder,
                           log_dir=tmp_path / "logs", NOTIFY_URL=receiver.url)
    conn = ledger.get_connection(system_db)
    yield exchange, api, env, conn, receiver
    conn.close()
    receiver.stop()


def add_card(api, ticker: str, algorithm: str, limits: dict) -> int:
    response = api.post("/api/algorithms", json={"ticker": ticker, "algorithm_type": algorithm,
                                                 "initial_capital": 1000, "limits": limits},
                        headers=auth(get_token(api, "add")))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def card(api, card_id: int) -> dict:
    return next(c for c in api.get("/api/algorithms").get_json()["algorithms"] if c["id"] == card_id)


def notes_about(receiver, card_id: int, ticker: str) -> list[str]:
    return [m["body"] for m in receiver.messages if m["title"] == f"card {card_id} {ticker}: limit tripped"]


def shares(conn, card_id: int):
    return ledger.get_position_totals(card_id, conn=conn)["shares"]


def test_a_fall_from_the_peak_liquidates_its_card_and_a_days_loss_pauses_its_card(desk, orchestrator_factory):
    exchange, api, env, conn, receiver = desk
    script(exchange, "AAPL", (at(exchange, -10), 100.0))
    script(exchange, "MSFT", (at(exchange, -10), 100.0))
    falls = add_card(api, "AAPL", "buy_and_hold", {"max_drawdown_percent": 10, "on_trip": "liquidate"})
    loses = add_card(api, "MSFT", "buy_and_hold", {"daily_loss_limit": 50})
    assert card(api, loses)["limits"] == {"max_drawdown_percent": None, "daily_loss_limit": 50.0,
                                          "max_trades_per_day": None, "cooldown_minutes": None, "on_trip": "pause",
                                          "trip": None}
    daemon = orchestrator_factory(env)
    wait_until(lambda: shares(conn, falls) == 7 and shares(conn, loses) == 7, 60, "both cards to buy 7 at $100")

    # the script: AAPL slides from $100 to $80 in four minutes, MSFT from $100 to $90 in three
    start = at(exchange, 1)
    script(exchange, "AAPL", (at(exchange, -20), 100.0), (start, 100.0), (at(exchange, 5), 80.0))
    script(exchange, "MSFT", (at(exchange, -20), 100.0), (start, 100.0), (at(exchange, 4), 90.0))

    wait_until(lambda: ledger.get_algorithm(falls, conn=conn)["status"] == "stopped" and shares(conn, falls) == 0, 60,
               "the AAPL card to be stopped and its shares sold")
    wait_until(lambda: (card(api, loses)["limits"] or {}).get("trip"), 60, "the MSFT card's daily loss to trip")
    wait_until(lambda: notes_about(receiver, falls, "AAPL") and notes_about(receiver, loses, "MSFT"), 30,
               "both notifications")
    daemon.wait_for(r"cycle \S+: 1 card\(s\)", 60)  # a later minute: nothing trips twice
    assert daemon.terminate() == 0

    fell = ledger.get_card_limits(falls, conn=conn)["trip"]
    assert fell["limit"] == "max_drawdown" and fell["until"] is None and fell["at"] >= start
    assert fell["reason"].startswith("max loss from peak 10% reached: value $")
    assert "below its peak $1,000.00; card stopped, its shares sold" in fell["reason"]
    sale = [t for t in ledger.get_transactions(falls, conn=conn) if t["type"] == "sell"]
    assert len(sale) == 1 and sale[0]["shares"] == 7 and sale[0]["price"] < 86  # sold within the fall: 300 + 7p < 900
    [note] = notes_about(receiver, falls, "AAPL")
    assert note.startswith(f"card {falls} AAPL (buy_and_hold): max loss from peak 10% reached") and \
        note.endswith("; stopped and liquidated")

    lost = card(api, loses)
    assert lost["status"] == "running" and lost["current_shares"] == 7       # paused: it keeps its shares
    assert lost["limits"]["trip"]["limit"] == "daily_loss" and lost["limits"]["trip"]["at"] >= start
    assert lost["limits"]["trip"]["reason"].startswith("daily loss limit $50.00 reached: $")
    [note] = notes_about(receiver, loses, "MSFT")
    assert "daily loss limit $50.00 reached" in note and note.endswith("; paused until RESUME CARD")
    assert [o["symbol"] for o in exchange.state()["orders"]].count("MSFT") == 1   # its buy; no sale


def test_a_fourth_trade_in_a_day_is_never_made_and_a_losing_sale_cools_its_card_down(desk, orchestrator_factory):
    exchange, api, env, conn, receiver = desk
    script(exchange, "NVDA", (at(exchange, -10), 100.0))
    script(exchange, "TSLA", (at(exchange, -10), 100.0), (at(exchange, 120), 40.0))  # falls $0.50 a minute
    busy = add_card(api, "NVDA", "churn", {"max_trades_per_day": 3})
    cools = add_card(api, "TSLA", "churn", {"cooldown_minutes": 5})
    daemon = orchestrator_factory(env)

    wait_until(lambda: (card(api, busy)["limits"] or {}).get("trip"), 60, "the NVDA card's trade limit to trip")
    wait_until(lambda: (card(api, cools)["limits"] or {}).get("trip"), 60, "the TSLA card's losing sale")
    cooling = ledger.get_card_limits(cools, conn=conn)["trip"]
    [first_sale] = [t for t in ledger.get_transactions(cools, conn=conn) if t["type"] == "sell"]
    assert cooling["limit"] == "cooldown" and cooling["reason"].startswith("5 min cooldown after a losing sale: sold 1 at $")
    until = datetime.fromisoformat(first_sale["timestamp"].replace("Z", "+00:00")) + timedelta(minutes=5)
    assert cooling["until"] == until.strftime("%Y-%m-%dT%H:%M:%SZ")
    wait_until(lambda: any(t["type"] == "buy" and t["timestamp"] >= cooling["until"]
                           for t in ledger.get_transactions(cools, conn=conn)), 60, "the TSLA card to buy again")
    decided_by = lambda d: stamp_of(d["minute"], 2)  # noqa: E731 - a bar's decision is made in the minute after it
    during = [d for d in ledger.get_decisions(cools, kind="decision", conn=conn)
              if first_sale["timestamp"] < d["minute"] and decided_by(d) <= cooling["until"] and d["action"] == "buy"]
    assert during and all(d["held_back"].startswith(f"cooling down until {cooling['until']}") for d in during)
    assert [t for t in ledger.get_transactions(cools, conn=conn) if first_sale["timestamp"] < t["timestamp"]
            < cooling["until"]] == []

    trip = card(api, busy)["limits"]["trip"]
    assert (trip["limit"], trip["reason"], trip["until"]) == (
        "max_trades", "max 3 trades a day reached: 3 today", None)
    assert [t["type"] for t in ledger.get_transactions(busy, conn=conn)] == ["buy", "sell", "buy"]
    held = ledger.get_decisions(busy, kind="decision", conn=conn)[0]
    assert (held["action"], held["held_back"]) == (
        "sell", "card paused, max trades limit tripped: max 3 trades a day reached: 3 today")
    [note] = notes_about(receiver, busy, "NVDA")
    assert "max 3 trades a day reached: 3 today" in note and note.endswith("; paused until RESUME CARD")
    assert any("5 min cooldown after a losing sale" in n for n in notes_about(receiver, cools, "TSLA"))

    # RESUME CARD with the PIN: the count starts again, three more trades, then it trips again
    resumed = api.post(f"/api/algorithms/{busy}/resume", json={}, headers=auth(get_token(api, "resume")))
    assert resumed.status_code == 200 and resumed.get_json()["limits"]["trip"] is None
    wait_until(lambda: len(ledger.get_transactions(busy, conn=conn)) == 6 and card(api, busy)["limits"]["trip"], 60,
               "three more trades after RESUME CARD, then the limit again")
    assert daemon.terminate() == 0
    assert len(ledger.get_transactions(busy, conn=conn)) == 6
