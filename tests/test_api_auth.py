"""PIN → token → actions: a hashed PIN, the spec's check without a token, short-lived tokens, lock-out that
doubles and survives restarts."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from shared.config import Settings
from system_databse import system_db_manager
from tests.fixtures.api import auth, get_token, table_rows

REPO = Path(__file__).resolve().parents[1]


def wrong_pin(client, pin="0000"):
    return client.post("/api/validate-pin", json={"pin": pin, "action": "add"})


def test_right_pin_gives_a_token_that_expires_in_five_minutes(offline_client):
    response = offline_client.post("/api/validate-pin", json={"pin": "2020", "action": "add"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["valid"] is True and body["expires_in"] == 300 and body["action"] == "add"
    assert len(body["token"]) >= 40


def test_each_token_is_different(offline_client):
    assert get_token(offline_client, "add") != get_token(offline_client, "add")


def test_wrong_pin_is_401_and_counts_down_attempts(offline_client):
    answers = [wrong_pin(offline_client) for _ in range(4)]
    assert [a.status_code for a in answers] == [401] * 4
    assert [a.get_json()["attempts_left"] for a in answers] == [4, 3, 2, 1]
    assert all(a.get_json()["valid"] is False and "token" not in a.get_json() for a in answers)


@pytest.mark.parametrize("body", [
    {}, {"pin": 2020, "action": "add"}, {"pin": "", "action": "add"}, {"pin": None, "action": "add"},
    {"pin": ["2020"], "action": "add"}, {"pin": "2020", "action": "add", "extra": 1},
    {"pin": "2020", "action": None}, {"pin": "2020", "action": "sell"}, {"pin": "2020", "action": ["add"]},
    {"pin": "123", "action": "add"}, {"pin": "123456789", "action": "add"}, {"pin": "²٠٢٠", "action": "add"},
    {"pin": "２０２０", "action": "add"}, {"pin": "2020\n", "action": "stop"}, {"pin": " 2020", "action": "stop"},
])
def test_malformed_pin_request_is_400_and_not_counted(offline_client, system_db, body):
    before = table_rows(system_db)
    response = offline_client.post("/api/validate-pin", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert table_rows(system_db) == before


def check(client, pin):
    """The spec's "check PIN": validate-pin without an action."""
    return client.post("/api/validate-pin", json={"pin": pin})


def test_checking_the_right_pin_answers_valid_and_gives_no_token(offline_client):
    answer = check(offline_client, "2020")
    assert answer.status_code == 200 and answer.get_json() == {"valid": True}


def test_checking_a_wrong_pin_answers_not_valid_and_counts_down(offline_client):
    answers = [check(offline_client, pin) for pin in ("2021", "0202", "20200", "1234")]
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.get_json() for a in answers] == [{"valid": False, "attempts_left": n} for n in (4, 3, 2, 1)]


def test_wrong_checks_count_toward_the_lock_out_like_wrong_tokens(offline_client, api_clock):
    for _ in range(2):
        check(offline_client, "1111")
    for _ in range(2):
        wrong_pin(offline_client)
    fifth = check(offline_client, "1111")
    assert fifth.status_code == 200 and fifth.get_json() == {"valid": False, "attempts_left": 0, "retry_after": 60}
    # locked: even the right PIN, checked or traded for a token, is refused until the minute is over
    assert check(offline_client, "2020").status_code == 429
    assert offline_client.post("/api/validate-pin", json={"pin": "2020", "action": "add"}).status_code == 429
    api_clock.advance(60)
    assert check(offline_client, "2020").get_json() == {"valid": True}
    # the right PIN reset the count: four wrong ones leave one attempt
    assert [check(offline_client, "1111").get_json()["attempts_left"] for _ in range(4)] == [4, 3, 2, 1]


def test_a_ledger_still_holding_a_plain_pin_is_refused_until_upgraded(api_factory, system_db):
    """Before migration 0010 ran (the code updated, create_system_db not run yet): 503 with the fix."""
    conn = sqlite3.connect(system_db, isolation_level=None)
    conn.execute("UPDATE system_config SET value = '2020' WHERE key = 'pin'")
    conn.close()
    answer = api_factory().test_client().post("/api/validate-pin", json={"pin": "2020", "action": "add"})
    assert answer.status_code == 503
    assert "python -m system_databse.create_system_db" in answer.get_json()["error"]


