"""SIGTERM always ends the daemon within its unit's stop timeout, wherever it is caught:
mid-cycle waiting for a fill, mid-backfill, while its stream reconnects, on a broker clock that
stands still after a jump, and with the broker unreachable."""
from __future__ import annotations

import os
import re
import shutil
import signal
import time

import pytest

from shared.config import REPO_ROOT
from system_databse import system_db_manager as ledger
from system_databse.create_system_db import create_system_db
from tests.fixtures.orchestrator import orchestrator_env, wait_until, write_test_algorithms

pytestmark = pytest.mark.slow(90)

UNIT = (REPO_ROOT / "scripts" / "systemd" / "autotrader-orchestrator.service").read_text()
STOP_TIMEOUT = float(re.search(r"^TimeoutStopSec=(\d+)", UNIT, re.M).group(1))


@pytest.fixture
def desk(tmp_path, stocks_db_template, paper_exchange_factory):
    """(start exchange, start daemon) for one scenario: three buy-and-hold cards."""
    system_db, stocks_db = tmp_path / "system.db", tmp_path / "stocks.db"
    create_system_db(system_db)
    shutil.copyfile(stocks_db_template, stocks_db)
    conn = ledger.get_connection(system_db)
    for ticker in ("AAPL", "MSFT", "NVDA"):
        ledger.create_algorithm(ticker, "buy_and_hold", 10000.0, conn=conn)
    algorithms = write_test_algorithms(tmp_path / "algorithms", ["buy_and_hold"])

    def env_for(exchange, **extra):
        return orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db, algorithms_dir=algorithms,
                                log_dir=tmp_path / "logs", **extra)

    yield conn, env_for, tmp_path / "logs"
    conn.close()


def stops_cleanly(daemon, logs) -> float:
    """SIGTERM; the daemon must exit 0 within the unit's stop timeout with its stream stopped."""
    started = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    try:
        code = daemon.process.wait(timeout=STOP_TIMEOUT)
    except Exception:
        daemon.process.send_signal(signal.SIGUSR1)  # show where it hangs
        time.sleep(1)
        raise AssertionError("no exit within the stop timeout:\n" + daemon.output()[-6000:])
    took = time.monotonic() - started
    assert code == 0, daemon.output()[-4000:]
    assert "orchestrator stopped" in daemon.output()
    stream_log = (logs / "stream.log").read_text() if (logs / "stream.log").exists() else ""
    assert "stream thread did not stop" not in daemon.output() + stream_log
    return took


def test_sigterm_mid_cycle_while_an_order_waits_for_its_fill(desk, paper_exchange_factory, orchestrator_factory):
    conn, env_for, logs = desk
    exchange = paper_exchange_factory(start="2026-11-23T14:35:00Z", speed=60)
    exchange.control(fill_delay_seconds=8)
    daemon = orchestrator_factory(env_for(exchange, AUTOTRADER_FILL_TIMEOUT="30"))
    wait_until(lambda: any(e["status"] == "submitted" for e in ledger.get_orders(conn=conn)), 60, "an order in flight")
    stops_cleanly(daemon, logs)
    output = daemon.output()
    assert output.index("SIGTERM received") < output.index(": bought 7 shares"), "the fill came before the SIGTERM"
    assert {e["status"] for e in ledger.get_orders(conn=conn)} == {"filled"}, "the cycle recorded its fills"


def test_sigterm_mid_backfill_with_the_data_api_failing(desk, paper_exchange_factory, orchestrator_factory):
    conn, env_for, logs = desk
    exchange = paper_exchange_factory(start="2026-11-25T18:00:00Z", speed=60)  # days of bars to backfill
    exchange.control(fail_requests=10_000, fail_status=504)  # the SDK retries each 504 three times, 3 s apart
    daemon = orchestrator_factory(env_for(exchange))
    daemon.wait_for(r"stream thread started")  # the start-up backfill of three tickers begins now
    time.sleep(1.0)
    stops_cleanly(daemon, logs)


def test_sigterm_while_the_stream_reconnects(desk, paper_exchange_factory, orchestrator_factory):
    conn, env_for, logs = desk
    exchange = paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=60)
    daemon = orchestrator_factory(env_for(exchange))
    daemon.wait_for(r"cycle \S+: 3 card\(s\)")
    exchange.control(drop_streams=True)
    wait_until(lambda: "stream reconnecting" in (logs / "stream.log").read_text(), 30, "the stream to back off")
    stops_cleanly(daemon, logs)


def test_sigterm_on_a_broker_clock_frozen_right_after_a_jump(desk, paper_exchange_factory, orchestrator_factory):
    conn, env_for, logs = desk
    exchange = paper_exchange_factory(start="2026-11-23T14:42:30Z", speed=0)
    daemon = orchestrator_factory(env_for(exchange))
    daemon.wait_for(r"cycle 2026-11-23T14:41:00Z: 3 card\(s\)")
    # a jump to just after a minute closed, then time stands still: that minute's bar never streams
    exchange.set_clock("2026-11-23T14:50:03Z", speed=0)
    time.sleep(3.0)
    stops_cleanly(daemon, logs)


def test_sigterm_with_the_broker_unreachable(desk, paper_exchange_factory, orchestrator_factory):
    conn, env_for, logs = desk
    exchange = paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=60)
    daemon = orchestrator_factory(env_for(exchange))
    daemon.wait_for(r"cycle \S+: 3 card\(s\)")
    os.kill(exchange.process.pid, signal.SIGSTOP)  # connections open but nothing answers
    try:
        time.sleep(3.0)
        stops_cleanly(daemon, logs)
    finally:
        os.kill(exchange.process.pid, signal.SIGCONT)
