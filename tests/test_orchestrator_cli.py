"""``python orchestrator.py`` from the shell: --once, --once --dry-run, bad settings, one trader per database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
import re
import shutil
import time

import pytest

from database import db_manager, historical_pull
from shared.clock import stamp
from shared.config import AlpacaSettings
from orchestra.daemon import next_wake
from system_databse import system_db_manager as manager
from system_databse.create_system_db import create_system_db
from tests.fixtures.api import table_rows
from alpaca.trading.enums import OrderStatus

from tests.fixtures.exchange import market_order, start_paper_exchange, trading_client, wait_for_status
from tests.fixtures.orchestrator import orchestrator_env, run_orchestrator, write_test_algorithms

pytestmark = pytest.mark.slow(28)

OPEN_MINUTE = "2026-11-23T15:00:00Z"  # a Monday, 10:00 New York


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    exchange = start_paper_exchange(tmp_path_factory.mktemp("cli-exchange"), start=OPEN_MINUTE, speed=1)
    yield exchange
    exchange.stop()


@pytest.fixture
def desk(tmp_path, stocks_db_template, exchange):
    """Databases with bars up to now, four running cards and one stopped card holding shares."""
    system_db, stocks_db = tmp_path / "system.db", tmp_path / "stocks.db"
    create_system_db(system_db)
    shutil.copyfile(stocks_db_template, stocks_db)
    market = db_manager.get_connection(stocks_db)
    now = exchange.state()["clock"]["now"][:19] + "Z"
    for ticker in ("AAPL", "MSFT"):
        historical_pull.backfill(market, ticker, now=now, settings=AlpacaSettings.from_env(exchange.env))
    market.close()
    conn = manager.get_connection(system_db)
    cards = {name: manager.create_algorithm(ticker, algo, capital, conn=conn) for name, ticker, algo, capital in [
        ("hold", "AAPL", "buy_and_hold", 10000.0), ("greedy", "MSFT", "greedy", 1000.0),
        ("raiser", "MSFT", "raiser", 1000.0), ("missing", "MSFT", "no_such_algorithm", 1000.0),
        ("stopped", "AAPL", "buy_and_hold", 5000.0)]}
    manager.record_buy(cards["stopped"], 3, 250.0, conn=conn)
    manager.stop_algorithm(cards["stopped"], conn=conn)
    conn.close()
    env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db,
                           algorithms_dir=write_test_algorithms(tmp_path / "algorithms"), log_dir=tmp_path / "logs")
    return env, cards, system_db


def _account_holds(exchange, ticker: str, shares: int) -> None:
    """Buy or sell at the (shared) exchange until the account holds ``shares`` of ``ticker``."""
    held = exchange.state()["positions"].get(ticker, {"qty": 0})["qty"]
    if held != shares:
        client, coid = trading_client(exchange), f"set-{ticker}-{time.monotonic_ns()}"
        client.submit_order(market_order(ticker, abs(shares - held), "buy" if shares > held else "sell", coid))
        wait_for_status(client, coid, {OrderStatus.FILLED})


def _orders(exchange) -> list:
    return exchange.state()["orders"]


def test_dry_run_prints_each_cards_decision_and_why_without_orders_or_writes(desk, exchange):
    env, cards, system_db = desk
    before_orders, before_db = len(_orders(exchange)), table_rows(system_db)
    result = run_orchestrator(env, "--once", "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "dry run for the bar of 2026-11-23T1" in out and "no orders, no writes" in out
    assert f"card {cards['hold']} AAPL buy_and_hold: would BUY 7 shares - buy 7 shares at ~$" in out
    assert (f"card {cards['greedy']} MSFT greedy: REFUSED buy 1000000 - refused: buy 1000000 shares at ~$"
            in out)
    assert f"card {cards['raiser']} MSFT raiser: ERROR - on_data raised RuntimeError: boom from raiser" in out
    assert f"card {cards['missing']} MSFT no_such_algorithm: ERROR - unknown algorithm 'no_such_algorithm'" in out
    assert (f"card {cards['stopped']} AAPL (stopped): would SELL 3 shares - card stopped: closing its position"
            in out)
    assert "[1 bars, last 2026-11-23T1" in out
    assert len(_orders(exchange)) == before_orders
    assert table_rows(system_db) == before_db  # rows, not file bytes: WAL mode writes to system.db-wal
    conn = manager.get_connection(system_db)
    assert manager.get_orders(conn=conn) == [] and manager.get_heartbeat("orchestrator", conn=conn) is None


def test_once_runs_one_cycle_trades_and_liquidates(desk, exchange):
    env, cards, system_db = desk
    _account_holds(exchange, "AAPL", 3)  # what the stopped card's ledger says, or its ticker would be frozen
    result = run_orchestrator(env, "--once")
    assert result.returncode == 0, result.stderr
    assert "market open" in result.stdout
    # The stopped card's 3 shares cross to the buyer inside the ledger; the broker gets one order for 4.
    assert re.search(rf"card {cards['hold']} AAPL: buy 7 -> filled 3 at \$[\d.,]+ \(crossed\)", result.stdout)
    assert f"card {cards['hold']} AAPL: buy 4 -> filled 4 at $" in result.stdout
    assert re.search(rf"card {cards['stopped']} AAPL: sell 3 -> filled 3 at \$[\d.,]+ \(crossed\)", result.stdout)
    conn = manager.get_connection(system_db)
    [order] = manager.get_net_orders(conn=conn)
    sent = next(o for o in _orders(exchange) if o["client_order_id"] == order["client_order_id"])
    assert (sent["symbol"], sent["side"], sent["qty"], sent["status"]) == ("AAPL", "buy", "4", "filled")
    assert exchange.state()["positions"]["AAPL"]["qty"] == 7
    assert sorted((t["type"], t["shares"]) for t in manager.get_transactions(cards["hold"], conn=conn)) == [
        ("buy", 3), ("buy", 4)]
    assert manager.get_position_totals(cards["stopped"], conn=conn)["shares"] == 0
    coids = {o["client_order_id"] for o in _orders(exchange)}
    assert {e["client_order_id"] for e in manager.get_orders(conn=conn)} <= coids


def test_once_with_the_market_closed_places_no_orders(desk, exchange):
    env, cards, _ = desk
    exchange.set_clock("2026-11-26T16:00:00Z")  # Thanksgiving
    try:
        before = len(_orders(exchange))
        result = run_orchestrator(env, "--once")
    finally:
        exchange.set_clock(OPEN_MINUTE)
    assert result.returncode == 0, result.stderr
    assert "market closed" in result.stdout and "0 order(s)" in result.stdout
    assert len(_orders(exchange)) == before


@pytest.mark.parametrize("change, message", [
    ({"ALPACA_API_KEY": ""}, "ALPACA_API_KEY is not set"),
    ({"AUTOTRADER_CLOCK": "sundial"}, "AUTOTRADER_CLOCK must be 'system' or 'broker'"),
    ({"AUTOTRADER_ALGORITHM_TIMEOUT": "-1"}, "AUTOTRADER_ALGORITHM_TIMEOUT must be a positive number"),
    ({"AUTOTRADER_ALGORITHMS_DIR": "/nonexistent/algorithms"}, "AUTOTRADER_ALGORITHMS_DIR is not a directory"),
    ({"AUTOTRADER_SYSTEM_DB": "/nonexistent/system.db"}, "cannot open system.db"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be"),
])
def test_bad_settings_give_one_line_and_exit_2(desk, change, message):
    env, _, _ = desk
    result = run_orchestrator({**env, **change}, "--once")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last
    assert "Traceback" not in result.stderr


def test_dry_run_needs_once():
    result = run_orchestrator({}, "--dry-run")
    assert result.returncode == 2 and "--dry-run needs --once" in result.stderr


def test_a_second_trader_on_the_same_database_is_refused(desk, orchestrator_factory):
    env, _, _ = desk
    daemon = orchestrator_factory(env)
    daemon.wait_for(r"cycle \S+: \d+ card\(s\)")
    result = run_orchestrator(env, "--once")
    assert result.returncode == 2
    assert "another orchestrator is already trading on this system.db" in result.stderr
    assert daemon.terminate() == 0


def test_on_the_system_clock_the_daemon_follows_real_time(tmp_path, stocks_db_template, paper_exchange_factory,
                                                          orchestrator_factory):
    """A story about the computer's clock itself (AUTOTRADER_CLOCK=system), so it reads it: the
    exchange runs on real time too, and the story checks whichever case the hour gives (a sleep
    until the next open, or a cycle in market hours). It holds at any instant; the daemon has no
    way yet to be given a pinned system clock, so each run checks only one of the two cases."""
    exchange = paper_exchange_factory(start=None, speed=1)  # the exchange runs on real time too
    system_db, stocks_db = tmp_path / "system.db", tmp_path / "stocks.db"
    create_system_db(system_db)
    shutil.copyfile(stocks_db_template, stocks_db)
    env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db,
                           algorithms_dir=write_test_algorithms(tmp_path / "algorithms"), log_dir=tmp_path / "logs",
                           AUTOTRADER_CLOCK="system")
    now = datetime.now(timezone.utc)
    daemon = orchestrator_factory(env)
    daemon.wait_for(r"PAPER trading, iex feed, system clock")
    wake = next_wake(now)
    if wake - now > timedelta(minutes=2):  # off hours right now: it must sleep until the next open
        daemon.wait_for(rf"off hours: next cycle at {stamp(wake)} \(clock \d{{4}}-")
    else:
        daemon.wait_for(r"cycle \S+: 0 card\(s\)", 120)
    assert daemon.terminate() == 0
