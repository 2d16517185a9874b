"""Power cut of the whole box: exchange, orchestrator and API SIGKILLed together at a bad moment,
then started again. The wall shows the same numbers as before the cut, the ledger equals the
exchange per ticker, each fill is recorded once, the bars missed are backfilled and trading goes on.
"""
from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
import requests

from bench.soak import ROLES, Box, summarize
from database import market_calendar
from system_databse import system_db_manager as ledger
from tests.fixtures.orchestrator import wait_until

pytestmark = pytest.mark.slow(35)

START = "2026-11-23T14:33:00Z"  # Monday, just after the open
CARDS = (("AAPL", "churn"), ("MSFT", "churn"))


@pytest.fixture
def box(tmp_path, stocks_db_template):
    box = Box(tmp_path / "box", START, speed=60, cash="100000", stocks_template=stocks_db_template)
    box.create(CARDS, capital=10_000.0)
    box.start_all()
    yield box
    for role in ROLES:
        process = box.processes.get(role)
        if process and process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
    box.kill(*ROLES)


def journal(box):
    conn = ledger.get_connection(box.system_db, read_only=True)
    try:
        return ledger.get_orders(conn=conn)
    finally:
        conn.close()


def wall(box) -> list[tuple]:
    """What the wall shows per card: shares, trades, value and P&L."""
    cards = requests.get(f"{box.api_url}/api/algorithms", timeout=30).json()["algorithms"]
    return sorted((c["id"], c["current_shares"], c["trade_count"], c["current_value"], c["pnl"]) for c in cards)


def frozen_wall(box) -> list[tuple]:
    """The wall at the instant of the cut: the daemon (the only writer of fills and bars) is frozen
    first, so no bar lands between this read and the cut."""
    os.kill(box.processes["orchestrator"].pid, signal.SIGSTOP)
    return wall(box)


def cut_and_restart(box, down_seconds: float = 2.0) -> list[tuple]:
    """Power cut, a dark box for a moment, then exchange and API; returns the wall as it comes back."""
    box.kill(*ROLES)
    time.sleep(down_seconds)
    box.start_role("exchange")
    box.start_role("api")
    return wall(box)


def books_agree(box) -> dict:
    """Ledger vs exchange once the daemon has settled every order; bars complete up to now."""
    def settled():
        return not [e for e in journal(box) if e["status"] in ("pending", "submitted")]

    wait_until(settled, 60, "every journaled order to be settled")
    now = box.exchange_now()
    last = market_calendar.to_utc_string(now.replace(second=0, microsecond=0) - timedelta(minutes=2))
    summary = summarize(box, "2026-11-23T14:30:00Z", last)
    assert summary["lost_fills"] == 0, summary
    assert summary["duplicate_orders"] == 0, summary
    assert summary["fill_qty_mismatches"] == 0, summary
    assert summary["position_mismatches"] == [], summary
    assert summary["missing_bars"] == 0, summary["missing_bar_examples"]
    assert summary["tracebacks"] == 0
    return summary


def trading_resumes(box, orders_before: int) -> None:
    wait_until(lambda: len(box.state()["orders"]) > orders_before, 60, "a new order after the restart")


def test_cut_between_the_journal_intent_and_the_submit(box):
    wait_until(lambda: any(e["status"] == "filled" for e in journal(box)), 60, "a first fill")
    # every order call fails (the clock and positions still answer): the next intent goes nowhere
    box.control(fail_requests=10_000, fail_status=500, fail_path="/v2/orders")
    # from now on no order reaches the exchange: an intent still pending that the exchange does not
    # hold (journaled before or after this moment: a loaded daemon lags the exchange) never will
    def never_received():
        received = {o["client_order_id"] for o in box.state()["orders"]}
        return next((e for e in journal(box) if e["status"] == "pending" and e["client_order_id"] not in received),
                    None)

    pending = wait_until(never_received, 60, "an intent the broker never received")
    shown = frozen_wall(box)
    assert cut_and_restart(box) == shown
    orders_before = len(box.state()["orders"])
    assert pending["client_order_id"] not in {o["client_order_id"] for o in box.state()["orders"]}

    box.start_role("orchestrator")
    trading_resumes(box, orders_before)
    entry = next(e for e in journal(box) if e["client_order_id"] == pending["client_order_id"])
    assert entry["status"] == "failed" and entry["transaction_id"] is None
    books_agree(box)


def test_cut_between_the_fill_and_its_record(box):
    wait_until(lambda: any(e["status"] == "filled" for e in journal(box)), 60, "a first fill")
    box.control(fill_delay_seconds=3)
    submitted = wait_until(lambda: next((e for e in journal(box) if e["status"] == "submitted"), None), 60,
                           "an order in flight")
    os.kill(box.processes["orchestrator"].pid, signal.SIGSTOP)  # the daemon is frozen before it records
    coid = submitted["client_order_id"]
    filled = wait_until(lambda: next((o for o in box.state()["orders"] if o["client_order_id"] == coid
                                      and o["status"] == "filled"), None), 30, "the fill at the exchange")
    shown = wall(box)
    assert cut_and_restart(box) == shown, "the fill is not in the ledger yet: the wall must not show it"
    assert next(o for o in box.state()["orders"] if o["client_order_id"] == coid)["filled_qty"] == filled["filled_qty"]

    orders_before = len(box.state()["orders"])
    box.start_role("orchestrator")
    trading_resumes(box, orders_before)
    entry = wait_until(lambda: next((e for e in journal(box) if e["client_order_id"] == coid
                                     and e["status"] == "filled"), None), 60, "the fill recorded after the restart")
    assert entry["filled_shares"] == int(filled["filled_qty"])
    books_agree(box)


def test_cut_during_the_start_up_backfill_and_again_while_trading(box):
    wait_until(lambda: any(e["status"] == "filled" for e in journal(box)), 60, "a first fill")
    shown = frozen_wall(box)
    assert cut_and_restart(box, down_seconds=8.0) == shown  # eight simulated minutes go by unseen
    mark = len(box.output("orchestrator"))
    box.start_role("orchestrator")
    wait_until(lambda: "stream thread started" in box.output("orchestrator")[mark:], 60, "the daemon's start-up")
    time.sleep(0.3)  # its start-up backfill is running now
    box.kill(*ROLES)
    box.start_all()
    orders_before = len(box.state()["orders"])
    trading_resumes(box, orders_before)
    time.sleep(3.0)  # a few minutes of streamed bars after the restart
    books_agree(box)
