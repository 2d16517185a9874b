"""Exactly once across a crash: SIGKILL between submit and record of a netted order, the fill
lands while the daemon is down, and the restarted daemon records it once on every card it was
for, sends nothing twice and restores the stream's subscriptions."""
from __future__ import annotations

import re
import shutil
from datetime import datetime

import pytest

from database import db_manager
from system_databse import system_db_manager as ledger
from system_databse.create_system_db import create_system_db
from tests.fixtures.orchestrator import orchestrator_env, wait_until, write_test_algorithms

pytestmark = pytest.mark.slow(45)

FILL_DELAY = 6.0  # real seconds the exchange keeps each order open


def _order(exchange, coid):
    return next((o for o in exchange.state()["orders"] if o["client_order_id"] == coid), None)


def _filled_order(exchange, coid):
    order = _order(exchange, coid)
    return order if order and order["status"] == "filled" else None


def _journal(conn, card_id):
    return ledger.get_orders(card_id, conn=conn)


def _subscribed(exchange) -> set[str]:
    return {s for c in exchange.state()["stream"]["connections"] for s in c["subscriptions"]["bars"]}


@pytest.fixture
def crash_setup(tmp_path, stocks_db_template, paper_exchange_factory):
    system_db, stocks_db = tmp_path / "system.db", tmp_path / "stocks.db"
    create_system_db(system_db)
    shutil.copyfile(stocks_db_template, stocks_db)
    conn = ledger.get_connection(system_db)
    aapl = ledger.create_algorithm("AAPL", "buy_and_hold", 10000.0, conn=conn)
    msft = ledger.create_algorithm("MSFT", "buy_and_hold", 10000.0, conn=conn)
    aapl_too = ledger.create_algorithm("AAPL", "buy_and_hold", 10000.0, conn=conn)
    exchange = paper_exchange_factory(start="2026-11-23T14:35:00Z", speed=60)
    exchange.control(fill_delay_seconds=FILL_DELAY)
    env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db,
                           algorithms_dir=write_test_algorithms(tmp_path / "algorithms", ["buy_and_hold"]),
                           log_dir=tmp_path / "logs", AUTOTRADER_FILL_TIMEOUT="120")
    yield conn, exchange, env, aapl, msft, aapl_too
    conn.close()


def test_sigkill_between_submit_and_record_then_restart_records_each_fill_once(crash_setup, orchestrator_factory):
    conn, exchange, env, aapl, msft, aapl_too = crash_setup
    first = orchestrator_factory(env)

    # One AAPL order for both AAPL cards is journaled and submitted; the exchange holds it open: kill now.
    entry = wait_until(lambda: next((e for e in _journal(conn, aapl) if e["status"] == "submitted"), None),
                       60, "the AAPL order to be submitted")
    coid = entry["client_order_id"]
    assert (_order(exchange, coid)["status"], _order(exchange, coid)["qty"]) in (("new", "14"), ("accepted", "14"))
    first.process.kill()
    assert first.process.wait(timeout=30) == -9
    assert ledger.get_transactions(aapl, conn=conn) == [], "nothing may be recorded before the fill"
    assert ledger.get_transactions(aapl_too, conn=conn) == []

    # The fill happens while the daemon is down.
    filled = wait_until(lambda: _filled_order(exchange, coid), 60, "the fill at the exchange")
    exchange.control(fill_delay_seconds=0)

    second = orchestrator_factory(env)
    second.wait_for(rf"AAPL: reconciling {coid} \(filled at the broker\)")
    # Both tickers' orders were journaled before either was sent: the MSFT one is settled too
    # (filled, or marked never received if the kill came before it left).
    second.wait_for(r"start-up: reconciled 2 order\(s\) left open by the previous run")
    wait_until(lambda: ledger.get_transactions(msft, conn=conn), 60, "the MSFT card to trade after the restart")
    wait_until(lambda: _subscribed(exchange) == {"AAPL", "MSFT"}, 60, "subscriptions to be restored")
    second.wait_for(r"cycle \S+: 3 card\(s\), 0 trade\(s\)", 60)  # a later cycle: every card just holds
    assert second.terminate() == 0

    for card in (aapl, aapl_too):
        card_tx = ledger.get_transactions(card, conn=conn)
        assert [(t["type"], t["shares"]) for t in card_tx] == [("buy", 7)]
        assert card_tx[0]["price"] == pytest.approx(float(filled["filled_avg_price"]))
        assert [(e["client_order_id"], e["status"], e["transaction_id"]) for e in _journal(conn, card)] == [
            (coid, "filled", card_tx[0]["id"])]
    orders = exchange.state()["orders"]
    assert [o["client_order_id"] for o in orders].count(coid) == 1, "the order was sent twice"
    assert sorted(o["symbol"] for o in orders) == ["AAPL", "MSFT"]
    positions = {s: p["qty"] for s, p in exchange.state()["positions"].items()}
    assert positions == {"AAPL": 14, "MSFT": 7}
    history = exchange.state()["stream"]["history"]
    subscribers = {h["connection"] for h in history if h["action"] == "subscribe"}
    assert len(subscribers) == 2, "the restarted daemon must open its own stream connection and subscribe again"
    assert re.search(rf"card {aapl} AAPL: bought 7 shares at \$", second.output())
    assert _gaps(env, "AAPL") == [], "the minutes missed while the daemon was down must be backfilled"