def test_five_wrong_pins_lock_even_the_right_pin_out(offline_client, api_clock):
    for _ in range(4):
        wrong_pin(offline_client)
    fifth = wrong_pin(offline_client)
    assert fifth.status_code == 401
    assert fifth.get_json()["attempts_left"] == 0 and fifth.get_json()["retry_after"] == 60

    locked = offline_client.post("/api/validate-pin", json={"pin": "2020", "action": "add"})
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == "60"
    assert locked.get_json()["retry_after"] == 60 and "try again" in locked.get_json()["error"]

    api_clock.advance(59)
    assert wrong_pin(offline_client, "2020").headers["Retry-After"] == "1"
    api_clock.advance(1)
    assert offline_client.post("/api/validate-pin", json={"pin": "2020", "action": "add"}).status_code == 200


def test_lock_out_doubles_until_a_right_pin(offline_client, api_clock):
    lengths = []
    for _ in range(3):
        for _ in range(5):
            wrong_pin(offline_client)
        locked = wrong_pin(offline_client)
        lengths.append(int(locked.headers["Retry-After"]))
        api_clock.advance(lengths[-1])
    assert lengths == [60, 120, 240]

    assert offline_client.post("/api/validate-pin", json={"pin": "2020", "action": "add"}).status_code == 200
    for _ in range(5):
        wrong_pin(offline_client)
    assert wrong_pin(offline_client).headers["Retry-After"] == "60"


def test_lock_out_is_capped(api_factory, api_clock):
    client = api_factory(PIN_LOCKOUT_MAX_SECONDS=100).test_client()
    for _ in range(2):
        for _ in range(5):
            wrong_pin(client)
        seconds = int(wrong_pin(client).headers["Retry-After"])
        api_clock.advance(seconds)
    assert seconds == 100


def test_a_right_pin_resets_the_count(offline_client):
    for _ in range(3):
        wrong_pin(offline_client)
    get_token(offline_client, "add")
    answers = [wrong_pin(offline_client) for _ in range(4)]
    assert [a.status_code for a in answers] == [401] * 4
    assert answers[-1].get_json()["attempts_left"] == 1


def test_lock_out_survives_a_server_restart(api_factory):
    first = api_factory().test_client()
    for _ in range(5):
        wrong_pin(first)
    restarted = api_factory().test_client()
    assert restarted.post("/api/validate-pin", json={"pin": "2020", "action": "add"}).status_code == 429


def test_token_works_until_it_expires(api_factory, api_clock, system_db):
    client = api_factory(TOKEN_TTL_SECONDS=300).test_client()
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1000.0, conn=None)
    token = get_token(client, "stop")
    api_clock.advance(300)
    before = table_rows(system_db)
    expired = client.delete(f"/api/algorithms/{algo_id}", headers=auth(token))
    assert expired.status_code == 401
    assert "expired" in expired.get_json()["error"]
    assert expired.headers["WWW-Authenticate"].startswith("Bearer")
    assert table_rows(system_db) == before

    fresh = get_token(client, "stop")
    api_clock.advance(299)
    assert client.delete(f"/api/algorithms/{algo_id}", headers=auth(fresh)).status_code == 200
    assert system_db_manager.get_algorithm(algo_id)["status"] == "stopped"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Bearer not-a-token", "Basic MjAyMA==", "2020"])
def test_mutations_without_a_valid_token_are_401_and_change_nothing(offline_client, system_db, header):
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1000.0)
    before = table_rows(system_db)
    headers = {"Authorization": header} if header is not None else {}
    stop = offline_client.delete(f"/api/algorithms/{algo_id}", headers=headers)
    create = offline_client.post("/api/algorithms", headers=headers,
                                 json={"ticker": "AAPL", "algorithm_type": "sma_crossover", "initial_capital": 10})
    assert (stop.status_code, create.status_code) == (401, 401)
    assert stop.get_json()["error"] and create.get_json()["error"]
    assert table_rows(system_db) == before


def test_a_token_does_not_survive_a_restart(api_factory, system_db):
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1000.0)
    token = get_token(api_factory().test_client(), "stop")
    restarted = api_factory().test_client()
    assert restarted.delete(f"/api/algorithms/{algo_id}", headers=auth(token)).status_code == 401


def test_the_pin_entered_to_add_a_card_cannot_stop_one(offline_client, system_db):
    """A token serves the one flow it was minted for: a wall left alone after an add cannot sell anything."""
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1000.0)
    before = table_rows(system_db)
    add_token = get_token(offline_client, "add")
    stop = offline_client.delete(f"/api/algorithms/{algo_id}", headers=auth(add_token))
    assert stop.status_code == 401 and "enter the PIN again" in stop.get_json()["error"]
    assert table_rows(system_db) == before

    stop_token = get_token(offline_client, "stop")
    create = offline_client.post("/api/algorithms", headers=auth(stop_token),
                                 json={"ticker": "AAPL", "algorithm_type": "sma_crossover", "initial_capital": 10})
    assert create.status_code == 401
    assert offline_client.delete(f"/api/algorithms/{algo_id}", headers=auth(stop_token)).status_code == 200


