"""Running the paper exchange from the command line and the environment."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import requests

from tests.fixtures.exchange import REPO_ROOT, start_paper_exchange


def run(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "paper_exchange", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, words", [
    (["--start", "nonsense"], "--start: must be a UTC time"),
    (["--start", "2045-01-01T00:00:00Z"], "--start: must lie between"),
    (["--speed", "-1"], "--speed: must be >= 0"),
    (["--cash", "lots"], "--cash: must be a number"),
    (["--port", "http"], "--port: invalid int value"),
])
def test_bad_options_give_one_line_and_exit_2(args, words):
    done = run("--port", "0", "--stream-port", "0", *args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and words in done.stderr
    assert done.stdout == ""


def test_options_come_from_the_environment(tmp_path):
    exchange = start_paper_exchange(tmp_path, start=None, speed=None, seed=None, cash=None, key=None, secret=None,
                                    stream_connection_limit=None, env={
                                        "PAPER_EXCHANGE_START": "2026-11-27T15:00:00Z", "PAPER_EXCHANGE_SPEED": "0",
                                        "PAPER_EXCHANGE_CASH": "2500.50", "PAPER_EXCHANGE_SEED": "7",
                                        "PAPER_EXCHANGE_KEY": "env-key", "PAPER_EXCHANGE_SECRET": "env-secret"})
    try:
        state = exchange.state()
        assert state["clock"] == {"now": "2026-11-27T15:00:00.000000Z", "speed": 0.0, "is_open": True}
        assert state["seed"] == 7
        account = requests.get(f"{exchange.base_url}/v2/account", timeout=30,
                               headers={"APCA-API-KEY-ID": "env-key", "APCA-API-SECRET-KEY": "env-secret"})
        assert account.json()["cash"] == "2500.50"
    finally:
        exchange.stop()


def test_a_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run("--port", str(port), "--stream-port", "0")
    assert done.returncode == 1
    assert "cannot bind 127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_exchange_imports_no_production_module():
    probe = ("import sys, paper_exchange.__main__; "
             "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('orchestra', 'database', 'system_databse', 'algorithms', 'api', 'api_server', 'orchestrator'))))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", done.stdout
