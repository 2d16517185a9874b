"""``python api_server.py``: waitress on API_HOST:API_PORT, start-up checks, logs without secrets."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.fixtures.api import closed_port

REPO = Path(__file__).resolve().parents[1]
DEADLINE = 60.0


def server_env(tmp_path, system_db, stocks_db, port, broker_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "API_", "AUTOTRADER_"))}
    env.update(broker_env)
    env.update({"API_HOST": "127.0.0.1", "API_PORT": str(port), "AUTOTRADER_SYSTEM_DB": str(system_db),
                "AUTOTRADER_STOCKS_DB": str(stocks_db), "AUTOTRADER_LOG_DIR": str(tmp_path / "logs")})
    return env


@pytest.fixture
def run_server(tmp_path):
    started = []

    def start(env):
        out = open(tmp_path / f"server-{len(started)}.out", "w")
        process = subprocess.Popen([sys.executable, "api_server.py"], cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
        out.close()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)


def wait_for(url):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            return requests.get(url, timeout=5)
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def test_serves_the_api_under_waitress_and_logs_no_secrets(tmp_path, system_db, stocks_db, paper_exchange_factory,
                                                            run_server):
    exchange = paper_exchange_factory(key="server-key-4321", secret="server-secret-8765")
    port = closed_port()
    run_server(server_env(tmp_path, system_db, stocks_db, port, exchange.env))
    health = wait_for(f"http://127.0.0.1:{port}/api/health")
    assert health.status_code == 200 and health.headers["Server"] == "autotrader"
    assert health.json()["broker"]["reachable"] is True
    token = requests.post(f"http://127.0.0.1:{port}/api/validate-pin", json={"pin": "2020", "action": "add"},
                          timeout=10).json()["token"]
    created = requests.post(f"http://127.0.0.1:{port}/api/algorithms", timeout=30,
                            headers={"Authorization": f"Bearer {token}"},
                            json={"ticker": "MSFT", "algorithm_type": "sma_crossover", "initial_capital": 1000})
    assert created.status_code == 201
    cash = requests.get(f"http://127.0.0.1:{port}/api/account/cash", timeout=30).json()
    assert cash["reserved"] == 1000.0
    log = (tmp_path / "logs" / "api.log").read_text()
    assert f"AutoTrader API on http://127.0.0.1:{port}" in log and "PAPER mode" in log
    assert "created card 1: MSFT sma_crossover" in log
    everything = log + "".join(p.read_text() for p in tmp_path.glob("server-*.out")) + health.text + created.text
    assert "server-key-4321" not in everything and "server-secret-8765" not in everything


def test_missing_database_stops_start_up_with_one_line(tmp_path, stocks_db, run_server):
    env = server_env(tmp_path, tmp_path / "missing.db", stocks_db, closed_port(), {})
    process = run_server(env)
    assert process.wait(timeout=DEADLINE) == 2
    output = (tmp_path / "server-0.out").read_text()
    assert "error: system database not found" in output and output.count("\n") == 1


def test_bad_port_stops_start_up_with_one_line(tmp_path, system_db, stocks_db, run_server):
    env = server_env(tmp_path, system_db, stocks_db, "http", {})
    process = run_server(env)
    assert process.wait(timeout=DEADLINE) == 2
    assert (tmp_path / "server-0.out").read_text() == "error: API_PORT must be a port number, got 'http'\n"


def test_binding_beyond_loopback_is_warned_about(api_factory, caplog):
    import logging

    import api_server
    from shared.config import Settings

    app = api_factory()
    env = {"ALPACA_API_KEY": "k-123456", "ALPACA_SECRET": "s-654321"}
    with caplog.at_level(logging.INFO, logger="api_server"):
        api_server.announce(Settings.from_env({**env, "API_HOST": "127.0.0.1"}), app)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        api_server.announce(Settings.from_env({**env, "API_HOST": "0.0.0.0"}), app)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "beyond loopback" in warnings[0]
    assert "broker PAPER mode, iex feed" in caplog.text
    assert "k-123456" not in caplog.text and "s-654321" not in caplog.text


def test_the_dialog_offers_the_algorithms_of_the_folder_the_orchestrator_runs(tmp_path, monkeypatch, system_db, stocks_db):
    """AUTOTRADER_ALGORITHMS_DIR moves both processes to another folder, not just the daemon."""
    import api_server
    folder = tmp_path / "my_algorithms"
    folder.mkdir()
    (folder / "always_hold.py").write_text(
        '"""Never trades: a card that just watches."""\n'
        "class Algorithm:\n"
        "    def __init__(self, ticker, initial_capital): pass\n"
        "    def get_data_requirements(self, current_time): return {'bars': 1}\n"
        "    def on_data(self, bars, transaction_history): return ('hold', 0)\n")
    monkeypatch.setenv("AUTOTRADER_ALGORITHMS_DIR", str(folder))
    client = api_server.create_app().test_client()
    listing = client.get("/api/available-algorithms").get_json()
    assert listing == {"algorithms": [{"name": "always_hold", "description": "Never trades: a card that just watches.",
                                       "parameters": []}]}
