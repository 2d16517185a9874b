"""Trading controls through the API: PAUSE and RESUME, a new card's limits, changing them, RESUME CARD.

Each guarded by its own PIN token; bad input is a JSON 4xx that writes nothing; the wall's
listing carries the pause and every card's limits with its trip.
"""
from __future__ import annotations

import pytest

from orchestra import net_order
from orchestra.allocation import Intent, net_ticker
from system_databse import system_db_manager as manager
from tests.fixtures.api import ComputerTradingClock, auth, get_token, table_rows

NEW = {"ticker": "NVDA", "algorithm_type": "sma_crossover", "initial_capital": 1000}
NO_LIMITS = {"max_drawdown_percent": None, "daily_loss_limit": None, "max_trades_per_day": None,
             "cooldown_minutes": None, "on_trip": "pause", "trip": None}


@pytest.fixture
def client(api_factory, api_exchange, api_clock):
    """The API on the exchange, its trading clock the test's (as with a real broker: the computer's)."""
    return api_factory(api_exchange, CLOCK_KIND="system", TRADING_CLOCK=ComputerTradingClock(api_clock),
                       CARD_LIMIT_DEFAULTS={
        "max_drawdown_percent": 20.0, "daily_loss_limit": None, "max_trades_per_day": 50, "cooldown_minutes": None,
        "on_trip": "pause"}, DAILY_ORDER_LIMIT=200).test_client()


def post(client, url, action, body=None):
    return client.post(url, json={} if body is None else body, headers=auth(get_token(client, action)))


def test_pause_and_resume_each_need_their_own_token_and_show_on_the_wall(client, system_db):
    before = table_rows(system_db)
    assert client.post("/api/pause", json={}).status_code == 401
    wrong = client.post("/api/pause", json={}, headers=auth(get_token(client, "resume")))
    assert wrong.status_code == 401 and "given for 'resume', not for 'pause'" in wrong.get_json()["error"]
    assert table_rows(system_db) == before

    paused = post(client, "/api/pause", "pause")
    assert paused.status_code == 200
    body = paused.get_json()
    assert (body["paused"], body["paused_by"], body["reason"], body["already_paused"]) == (True, "owner", "", False)
    assert body["since"] == "2026-11-23T15:00:00Z"  # the trading clock in this test
    assert post(client, "/api/pause", "pause").get_json()["already_paused"] is True
    listing = client.get("/api/algorithms").get_json()
    assert listing["pause"]["paused"] is True and listing["pause"]["since"] == body["since"]

    resumed = post(client, "/api/resume", "resume").get_json()
    assert (resumed["paused"], resumed["since"], resumed["resumed_at"], resumed["already_trading"]) == (
        False, None, "2026-11-23T15:00:00Z", False)
    assert post(client, "/api/resume", "resume").get_json()["already_trading"] is True


@pytest.mark.parametrize("body", [{"reason": "x"}, {"anything": 1}])
def test_pause_takes_an_empty_object_only(client, system_db, body):
    before = table_rows(system_db)
    response = post(client, "/api/pause", "pause", body)
    assert response.status_code == 400 and response.get_json()["error"].startswith("unknown field(s)")
    assert table_rows(system_db) == before


def test_the_days_orders_count_broker_orders_only_and_the_defaults_are_shown(client, ledger):
    card = ledger_card(ledger)
    buyer = ledger_card(ledger)
    net_order.journal(ledger, net_ticker("NVDA", [Intent(card, "buy", 5)]), "sent-1", minute="2026-11-23T14:50:00Z",
                      price=100.0, now="2026-11-23T14:51:00Z")
    net_order.apply(ledger, "sent-1", net_order.BrokerUpdate("filled", 5, 100.0, "2026-11-23T14:51:00Z"),
                    now="2026-11-23T14:51:00Z")
    net_order.journal(ledger, net_ticker("NVDA", [Intent(card, "sell", 2), Intent(buyer, "buy", 2)]), "crossed-1",
                      minute="2026-11-23T14:52:00Z", price=100.0, now="2026-11-23T14:53:00Z")  # a cross: no broker order
    net_order.journal(ledger, net_ticker("NVDA", [Intent(card, "buy", 1)]), "friday", minute="2026-11-20T15:00:00Z",
                      price=100.0, now="2026-11-20T15:01:00Z")  # an earlier trading day
    controls = client.get("/api/controls").get_json()
    assert controls["daily_orders"] == {"limit": 200, "sent": 1, "since": "2026-11-23T14:30:00Z"}
    assert controls["card_limit_defaults"] == {"max_drawdown_percent": 20.0, "daily_loss_limit": None,
                                               "max_trades_per_day": 50, "cooldown_minutes": None, "on_trip": "pause"}
    assert controls["pause"]["paused"] is False


def ledger_card(conn) -> int:
    return manager.create_algorithm("NVDA", "sma_crossover", 10_000.0, conn=conn)


def test_a_new_card_takes_the_defaults_for_the_limits_it_does_not_name(client):
    plain = client.post("/api/algorithms", json=NEW, headers=auth(get_token(client, "add")))
    assert plain.status_code == 201
    assert plain.get_json()["limits"] == {**NO_LIMITS, "max_drawdown_percent": 20.0, "max_trades_per_day": 50}
    chosen = client.post("/api/algorithms", headers=auth(get_token(client, "add")), json={
        **NEW, "limits": {"max_drawdown_percent": None, "cooldown_minutes": 15, "on_trip": "liquidate"}})
    assert chosen.status_code == 201
    assert chosen.get_json()["limits"] == {**NO_LIMITS, "max_trades_per_day": 50, "cooldown_minutes": 15,
                                           "on_trip": "liquidate"}
    listed = {c["id"]: c["limits"] for c in client.get("/api/algorithms").get_json()["algorithms"]}
    assert listed[chosen.get_json()["id"]]["cooldown_minutes"] == 15


