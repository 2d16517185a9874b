"""The demo's story on one clock: the paper exchange lives weeks away from this computer's clock.

``./scripts/start`` runs the local paper exchange on a simulated clock that resumes where it was
after a restart, so it drifts from the computer's clock by hours, days, weeks. A card added on
the wall must still be "created" in the exchange's time: its fills, its history's first day and
its stop all fall in the exchange's sessions, never on the computer's date (where the history
would draw a day of zero). The API and the orchestrator both follow the exchange's clock
(``AUTOTRADER_CLOCK=broker``, which the launcher and the systemd units set for it).
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from database import market_calendar
from scripts import launcher, services
from shared.clock import computer_now, stamp
from shared.config import Settings
from system_databse import system_db_manager as ledger
from tests.fixtures.api import auth, get_token
from tests.fixtures.orchestrator import orchestrator_env, wait_until, write_test_algorithms

pytestmark = pytest.mark.slow(16)

SPEED = 30  # a simulated minute every two seconds


def far_session_open():
    """The open of a session about six weeks before this computer's date: the two clocks never share a day."""
    return market_calendar.next_open(computer_now() - timedelta(days=45)).to_pydatetime()


def exchange_now(exchange) -> str:
    return exchange.state()["clock"]["now"][:19] + "Z"


@pytest.fixture
def far_exchange(paper_exchange_factory, tmp_path):
    opening = far_session_open()
    state = tmp_path / "paper_exchange.db"
    exchange = paper_exchange_factory(start=stamp(opening - timedelta(minutes=1)), speed=SPEED, state=state)
    return exchange, opening, state


def test_a_card_added_on_the_wall_lives_in_the_exchanges_days(far_exchange, api_factory, orchestrator_factory,
                                                               system_db, stocks_db, tmp_path, paper_exchange_factory):
    exchange, opening, state = far_exchange
    computer_day = computer_now().strftime("%Y-%m-%d")
    session_day = opening.strftime("%Y-%m-%d")
    algorithms = write_test_algorithms(tmp_path / "algorithms", ["buy_and_hold"])
    client = api_factory(exchange, ALGORITHMS_DIR=str(algorithms)).test_client()

    added = client.post("/api/algorithms", json={"ticker": "AAPL", "algorithm_type": "buy_and_hold",
                                                 "initial_capital": 5_000}, headers=auth(get_token(client, "add")))
    after = exchange_now(exchange)
    assert added.status_code == 201, added.get_json()
    card = added.get_json()
    assert card["created_at"][:10] == session_day != computer_day
    assert stamp(opening - timedelta(minutes=2)) <= card["created_at"] <= after

    orchestrator_factory(orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db,
                                          algorithms_dir=algorithms, log_dir=tmp_path / "logs"))
    wait_until(lambda: ledger.get_transactions(card["id"]), 120, "the card's first fill")
    [fill] = client.get(f"/api/algorithms/{card['id']}").get_json()["transactions"]
    assert (fill["type"], fill["shares"]) == ("buy", 7)
    assert fill["timestamp"][:10] == session_day and fill["timestamp"] >= card["created_at"]

    days = wait_until(lambda: client.get("/api/history").get_json()["daily_pnl"], 60, "the history's days")
    assert [d["date"] for d in days] == [session_day]  # no zero day on the computer's date

    stopped = client.delete(f"/api/algorithms/{card['id']}", headers=auth(get_token(client, "stop")))
    assert stopped.status_code == 200
    assert stopped.get_json()["stopped_at"][:10] == session_day and stopped.get_json()["stopped_at"] >= fill["timestamp"]

    # the exchange restarts (a power cut, ./scripts/start again): it resumes its own clock, not the computer's
    exchange.stop()
    again = paper_exchange_factory(start=stamp(computer_now()), speed=SPEED, state=state)
    assert exchange_now(again) >= stopped.get_json()["stopped_at"]
    client = api_factory(again, ALGORITHMS_DIR=str(algorithms)).test_client()
    second = client.post("/api/algorithms", json={"ticker": "MSFT", "algorithm_type": "buy_and_hold",
                                                  "initial_capital": 1_000}, headers=auth(get_token(client, "add")))
    assert second.status_code == 201, second.get_json()
    assert stopped.get_json()["stopped_at"] <= second.get_json()["created_at"] <= exchange_now(again)
    assert second.get_json()["created_at"][:10] != computer_day


def test_the_demo_cards_are_created_in_the_exchanges_time(far_exchange, system_db):
    exchange, opening, _ = far_exchange

    settings = Settings.from_env({**exchange.env, "AUTOTRADER_SYSTEM_DB": str(system_db)})

    created = launcher.seed_demo_cards(system_db, launcher.exchange_time(settings))

    cards = ledger.get_all_algorithms()
    assert [c["id"] for c in cards] == created and len(created) == 3
    assert {c["created_at"][:10] for c in cards} == {opening.strftime("%Y-%m-%d")}
    assert launcher.seed_demo_cards(system_db, launcher.exchange_time(settings)) == []  # only on a brand-new ledger


@pytest.mark.parametrize("env, kind", [
    ({}, "broker"),                                                       # the local paper exchange (default)
    ({"AUTOTRADER_CLOCK": "system"}, "broker"),                           # ... whatever .env says
    ({"RUN_PAPER_EXCHANGE": "false", "AUTOTRADER_CLOCK": "system"}, "system"),  # a real broker
])
def test_start_runs_every_process_on_the_local_exchanges_clock(env, kind, tmp_path):
    assert launcher.with_trading_clock(env, Settings.from_env(env)).get("AUTOTRADER_CLOCK") == kind
    units = services.render_units(tmp_path, Settings.from_env(env))
    for name in ("autotrader-orchestrator.service", "autotrader-api.service"):
        text = (tmp_path / name).read_text()
        assert ("Environment=AUTOTRADER_CLOCK=broker" in text) == (kind == "broker"), name
    assert units


def test_a_stop_while_the_exchanges_clock_was_never_read_changes_nothing(api_factory, system_db):
    from tests.fixtures.api import table_rows

    card = ledger.create_algorithm("AAPL", "sma_crossover", 1_000.0, created_at="2026-03-16T14:31:00Z")
    client = api_factory("down", CLOCK_KIND="broker", TRADING_CLOCK=None).test_client()
    before = table_rows(system_db)

    answer = client.delete(f"/api/algorithms/{card}", headers=auth(get_token(client, "stop")))

    assert answer.status_code == 503 and "nothing was stopped" in answer.get_json()["error"]
    assert ledger.get_algorithm(card)["status"] == "running"
    assert {t: rows for t, rows in table_rows(system_db).items() if t != "system_config"} == \
        {t: rows for t, rows in before.items() if t != "system_config"}