def _gaps(env, ticker):
    market = db_manager.get_connection(env["AUTOTRADER_STOCKS_DB"])
    try:
        last = db_manager.get_last_timestamp(market, ticker)
        return db_manager.find_gaps(market, ticker, "2026-11-23T14:30:00Z", last)
    finally:
        market.close()


def _minutes_after(env, ticker, since: str) -> int:
    """How many minutes the newest stored bar of ``ticker`` is past ``since``."""
    market = db_manager.get_connection(env["AUTOTRADER_STOCKS_DB"])
    try:
        newest = db_manager.get_last_timestamp(market, ticker)
    finally:
        market.close()
    moment = lambda text: datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    return int((moment(newest) - moment(since)).total_seconds() // 60)


def test_a_stream_reconnect_backfills_the_missed_bars_before_the_next_cycle(tmp_path, stocks_db_template,
                                                                             paper_exchange_factory,
                                                                             orchestrator_factory):
    system_db, stocks_db = tmp_path / "system.db", tmp_path / "stocks.db"
    create_system_db(system_db)
    shutil.copyfile(stocks_db_template, stocks_db)
    conn = ledger.get_connection(system_db)
    ledger.create_algorithm("AAPL", "buy_and_hold", 10000.0, conn=conn)
    exchange = paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=300)  # a 1 s reconnect misses bars
    env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db,
                           algorithms_dir=write_test_algorithms(tmp_path / "algorithms", ["buy_and_hold"]),
                           log_dir=tmp_path / "logs")
    daemon = orchestrator_factory(env)
    daemon.wait_for(r"cycle \S+: 1 card\(s\)")
    # The feed takes a second (5 minutes here) to take the new connection's subscription: the
    # backfill must cover them too.
    exchange.control(stream_subscribe_delay_seconds=1, drop_streams=True)
    reconnected = daemon.wait_for(r"stream reconnected: backfilling AAPL")
    healed = daemon.wait_for(r"backfilled (\d+) bar\(s\) of AAPL", after=reconnected.end())
    assert int(healed.group(1)) >= 1
    healed_through = daemon.wait_for(r"missing minutes filled \(\S+ to (\S+)\)", after=reconnected.end()).group(1)
    wait_until(lambda: _minutes_after(env, "AAPL", healed_through) >= 5, 30, "the stream's bars again")
    daemon.wait_for(r"cycle \S+: 1 card\(s\)", after=healed.end())
    wait_until(lambda: ledger.get_heartbeat("orchestrator", conn=conn)["payload"]["stream"]["reconnects"] >= 1,
               30, "the heartbeat to count the reconnect")
    assert daemon.terminate() == 0
    assert _gaps(env, "AAPL") == []
    conn.close()