@pytest.mark.parametrize("limits, field", [
    ({"max_drawdown_percent": 100}, "max_drawdown_percent"), ({"max_drawdown_percent": 0}, "max_drawdown_percent"),
    ({"daily_loss_limit": -5}, "daily_loss_limit"), ({"daily_loss_limit": "50"}, "daily_loss_limit"),
    ({"max_trades_per_day": 2.5}, "max_trades_per_day"), ({"max_trades_per_day": True}, "max_trades_per_day"),
    ({"cooldown_minutes": 0}, "cooldown_minutes"), ({"on_trip": "panic"}, "on_trip"),
    ({"stop_loss": 5}, None), ([], "limits"),
])
def test_bad_limits_on_a_new_card_are_a_400_naming_the_field_and_nothing_is_written(client, system_db, limits, field):
    before = table_rows(system_db)
    response = client.post("/api/algorithms", json={**NEW, "limits": limits}, headers=auth(get_token(client, "add")))
    assert response.status_code == 400 and response.get_json().get("field") == field
    assert table_rows(system_db) == before


def test_limits_are_changed_with_their_own_pin_and_a_trip_waits_for_resume_card(client, system_db, ledger):
    card_id = client.post("/api/algorithms", json=NEW, headers=auth(get_token(client, "add"))).get_json()["id"]
    changed = client.put(f"/api/algorithms/{card_id}/limits", json={"daily_loss_limit": 75.5, "on_trip": "liquidate"},
                         headers=auth(get_token(client, "limits")))
    assert changed.status_code == 200
    assert changed.get_json()["limits"] == {**NO_LIMITS, "daily_loss_limit": 75.5, "on_trip": "liquidate"}
    assert manager.get_card_limits(card_id, conn=ledger)["updated_at"] == "2026-11-23T15:00:00Z"

    manager.trip_card(card_id, "daily_loss", "daily loss limit $75.50 reached: $80.00 lost today",
                     at="2026-11-23T15:20:00Z", conn=ledger)
    again = client.put(f"/api/algorithms/{card_id}/limits", json={"daily_loss_limit": 100},
                       headers=auth(get_token(client, "limits")))
    assert again.get_json()["limits"]["trip"] == {"limit": "daily_loss", "at": "2026-11-23T15:20:00Z", "until": None,
                                                  "reason": "daily loss limit $75.50 reached: $80.00 lost today"}
    assert post(client, f"/api/algorithms/{card_id}/resume", "limits").status_code == 401  # a limits token cannot
    resumed = post(client, f"/api/algorithms/{card_id}/resume", "resume")
    assert resumed.status_code == 200
    assert (resumed.get_json()["limits"]["trip"], resumed.get_json()["already_running"]) == (None, False)
    assert manager.get_card_limits(card_id, conn=ledger)["resumed_at"] == "2026-11-23T15:00:00Z"
    assert post(client, f"/api/algorithms/{card_id}/resume", "resume").get_json()["already_running"] is True


@pytest.mark.parametrize("url, method, body, status", [
    ("/api/algorithms/{id}/limits", "PUT", {"cooldown_minutes": -1}, 400),
    ("/api/algorithms/{id}/limits", "PUT", {"max_trades_per_day": 10, "max_loss": 5}, 400),
    ("/api/algorithms/999/limits", "PUT", {"cooldown_minutes": 5}, 404),
    ("/api/algorithms/{stopped}/limits", "PUT", {"cooldown_minutes": 5}, 409),
    ("/api/algorithms/{id}/resume", "POST", {"now": True}, 400),
    ("/api/algorithms/999/resume", "POST", {}, 404),
    ("/api/algorithms/{stopped}/resume", "POST", {}, 409),
])
def test_refused_changes_write_nothing(client, system_db, ledger, url, method, body, status):
    card_id, stopped = ledger_card(ledger), ledger_card(ledger)
    manager.stop_algorithm(stopped, conn=ledger)
    before = table_rows(system_db)
    action = "limits" if url.endswith("/limits") else "resume"
    response = client.open(url.format(id=card_id, stopped=stopped), method=method, json=body,
                           headers=auth(get_token(client, action)))
    assert response.status_code == status and isinstance(response.get_json()["error"], str)
    assert table_rows(system_db) == before


def test_with_live_keys_the_default_pin_may_pause_but_not_resume_or_change_limits(api_factory, system_db, ledger):
    client = api_factory(LIVE_TRADING=True).test_client()
    card_id = ledger_card(ledger)
    assert post(client, "/api/pause", "pause").status_code == 200   # stopping trading is always allowed
    before = table_rows(system_db)
    for url, action, body in [("/api/resume", "resume", {}), (f"/api/algorithms/{card_id}/resume", "resume", {}),
                              (f"/api/algorithms/{card_id}/limits", "limits", {"cooldown_minutes": 5})]:
        response = client.open(url, method="PUT" if action == "limits" else "POST", json=body,
                               headers=auth(get_token(client, action)))
        assert response.status_code == 403 and "PIN is still the default" in response.get_json()["error"]
    assert table_rows(system_db) == before
