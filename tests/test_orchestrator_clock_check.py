"""A clock nobody can trust: while the system clock and the broker's disagree by more than a few
seconds the daemon sends no orders (and says so on /api/health, hence the wall); when they agree
again, trading resumes by itself."""
from __future__ import annotations

import shutil
import threading
from datetime import datetime, timedelta, timezone

import pytest

from shared.clock import BrokerClock
from orchestra.clock_check import ClockCheck
from shared.config import Settings
from orchestra.daemon import Orchestrator
from system_databse import system_db_manager as ledger
from system_databse.create_system_db import create_system_db
from tests.fixtures.orchestrator import wait_until, write_test_algorithms

pytestmark = pytest.mark.slow(30)


class ShiftedSystemClock:
    """The machine's clock of a box that booted with a wrong time: the broker's time plus ``offset``.

    It follows the exchange's simulated time so a test needs no real market hours.
    """

    kind = "system"

    def __init__(self, fetch, offset: timedelta):
        self.inner = BrokerClock(fetch, poll_interval=0.2)
        self.offset = offset

    def now(self) -> datetime:
        return self.inner.now() + self.offset

    def peek(self) -> datetime:
        return self.inner.peek() + self.offset

    def rate(self) -> float:
        return self.inner.rate()

    def nap(self, target, reading=None, longest=None) -> float:
        return self.inner.nap(target - self.offset, None if reading is None else reading - self.offset, longest)

    def sleep_until(self, target, stop, tick=None) -> bool:
        return self.inner.sleep_until(target - self.offset, stop, tick)


def test_orders_wait_while_the_system_clock_is_two_minutes_off_the_brokers(tmp_path, stocks_db_template,
                                                                           paper_exchange_factory):
    exchange = paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=10)
    system_db, stocks_db = tmp_path / "system.db", tmp_path / "stocks.db"
    create_system_db(system_db)
    shutil.copyfile(stocks_db_template, stocks_db)
    conn = ledger.get_connection(system_db)
    card = ledger.create_algorithm("AAPL", "buy_and_hold", 10000.0, conn=conn)
    algorithms = write_test_algorithms(tmp_path / "algorithms", ["buy_and_hold"])
    settings = Settings.from_env({**exchange.env, "AUTOTRADER_CLOCK": "system", "AUTOTRADER_BAR_WAIT": "1",
                                  "AUTOTRADER_SYSTEM_DB": str(system_db), "AUTOTRADER_STOCKS_DB": str(stocks_db),
                                  "AUTOTRADER_ALGORITHMS_DIR": str(algorithms)})
    from orchestra.alpaca_wrapper import AlpacaWrapper

    broker = AlpacaWrapper(settings.broker)
    clock = ShiftedSystemClock(lambda: broker.get_clock().timestamp, offset=timedelta(minutes=2))
    daemon = Orchestrator(settings, broker=broker, clock=clock)
    daemon.clock_check._recheck = 0.0  # measure every cycle (a minute here is 6 real seconds)
    runner = threading.Thread(target=daemon.run_forever, daemon=True)
    runner.start()
    try:
        def refusing():
            beat = ledger.get_heartbeat("orchestrator", conn=conn)
            check = (beat or {}).get("payload", {}).get("clock_check") or {}
            return beat if check.get("in_sync") is False and beat["payload"]["last_cycle_at"] else None

        beat = wait_until(refusing, 60, "a cycle that refuses to trade")
        # about two minutes: at 10x a loaded machine reads the broker a few hundred ms late (a few seconds here)
        assert beat["payload"]["clock_check"]["skew_seconds"] == pytest.approx(120, abs=10)
        wait_until(lambda: ledger.get_heartbeat("orchestrator", conn=conn)["payload"]["last_cycle_at"]
                   != beat["payload"]["last_cycle_at"], 60, "another refused cycle")
        assert exchange.state()["orders"] == [], "no order may leave on a clock nobody can trust"
        assert ledger.get_transactions(card, conn=conn) == []
        assert ledger.get_heartbeat("orchestrator", conn=conn)["payload"]["stream"]["subscriptions"] == ["AAPL"]

        clock.offset = timedelta(0)  # NTP answered
        wait_until(lambda: ledger.get_transactions(card, conn=conn), 60, "trading to resume")
        # the heartbeat is written when that cycle ends, after its fills are recorded
        check = wait_until(lambda: (lambda c: c if c.get("in_sync") else None)(
            ledger.get_heartbeat("orchestrator", conn=conn)["payload"]["clock_check"]), 30, "a heartbeat in sync")
        assert abs(check["skew_seconds"]) < 5
        assert [o["symbol"] for o in exchange.state()["orders"]] == ["AAPL"]
    finally:
        daemon.request_stop("test over")
        runner.join(60)
        conn.close()


def test_health_shows_the_refusal_the_daemon_reported(api_factory, system_db):
    conn = ledger.get_connection(system_db)
    ledger.write_heartbeat("orchestrator", {"last_cycle_at": "2026-11-23T15:00:00Z", "clock_check": {
        "in_sync": False, "skew_seconds": 120.2, "tolerance_seconds": 5.0, "checked_at": "2026-11-23T15:00:01Z"}},
        conn=conn)
    conn.close()
    client = api_factory(broker=None).test_client()
    body = client.get("/api/health").get_json()
    assert body["clock_check"] == {"in_sync": False, "skew_seconds": 120.2, "tolerance_seconds": 5.0,
                                   "checked_at": "2026-11-23T15:00:01Z"}


def test_a_broker_that_cannot_be_asked_keeps_the_last_verdict():
    readings = iter([datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc), RuntimeError("down")])

    def broker_now():
        value = next(readings)
        if isinstance(value, Exception):
            raise value
        return value

    system = lambda: datetime(2026, 11, 23, 15, 2, tzinfo=timezone.utc)
    check = ClockCheck(broker_now, system_now=system, recheck=0.0)
    assert "120.0s ahead of the broker's" in check.refusal()
    assert "120.0s ahead" in check.refusal()  # the broker is down: still no trading
