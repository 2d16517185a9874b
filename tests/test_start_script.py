"""./scripts/start on a copy of the checkout: everything comes up, the dashboard answers, and
Ctrl-C leaves no process behind."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from orchestra.config import REPO_ROOT

SKIP = shutil.ignore_patterns(".venv", ".git", "*.db", "*.db-wal", "*.db-shm", "logs", ".env", "__pycache__",
                              ".pytest_cache", ".hypothesis", "test-artifacts")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
