"""PAUSE on the wall, through the real API and orchestrator on the paper exchange.

A card that trades every minute and a stopped card still holding shares: PAUSE stops every order
(the decisions are still made and logged as held back), the stopped card's liquidation waits, the
pause survives a SIGKILL and a restart with 0 orders sent, and RESUME trades again. The daily
order limit pauses trading by itself and notifies; a RESUME from the shell grants the day's
allowance again. The exchange's own order book is the witness.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from system_databse import system_db_manager as ledger
from tests.fixtures.api import auth, get_token
from tests.fixtures.exchange import market_order, trading_client, wait_for_status
from tests.fixtures.orchestrator import REPO_ROOT, orchestrator_env, wait_until, write_test_algorithms
from tests.test_notifications import Receiver
from alpaca.trading.enums import OrderStatus

pytestmark = pytest.mark.slow(35)

START = "2026-11-23T14:40:00Z"  # Monday 09:40 New York; the exchange's clock, never the computer's
CHURN = '''"""Test trader: buys 1 share when it holds none, else sells what it holds: an order every minute."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        held = sum(t["shares"] if t["type"] == "buy" else -t["shares"] for t in transaction_history)
        return ("sell", held, "churn: sell") if held else ("buy", 1, "churn: buy")
'''


def algorithms(tmp_path):
    folder = write_test_algorithms(tmp_path / "algorithms", ["buy_and_hold"])
    (folder / "churn.py").write_text(CHURN)
    return folder


def orders(exchange) -> list:
    return exchange.state()["orders"]


def settled(exchange) -> int:
    """Orders at the exchange, once none is still open (an order handed over before the pause may still fill)."""
    return wait_until(lambda: (lambda found: len(found) if all(o["status"] in ("filled", "canceled", "rejected")
                                                              for o in found) else None)(orders(exchange)),
                      30, "the exchange's open orders to settle")


def held_back(conn, card_id) -> list:
    return [d for d in ledger.get_decisions(card_id, kind="decision", conn=conn) if d["held_back"]]


@pytest.fixture
def desk(system_db, stocks_db, paper_exchange_factory, api_factory, tmp_path):
    """A churning AAPL card, the real API and the orchestrator's environment over one paper exchange."""
    exchange = paper_exchange_factory(start=START, speed=60)
    folder = algorithms(tmp_path)
    conn = ledger.get_connection(system_db)
    churn = ledger.create_algorithm("AAPL", "churn", 10_000.0, conn=conn)
    api = api_factory(exchange, ALGORITHMS_DIR=folder).test_client()
    env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db, algorithms_dir=folder,
                           log_dir=tmp_path / "logs")
    yield exchange, api, env, conn, churn
    conn.close()


def stopped_card_holding_3_msft(exchange, conn) -> int:
    """A stopped card still holding 3 MSFT shares, which the account holds too (so MSFT is not frozen)."""
    client = trading_client(exchange)
    client.submit_order(market_order("MSFT", 3, "buy", "setup-msft"))
    wait_for_status(client, "setup-msft", {OrderStatus.FILLED})
    stopped = ledger.create_algorithm("MSFT", "buy_and_hold", 10_000.0, conn=conn)
    ledger.record_buy(stopped, 3, 400.0, conn=conn)
    ledger.stop_algorithm(stopped, conn=conn)
    return stopped


def test_pause_holds_every_order_across_a_sigkill_and_restart_and_resume_trades_again(desk, orchestrator_factory):
    exchange, api, env, conn, churn = desk
    stopped = stopped_card_holding_3_msft(exchange, conn)
    paused = api.post("/api/pause", json={}, headers=auth(get_token(api, "pause")))
    assert paused.status_code == 200 and paused.get_json()["paused"] is True
    assert paused.get_json()["paused_by"] == "owner" and paused.get_json()["already_paused"] is False

    first = orchestrator_factory(env)
    wait_until(lambda: len(held_back(conn, churn)) >= 2, 60, "two decisions held back by the pause")
    assert orders(exchange) == [o for o in orders(exchange) if o["client_order_id"] == "setup-msft"]
    first.process.kill()
    assert first.process.wait(timeout=30) == -9

    second = orchestrator_factory(env)
    restarted = len(held_back(conn, churn))
    wait_until(lambda: len(held_back(conn, churn)) >= restarted + 4, 60, "four more minutes held back after the restart")
    assert [o["client_order_id"] for o in orders(exchange)] == ["setup-msft"], "an order was sent while paused"
    assert ledger.get_position_totals(stopped, conn=conn)["shares"] == 3, "the stopped card's liquidation must wait"
    assert ledger.get_transactions(churn, conn=conn) == []
    newest = held_back(conn, churn)[0]
    assert (newest["action"], newest["shares"]) == ("buy", 1) and newest["reason"].startswith("churn: buy; buy 1 shares")
    assert newest["held_back"] == f"trading paused by the owner since {paused.get_json()['since']}"
    detail = api.get(f"/api/algorithms/{churn}/detail").get_json()
    assert detail["last_decision"]["held_back"] == newest["held_back"]
    assert api.get("/api/algorithms").get_json()["pause"]["paused"] is True
    assert re.search(r"card \d+ AAPL: would buy 1 shares but trading paused by the owner", second.output())

    resumed = api.post("/api/resume", json={}, headers=auth(get_token(api, "resume")))
    assert resumed.status_code == 200 and resumed.get_json()["paused"] is False
    wait_until(lambda: ledger.get_transactions(churn, conn=conn), 60, "the churning card to trade after RESUME")
    wait_until(lambda: ledger.get_position_totals(stopped, conn=conn)["shares"] == 0, 60,
               "the stopped card's shares to be sold after RESUME")
    assert second.terminate() == 0
    msft = [o for o in orders(exchange) if o["symbol"] == "MSFT" and o["client_order_id"] != "setup-msft"]
    assert [(o["side"], o["qty"], o["status"]) for o in msft] == [("sell", "3", "filled")]


def test_the_daily_order_limit_pauses_trading_and_notifies_and_resume_grants_it_again(desk, orchestrator_factory):
    exchange, api, env, conn, churn = desk
    receiver = Receiver()
    try:
        daemon = orchestrator_factory({**env, "AUTOTRADER_DAILY_ORDER_LIMIT": "3", "NOTIFY_URL": receiver.url})
        wait_until(lambda: ledger.get_pause(conn=conn)["paused"], 60, "the daily order limit to pause trading")
        pause = ledger.get_pause(conn=conn)
        assert pause["paused_by"] == "daily order limit"
        assert re.fullmatch(r"3 orders sent to the broker since 2026-11-23T14:30:00Z \(limit 3 a day\)", pause["reason"])
        sent = settled(exchange)
        assert sent == 3
        wait_until(lambda: any(b.startswith("Trading paused at ") for b in receiver.bodies()), 30, "the notification")
        [note] = [m for m in receiver.messages if m["title"] == "AutoTrader PAUSED: daily order limit"]
        assert "3 orders sent to the broker" in note["body"] and "RESUME" in note["body"]
        before = len(held_back(conn, churn))
        wait_until(lambda: len(held_back(conn, churn)) >= before + 3, 60, "three minutes held back by the limit")
        assert settled(exchange) == 3
        assert held_back(conn, churn)[0]["held_back"].startswith("trading paused by the daily order limit since")

        shell = subprocess.run([sys.executable, "-m", "scripts.pause", "off"], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=60)
        assert shell.returncode == 0, shell.stderr
        assert shell.stdout.strip().startswith("trading: not paused (resumed 2026-11-23T")
        wait_until(lambda: ledger.get_pause(conn=conn)["paused"], 60, "the daily order limit to pause trading again")
        assert settled(exchange) == 6, "the RESUME grants three more orders, no more"
        assert daemon.terminate() == 0
    finally:
        receiver.stop()
