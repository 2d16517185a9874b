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

from shared.config import REPO_ROOT
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.slow(45)

# The demo's exchange starts "now" when the market is open, else just before the next open. The
# tests pin that moment so that they do not depend on when they run (at 15:59 New York the demo
# would close at once): a Monday morning, a few minutes before the demo's TSLA card first buys
# (at 15:08 with the default seed), so the story does not wait out 40 minutes of a quiet market.
DEMO_START = "2026-11-23T15:02:00Z"
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
    env = {**os.environ, "API_PORT": str(api_port), "PAPER_EXCHANGE_START": DEMO_START,
           "ALPACA_TRADING_URL": f"http://127.0.0.1:{rest_port}", "ALPACA_DATA_URL": f"http://127.0.0.1:{rest_port}",
           "ALPACA_STREAM_URL": f"ws://127.0.0.1:{stream_port}", "ALPACA_TRADE_STREAM_URL": f"ws://127.0.0.1:{stream_port}"}
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
        while not (checkout / "logs" / "orchestrator.log").exists():  # the daemon may still be importing
            assert time.monotonic() < deadline, "the orchestrator never wrote its log"
            time.sleep(0.2)
        owner_only = {".env": 0o600, "system_databse/system.db": 0o600, "system_databse/system.db-wal": 0o600,
                      "system_databse/system.db-shm": 0o600, "system_databse/paper_exchange.db": 0o600,
                      "logs": 0o700, "logs/api.log": 0o600}
        assert {name: stat.S_IMODE((checkout / name).stat().st_mode) for name in owner_only} == owner_only
        assert {stat.S_IMODE(log.stat().st_mode) for log in (checkout / "logs").iterdir()} == {0o600}
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


def _run_start(checkout: Path, env: dict, log_name: str) -> subprocess.Popen:
    log = (checkout / log_name).open("w")
    process = subprocess.Popen([str(checkout / "scripts" / "start")], cwd=checkout, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 180
    while "Dashboard:" not in (checkout / log_name).read_text():
        assert process.poll() is None, (checkout / log_name).read_text()
        assert time.monotonic() < deadline, "start did not finish in time"
        time.sleep(0.5)
    return process


def _ledger_shares(checkout: Path) -> dict[str, int]:
    import sqlite3

    conn = sqlite3.connect(f"file:{checkout / 'system_databse' / 'system.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT a.ticker, SUM(CASE t.type WHEN 'buy' THEN t.shares ELSE -t.shares END)"
                            " FROM transactions t JOIN algorithm_instances a ON a.id = t.algorithm_id"
                            " GROUP BY a.ticker").fetchall()
    finally:
        conn.close()
    return {ticker: shares for ticker, shares in rows if shares}


def _heartbeat(checkout: Path) -> dict:
    import sqlite3

    conn = sqlite3.connect(f"file:{checkout / 'system_databse' / 'system.db'}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT payload FROM heartbeat WHERE component = 'orchestrator'").fetchone()
    finally:
        conn.close()
    return json.loads(row[0]) if row else {}


def test_a_restarted_demo_keeps_its_account_and_goes_on_trading(checkout):
    """./scripts/start, let the demo cards trade, Ctrl-C, ./scripts/start again: same account."""
    api_port, rest_port, stream_port = free_port(), free_port(), free_port()
    env = {**os.environ, "API_PORT": str(api_port), "PAPER_EXCHANGE_START": DEMO_START,
           "ALPACA_TRADING_URL": f"http://127.0.0.1:{rest_port}", "ALPACA_DATA_URL": f"http://127.0.0.1:{rest_port}",
           "ALPACA_STREAM_URL": f"ws://127.0.0.1:{stream_port}"}
    for key in ("AUTOTRADER_SYSTEM_DB", "AUTOTRADER_STOCKS_DB", "AUTOTRADER_LOG_DIR", "PAPER_EXCHANGE_STATE_DB"):
        env.pop(key, None)
    first = _run_start(checkout, env, "first.log")
    try:
        deadline = time.monotonic() + 240
        while not _ledger_shares(checkout):
            assert time.monotonic() < deadline, "the demo cards did not trade"
            time.sleep(1)
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=90) == 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    held, acted = _ledger_shares(checkout), _heartbeat(checkout)["last_bar_minute"]
    assert (checkout / "system_databse" / "paper_exchange.db").exists()

    second = _run_start(checkout, env, "second.log")
    try:
        sim = f"http://127.0.0.1:{rest_port}/_sim/state"
        with urllib.request.urlopen(sim, timeout=30) as answer:
            positions = {s: p["qty"] for s, p in json.load(answer)["positions"].items()}
        assert positions == held, "the exchange must come back with the shares the cards hold"
        deadline = time.monotonic() + 180
        while not ((beat := _heartbeat(checkout)).get("last_bar_minute") or "") > acted:
            assert time.monotonic() < deadline, "the restarted demo did not go on trading"
            time.sleep(1)
        assert beat["position_mismatches"] == []
        second.send_signal(signal.SIGINT)
        assert second.wait(timeout=90) == 0
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
    logs = "".join(p.read_text(errors="replace") for p in (checkout / "logs").glob("*.log*"))
    assert "insufficient qty" not in logs and "POSITION MISMATCH" not in logs