def test_sigterm_during_a_cycle_lets_it_record_the_fill_before_exiting(crash_setup, orchestrator_factory):
    conn, exchange, env, aapl, _msft, _aapl_too = crash_setup
    daemon = orchestrator_factory(env)
    wait_until(lambda: any(e["status"] == "submitted" for e in _journal(conn, aapl)), 60, "the AAPL order")
    daemon.process.terminate()  # SIGTERM while the cycle waits for the exchange to fill
    assert daemon.process.wait(timeout=60) == 0
    out = daemon.output()
    assert out.index("SIGTERM received: finishing the current cycle") < out.index(f"card {aapl} AAPL: bought 7 shares")
    assert [(e["status"], e["filled_shares"]) for e in _journal(conn, aapl)] == [("filled", 7)]
    assert _order(exchange, _journal(conn, aapl)[0]["client_order_id"])["qty"] == "14"
    assert [(t["type"], t["shares"]) for t in ledger.get_transactions(aapl, conn=conn)] == [("buy", 7)]


def test_a_restart_within_the_same_minute_does_not_decide_that_bar_again(tmp_path, stocks_db_template,
                                                                          paper_exchange_factory,
                                                                          orchestrator_factory):
    """systemd restarts a crashed daemon within seconds: the bar it already acted on stays done."""
    system_db, stocks_db = tmp_path / "system.db", tmp_path / "stocks.db"
    create_system_db(system_db)
    shutil.copyfile(stocks_db_template, stocks_db)
    conn = ledger.get_connection(system_db)
    card = ledger.create_algorithm("AAPL", "blocks", 10000.0, conn=conn)  # buys 5 per minute early in a block
    exchange = paper_exchange_factory(start="2026-11-23T14:42:30Z", speed=0)  # time stands still
    env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db,
                           algorithms_dir=write_test_algorithms(tmp_path / "algorithms", ["blocks"]),
                           log_dir=tmp_path / "logs", AUTOTRADER_BAR_WAIT="1")

    first = orchestrator_factory(env)
    first.wait_for(r"cycle 2026-11-23T14:41:00Z: 1 card\(s\), 1 trade\(s\)")
    assert first.terminate() == 0

    second = orchestrator_factory(env)
    wait_until(lambda: (ledger.get_heartbeat("orchestrator", conn=conn) or {}).get("payload", {}).get("pid")
               == second.pid, 60, "the restarted daemon's heartbeat")
    exchange.set_clock("2026-11-23T14:43:30Z")
    second.wait_for(r"cycle 2026-11-23T14:42:00Z: 1 card\(s\), 1 trade\(s\)")
    second.kill()  # the cycle line comes after its fills are recorded; how it stops is not the point here

    assert "cycle 2026-11-23T14:41:00Z" not in second.output()
    assert [(t["type"], t["shares"]) for t in reversed(ledger.get_transactions(card, conn=conn))] == [
        ("buy", 5), ("buy", 5)]
    assert len(exchange.state()["orders"]) == 2
    conn.close()


def test_the_session_is_completed_after_its_last_minute_closes(tmp_path, stocks_db_template, paper_exchange_factory,
                                                               orchestrator_factory):
    """The stream goes mute for the last minutes of the early close (13:00 New York): the daemon
    fetches them when the session is over, the last one (12:59) included, which closes with it."""
    system_db, stocks_db = tmp_path / "system.db", tmp_path / "stocks.db"
    create_system_db(system_db)
    shutil.copyfile(stocks_db_template, stocks_db)
    conn = ledger.get_connection(system_db)
    ledger.create_algorithm("AAPL", "buy_and_hold", 10000.0, conn=conn)
    exchange = paper_exchange_factory(start="2026-11-27T17:55:00Z", speed=60)
    env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db,
                           algorithms_dir=write_test_algorithms(tmp_path / "algorithms", ["buy_and_hold"]),
                           log_dir=tmp_path / "logs")
    daemon = orchestrator_factory(env)
    first = daemon.wait_for(r"cycle \S+: 1 card\(s\)")
    exchange.control(silence_streams_seconds=12)  # the rest of the session, and a few minutes more
    daemon.wait_for(r"off hours: next cycle at 2026-11-30T14:31:00Z", after=first.end())
    wait_until(lambda: ledger.get_heartbeat("orchestrator", conn=conn)["payload"].get("session_completed_at"), 30,
               "the heartbeat written once the session was completed")
    assert daemon.terminate() == 0
    assert _gaps(env, "AAPL") == []
    assert _minutes_after(env, "AAPL", "2026-11-27T17:59:00Z") == 0  # the session's last minute is in
    conn.close()
