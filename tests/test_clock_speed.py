"""A faster simulated clock changes nothing but the speed: the waits for a minute's bars are on it.

The paper exchange runs 20 simulated minutes a minute (a minute every 3 s) and one real
orchestrator follows it (``AUTOTRADER_CLOCK=broker``) with cards on a liquid ticker (AAPL) and a
thin one (KO, no bar in about 4 minutes of 10, as on the free IEX feed). For 20 simulated minutes
from the open, every cycle should find AAPL's bar, which the stream sent at the minute's close,
and ask the data API for nothing it already has: when the stream's batch waited one *real*
second for KO's missing bars (20 simulated seconds, past the daemon's 10-second wait), the cycle
ran without AAPL's bar, saw "no bar for any ticker" and backfilled both tickers over REST, about
one minute in three (10 REST asks per ticker in 30 minutes, 7 in 20). The counts come from the exchange's
own log of market-data requests and the daemon's log, not from durations.
"""
from __future__ import annotations

import re

import pytest

from system_databse import system_db_manager as ledger
from tests.fixtures.orchestrator import orchestrator_env, wait_until, write_test_algorithms

pytestmark = pytest.mark.slow(85)

START = "2026-11-23T14:25:00Z"        # Monday, five simulated minutes before the open (15 s of real time)
SESSION_START = "2026-11-23T14:30:00Z"
PAST_TWENTY_MINUTES = "2026-11-23T14:50:10Z"  # the cycles of 14:30 to 14:49 have run
SPEED = 20


def _sim_now(exchange) -> str:
    return exchange.state()["clock"]["now"][:19] + "Z"


def _asks_for_session_minutes(requests: list[dict], symbol: str) -> list[dict]:
    """Market-data requests for ``symbol``'s bars of this session (the start-up backfill asks only for
    earlier sessions)."""
    return [r for r in requests
            if symbol in (r["args"].get("symbols", "").split(",") + [r["path"].split("/")[3]])
            and r["args"].get("end", "") >= SESSION_START[:16]]


@pytest.fixture(scope="module")
def twenty_minutes(tmp_path_factory, stocks_db_template):
    import shutil

    from system_databse.create_system_db import create_system_db
    from tests.fixtures.exchange import start_paper_exchange
    from tests.fixtures.orchestrator import start_orchestrator

    tmp = tmp_path_factory.mktemp("clock-speed")
    system_db, stocks_db = tmp / "system.db", tmp / "stocks.db"
    create_system_db(system_db)
    shutil.copyfile(stocks_db_template, stocks_db)
    conn = ledger.get_connection(system_db)
    for ticker in ("AAPL", "KO"):
        ledger.create_algorithm(ticker, "holder", 1_000.0, created_at=START, conn=conn)
    conn.close()
    exchange = start_paper_exchange(tmp / "exchange", start=START, speed=SPEED, thin_symbols="KO:0.4:0.1")
    env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db, log_dir=tmp / "logs",
                           algorithms_dir=write_test_algorithms(tmp / "algorithms", ["holder"]))
    proc = start_orchestrator(env, tmp)
    try:
        proc.wait_for(r"cycle 2026-11-23T14:30:00Z: 2 card", timeout=120)
        wait_until(lambda: _sim_now(exchange) >= PAST_TWENTY_MINUTES, 240, "20 simulated minutes to pass")
        requests = exchange.state()["data_requests"]
        proc.terminate()
        return {"requests": requests, "log": proc.output()}
    finally:
        proc.kill()
        exchange.stop()


def _cycles(log: str) -> list[str]:
    return sorted(set(re.findall(r"cycle (2026-11-23T14:[345]\d:00Z): 2 card", log)))


def test_every_minute_of_the_twenty_is_decided(twenty_minutes):
    assert len(_cycles(twenty_minutes["log"])) >= 18  # a loaded machine may skip one or two, never the story


def test_the_liquid_tickers_bars_come_from_the_stream_not_from_backfills(twenty_minutes):
    silent = re.findall(r"no bar for any ticker at (\S+Z)", twenty_minutes["log"])
    asks = _asks_for_session_minutes(twenty_minutes["requests"], "AAPL")
    # one run measured 0 and 0 (11 and 11 when the batch waited in real time); a loaded machine may
    # still deliver a bar or two later than the cycle's 10-second (0.5 real-second) wait
    assert len(silent) <= 3, silent
    assert len(asks) <= 3, asks


def test_the_thin_tickers_empty_minutes_are_not_asked_for_minute_after_minute(twenty_minutes):
    asks = _asks_for_session_minutes(twenty_minutes["requests"], "KO")
    assert len(asks) <= 4, asks              # 2 in a 30-minute run (after start-up and the stream's connect); 11 before
    waited = re.findall(r"bar (\S+) not yet in for KO;", twenty_minutes["log"])
    assert waited                            # KO had empty minutes: the cycles waited for them, then went on
