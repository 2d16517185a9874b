"""The daemon never trades on top of a write that never finished."""
from __future__ import annotations

from datetime import datetime, timezone

from shared.config import Settings
from orchestra.daemon import Orchestrator


MINUTE = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)


class StillClock:
    kind = "broker"

    def now(self):
        return MINUTE

    peek = now


class Tripwire:
    def run(self, *args, **kwargs):
        raise AssertionError("a cycle ran inside an unfinished transaction")


def test_the_daemon_refuses_a_cycle_inside_an_unfinished_transaction(system_db, stocks_db):
    settings = Settings.from_env({"ALPACA_API_KEY": "key", "ALPACA_SECRET": "secret",
                                  "AUTOTRADER_SYSTEM_DB": str(system_db), "AUTOTRADER_STOCKS_DB": str(stocks_db)})
    daemon = Orchestrator(settings, broker=object(), clock=StillClock())
    try:
        daemon.cycle = Tripwire()
        daemon.ledger_conn.execute("BEGIN IMMEDIATE")  # what a COMMIT that failed without a rollback would leave
        assert daemon._run_cycle(MINUTE) is None
        assert not daemon.ledger_conn.in_transaction
        assert daemon.errors.last_hour() == 1
    finally:
        daemon.updates.stop()
        daemon.ledger_conn.close()
        daemon.market_conn.close()