@pytest.mark.parametrize("method,url", [("POST", "/api/algorithms"), ("DELETE", "/api/algorithms/{id}")])
def test_live_trading_refuses_add_and_stop_while_the_pin_is_the_default(api_factory, system_db, method, url):
    client = api_factory(LIVE_TRADING=True).test_client()
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1000.0)
    before = table_rows(system_db)
    action = "add" if method == "POST" else "stop"
    body = {"ticker": "AAPL", "algorithm_type": "sma_crossover", "initial_capital": 10} if method == "POST" else None
    response = client.open(url.format(id=algo_id), method=method, json=body,
                           headers=auth(get_token(client, action)))
    assert response.status_code == 403
    assert "PIN is still the default" in response.get_json()["error"]
    assert ".venv/bin/python -m api.pin set-pin" in response.get_json()["error"]
    assert table_rows(system_db) == before


def test_live_trading_with_a_changed_pin_stops_cards(api_factory, system_db):
    system_db_manager.set_pin("48151623")
    client = api_factory(LIVE_TRADING=True).test_client()
    algo_id = system_db_manager.create_algorithm("NVDA", "sma_crossover", 1000.0)
    token = get_token(client, "stop", pin="48151623")
    assert client.delete(f"/api/algorithms/{algo_id}", headers=auth(token)).status_code == 200


def test_live_mode_follows_alpaca_paper(system_db, stocks_db):
    import api_server

    live = Settings.from_env({"ALPACA_PAPER": "False", "AUTOTRADER_SYSTEM_DB": str(system_db)})
    assert api_server.create_app({"TESTING": True}, live).config["LIVE_TRADING"] is True
    assert Settings.from_env({}).api.live_trading is False
    assert Settings.from_env({"ALPACA_PAPER": "True"}).api.live_trading is False
    assert Settings.from_env({"ALPACA_PAPER": "False"}).api.live_trading is True
    assert Settings.from_env({"ALPACA_PAPER": "maybe"}).api.live_trading is True


# --------------------------------------------------------------------------- the PIN command


def pin_cli(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "api.pin", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_set_pin_from_the_shell_changes_what_the_api_accepts(offline_client, system_db):
    result = pin_cli("set-pin", "--db", str(system_db), stdin="468135\n")
    assert result.returncode == 0, result.stderr
    assert offline_client.post("/api/validate-pin", json={"pin": "2020", "action": "add"}).status_code == 401
    assert offline_client.post("/api/validate-pin", json={"pin": "468135", "action": "add"}).status_code == 200


@pytest.mark.parametrize("new_pin", ["12", "12a4", "123456789", ""])
def test_set_pin_refuses_a_bad_pin_in_one_line(system_db, new_pin):
    result = pin_cli("set-pin", "--db", str(system_db), stdin=new_pin + "\n")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert system_db_manager.check_pin("2020") and system_db_manager.pin_is_default()


def test_pin_command_on_a_missing_database_fails_in_one_line(tmp_path):
    result = pin_cli("status", "--db", str(tmp_path / "nope.db"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "not found" in result.stderr


def test_unlock_and_status_from_the_shell(offline_client, system_db, api_clock):
    api_clock.now = datetime.now(timezone.utc)  # the command reads the real clock
    for _ in range(5):
        wrong_pin(offline_client)
    status = pin_cli("status", "--db", str(system_db))
    assert status.returncode == 0 and "1 lock-out(s); locked for" in status.stdout
    assert "2020" not in status.stdout
    assert pin_cli("unlock", "--db", str(system_db)).returncode == 0
    assert offline_client.post("/api/validate-pin", json={"pin": "2020", "action": "add"}).status_code == 200
    assert "not locked" in pin_cli("status", "--db", str(system_db)).stdout


def test_set_pin_lifts_a_lock_out(offline_client, system_db):
    for _ in range(5):
        wrong_pin(offline_client)
    assert pin_cli("set-pin", "--db", str(system_db), stdin="9876\n").returncode == 0
    assert offline_client.post("/api/validate-pin", json={"pin": "9876", "action": "add"}).status_code == 200


def test_concurrent_wrong_pins_are_counted_one_by_one(api_factory):
    """Ten guesses at once: the count is kept in one write transaction, so only five get through."""
    from concurrent.futures import ThreadPoolExecutor

    app = api_factory()
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(lambda _: wrong_pin(app.test_client()).status_code, range(10)))
    assert statuses == [401] * 5 + [429] * 5
