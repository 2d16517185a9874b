"""/api/health: heartbeat age, stream and mismatches from the orchestrator, bars, broker reachability, no secrets."""
from __future__ import annotations

import json

from database import db_manager
from system_databse import system_db_manager

PAYLOAD = {
    "last_cycle_at": "2026-11-23T14:59:00Z",
    "stream": {"connected": True, "subscriptions": ["NVDA"], "last_message_at": "2026-11-23T14:59:58Z", "reconnects": 2},
    "last_bar": {"NVDA": "2026-11-23T14:58:00Z"},
    "position_mismatches": [{"ticker": "NVDA", "broker": 10, "cards": 12}],
    "errors_last_hour": 3,
}


def test_no_heartbeat_means_not_alive(offline_client):
    body = offline_client.get("/api/health").get_json()
    assert body["ok"] is False
    assert body["orchestrator"] == {"alive": False, "heartbeat_at": None, "age_seconds": None,
                                    "stale_after_seconds": 180, "details": {}}


def test_fresh_heartbeat_with_its_details(api_client, ledger, market):
    system_db_manager.write_heartbeat("orchestrator", PAYLOAD, now="2026-11-23T14:59:30Z", conn=ledger)
    system_db_manager.create_algorithm("NVDA", "sma_crossover", 1_000, conn=ledger)
    system_db_manager.create_algorithm("TSLA", "sma_crossover", 1_000, conn=ledger)
    db_manager.upsert_bars(market, [{"ticker": "NVDA", "timestamp": "2026-11-23T14:59:00Z", "open": 1, "high": 1,
                                     "low": 1, "close": 1, "volume": 1}])
    body = api_client.get("/api/health").get_json()
    assert body["ok"] is True
    assert body["orchestrator"]["alive"] is True and body["orchestrator"]["age_seconds"] == 30
    assert body["orchestrator"]["details"]["last_cycle_at"] == "2026-11-23T14:59:00Z"
    assert body["stream"] == PAYLOAD["stream"]
    assert body["position_mismatches"] == PAYLOAD["position_mismatches"]
    assert body["errors_last_hour"] == 3
    assert body["last_bar"] == {"NVDA": "2026-11-23T14:59:00Z", "TSLA": None}
    assert body["broker"] == {"reachable": True, "error": None}
    assert body["market"]["source"] == "broker"


def test_stale_heartbeat_is_not_alive(offline_client, ledger, api_clock):
    system_db_manager.write_heartbeat("orchestrator", PAYLOAD, now="2026-11-23T14:56:59Z", conn=ledger)
    orchestrator = offline_client.get("/api/health").get_json()["orchestrator"]
    assert (orchestrator["alive"], orchestrator["age_seconds"]) == (False, 181)


def test_off_hours_the_heartbeat_may_be_older(api_factory, ledger, api_clock):
    api_clock.now = api_clock.now.replace(hour=23)  # 18:00 New York: closed
    system_db_manager.write_heartbeat("orchestrator", PAYLOAD, now="2026-11-23T22:55:00Z", conn=ledger)
    orchestrator = api_factory("down").test_client().get("/api/health").get_json()["orchestrator"]
    assert (orchestrator["alive"], orchestrator["age_seconds"], orchestrator["stale_after_seconds"]) == (True, 300, 600)


def test_broker_down_is_reported_not_fatal(offline_client):
    response = offline_client.get("/api/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["broker"]["reachable"] is False and "unreachable" in body["broker"]["error"]
    assert body["market"]["source"] == "calendar"


def test_credentials_never_leave_the_health_endpoint(api_factory, paper_exchange_factory, ledger):
    exchange = paper_exchange_factory(key="health-key-1234", secret="health-secret-5678")
    payload = {**PAYLOAD, "api_key": "health-key-1234", "settings": {"ALPACA_SECRET": "health-secret-5678",
                                                                     "feed": "iex"}}
    system_db_manager.write_heartbeat("orchestrator", payload, now="2026-11-23T14:59:30Z", conn=ledger)
    response = api_factory(exchange).test_client().get("/api/health")
    text = response.get_data(as_text=True)
    assert "health-key-1234" not in text and "health-secret-5678" not in text
    details = json.loads(text)["orchestrator"]["details"]
    assert details["api_key"] == "***" and details["settings"] == {"ALPACA_SECRET": "***", "feed": "iex"}
