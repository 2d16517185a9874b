"""./scripts/start on a copy of the checkout: everything comes up, the dashboard answers, and
Ctrl-C leaves no process behind."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from orchestra.config import REPO_ROOT
from tests.fixtures.ports import free_port

SKIP = shutil.ignore_patterns(".venv", ".git", "*.db", "*.db-wal", "*.db-shm", "logs", ".env", "__pycache__",
                              ".pytest_cache", ".hypothesis", "test-artifacts")


def children_of(pid: int) -> set[int]:
    """Direct children, from /proc (Linux)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text().split()
        found.update(int(p) for p in text)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A copy of this checkout sharing the already-built virtualenv."""
    copy = tmp_path / "autotrader"
    shutil.copytree(REPO_ROOT, copy, ignore=SKIP)
    (copy / ".venv").symlink_to(REPO_ROOT / ".venv")
    return copy


def test_start_brings_up_the_whole_system_and_ctrl_c_stops_it(checkout):
    api_port, rest_port, stream_port = free_port(), free_port(), free_port()
    env = {**os.environ, "API_PORT": str(api_port),
           "ALPACA_TRADING_URL": f"http://127.0.0.1:{rest_port}", "ALPACA_DATA_URL": f"http://127.0.0.1:{rest_port}",
           "ALPACA_STREAM_URL": f"ws://127.0.0.1:{stream_port}"}
    for key in ("AUTOTRADER_SYSTEM_DB", "AUTOTRADER_STOCKS_DB", "AUTOTRADER_LOG_DIR"):
        env.pop(key, None)
    log = (checkout / "start.log").open("w")
    start = subprocess.Popen([str(checkout / "scripts" / "start")], cwd=checkout, env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while "Dashboard:" not in (checkout / "start.log").read_text():
            assert start.poll() is None, (checkout / "start.log").read_text()
            assert time.monotonic() < deadline, "start did not finish in time"
            time.sleep(0.5)
        output = (checkout / "start.log").read_text()
        assert f"Dashboard: http://127.0.0.1:{api_port}/" in output
        assert "Created 3 demo cards" in output
        assert (checkout / ".env").exists() and (checkout / "system_databse" / "system.db").exists()
        owner_only = {".env": 0o600, "system_databse/system.db": 0o600, "system_databse/system.db-wal": 0o600,
                      "system_databse/system.db-shm": 0o600, "system_databse/paper_exchange.db": 0o600,
                      "logs": 0o700, "logs/api.log": 0o600, "logs/orchestrator.log": 0o600}
        assert {name: stat.S_IMODE((checkout / name).stat().st_mode) for name in owner_only} == owner_only
        assert "WARNING" not in output

        processes = children_of(start.pid)
        assert len(processes) == 3  # paper exchange, orchestrator, API server
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/", timeout=10) as page:
            assert page.status == 200 and "<html" in page.read().decode().lower()
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/algorithms", timeout=10) as listing:
            cards = json.load(listing)["algorithms"]
        assert sorted(c["ticker"] for c in cards) == ["AAPL", "NVDA", "TSLA"]

        start.send_signal(signal.SIGINT)  # what Ctrl-C delivers
        assert start.wait(timeout=90) == 0
        assert "AutoTrader stopped." in (checkout / "start.log").read_text()
        assert not [pid for pid in processes if alive(pid)]
    finally:
        if start.poll() is None:
            os.killpg(start.pid, signal.SIGKILL)
        log.close()


def test_the_exchange_service_serves_the_ports_and_keys_named_in_the_settings(tmp_path):
    rest_port, stream_port = free_port(), free_port()
    env = {**os.environ, "ALPACA_API_KEY": "svc-key", "ALPACA_SECRET": "svc-secret",
           "PAPER_EXCHANGE_STATE_DB": str(tmp_path / "exchange.db"),
           "ALPACA_TRADING_URL": f"http://127.0.0.1:{rest_port}", "ALPACA_STREAM_URL": f"ws://127.0.0.1:{stream_port}"}
    exchange = subprocess.Popen([str(REPO_ROOT / ".venv/bin/python"), "-m", "scripts.launcher", "--exchange-only"],
                                cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        clock = urllib.request.Request(f"http://127.0.0.1:{rest_port}/v2/clock",
                                       headers={"APCA-API-KEY-ID": "svc-key", "APCA-API-SECRET-KEY": "svc-secret"})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(clock, timeout=5) as answer:
                    assert set(json.load(answer)) >= {"timestamp", "is_open", "next_open", "next_close"}
                    break
            except urllib.error.URLError:
                assert exchange.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", stream_port), timeout=5):
            pass  # the stream port is the one the settings name
        wrong = urllib.request.Request(clock.full_url, headers={"APCA-API-KEY-ID": "demo-key",
                                                                "APCA-API-SECRET-KEY": "demo-secret"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(wrong, timeout=5)
        assert refused.value.code == 401
        assert "svc-secret" not in Path(f"/proc/{exchange.pid}/cmdline").read_text()
    finally:
        exchange.terminate()
        exchange.wait(timeout=30)


def test_ctrl_c_while_a_process_is_still_starting_stops_the_wait():
    """The launcher must not sit out a child's whole start-up timeout after Ctrl-C."""
    import sys
    from scripts.launcher import Child, Supervisor

    supervisor = Supervisor(os.environ)
    sleeper = Child("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"],
                    ready_url=f"http://127.0.0.1:{free_port()}/")  # never answers
    stop_requests = iter([False, False, True])
    supervisor.start(sleeper, timeout=120, should_stop=lambda: next(stop_requests, True))
    assert sleeper.process.poll() is None  # the wait ended because of the stop, not the child
    supervisor.stop_all(grace=10)
    assert sleeper.process.poll() is not None
