"""Splits and a dividend through the paper exchange and a real orchestrator: cards, bars, broker agree.

Monday 2026-11-23 shortly before the close, three cards buy once: 119 NVDA (the algorithm sells
everything if the price falls below 60% of its recent high, so a split seen as a price move
would make it sell), 10 F and 100 KO. The exchange has a 10:1 NVDA split, a 1:3 F reverse split
and a $0.25 KO dividend on Tuesday. The clock jumps to Tuesday's open; the daemon reads the
actions before its first decision, then is restarted and reads them again.
"""
from __future__ import annotations

import shutil

import pytest
import requests

from api.history import card_history
from database import db_manager
from system_databse import card_calculations as calc
from system_databse import system_db_manager as ledger
from system_databse.create_system_db import create_system_db
from tests.fixtures.exchange import start_paper_exchange
from tests.fixtures.orchestrator import orchestrator_env, start_orchestrator, wait_until

pytestmark = pytest.mark.slow(32)

ALGORITHMS = {
    "crash_seller": '''"""Buys 119 shares once; sells them all if the price falls below 60% of its recent high."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 120}

    def on_data(self, bars, transaction_history):
        held = sum(t["shares"] if t["type"] == "buy" else -t["shares"] for t in transaction_history)
        if not transaction_history:
            return ("buy", 119)
        if held > 0 and bars.close[-1] < 0.6 * max(bars.close):
            return ("sell", held)
        return ("hold", 0)
''',
    "buy_ten": '''"""Buys 10 shares once."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        return ("hold", 0) if transaction_history else ("buy", 10)
''',
    "buy_hundred": '''"""Buys 100 shares once."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        return ("hold", 0) if transaction_history else ("buy", 100)
''',
}
ACTIONS = [{"symbol": "NVDA", "type": "forward_split", "ex_date": "2026-11-24", "new_rate": 10, "old_rate": 1},
           {"symbol": "F", "type": "reverse_split", "ex_date": "2026-11-24", "new_rate": 1, "old_rate": 3},
           {"symbol": "KO", "type": "cash_dividend", "ex_date": "2026-11-24", "rate": 0.25}]


def _views(conn, cards, prices):
    return {name: calc.get_algorithm_with_calculations(card, prices[name], conn=conn) for name, card in cards.items()}


def _available(conn, exchange) -> float:
    return calc.available_cash(float(exchange.state()["cash"]), conn=conn)["available_cash"]


def _closes(market, ticker, start, end) -> dict:
    frame = db_manager.get_bars_between(market, ticker, start, end)
    return dict(zip(frame.index, frame.close))


def _mismatches(conn):
    return (ledger.get_heartbeat("orchestrator", conn=conn) or {}).get("payload", {}).get("position_mismatches")


def _heartbeat_payload(conn) -> dict:
    beat = ledger.get_heartbeat("orchestrator", conn=conn)
    return beat["payload"] if beat else {}


@pytest.fixture(scope="module")
def split_day(tmp_path_factory, stocks_db_template):
    """One simulated Monday-to-Tuesday run shared by the tests below (the restart test runs last)."""
    tmp_path = tmp_path_factory.mktemp("split-day")
    started = []

    def orchestrator_factory(env):
        started.append(start_orchestrator(env, tmp_path / "orchestrator"))
        return started[-1]

    system_db, stocks_db = tmp_path / "system.db", tmp_path / "stocks.db"
    create_system_db(system_db)
    shutil.copyfile(stocks_db_template, stocks_db)
    conn = ledger.get_connection(system_db)
    market = db_manager.get_connection(stocks_db, read_only=True)
    cards = {"nvda": ledger.create_algorithm("NVDA", "crash_seller", 20_000, conn=conn),
             "f": ledger.create_algorithm("F", "buy_ten", 1_000, conn=conn),
             "ko": ledger.create_algorithm("KO", "buy_hundred", 10_000, conn=conn)}
    conn.execute("UPDATE algorithm_instances SET created_at = '2026-11-23T20:30:00Z'")  # on the simulated Monday
    exchange = start_paper_exchange(tmp_path / "exchange", start="2026-11-23T20:40:00Z", speed=0, cash=200_000)
    try:  # a failed start still stops what it started
        for action in ACTIONS:
            requests.post(f"{exchange.base_url}/_sim/corporate_actions", json=action, timeout=30).raise_for_status()
        algorithms = tmp_path / "algorithms"
        algorithms.mkdir()
        for name, source in ALGORITHMS.items():
            (algorithms / f"{name}.py").write_text(source)
        env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db, algorithms_dir=algorithms,
                               log_dir=tmp_path / "logs", AUTOTRADER_BAR_WAIT="2")
        daemon = orchestrator_factory(env)
        wait_until(lambda: ledger.get_heartbeat("orchestrator", conn=conn), 90, "the daemon's first heartbeat")
        exchange.set_clock(speed=20)
        wait_until(lambda: all(ledger.get_position_totals(c, conn=conn)["shares"] for c in cards.values()), 120,
                   "every card to buy on Monday")
        exchange.set_clock("2026-11-23T21:05:00Z", speed=0)  # after the close
        # The daemon completes Monday's bars after the close, as it does hours before the night
        # turns into the ex-date; the jump below must not cut into that backfill.
        wait_until(lambda: (_heartbeat_payload(conn).get("session_completed_at") or "") >= "2026-11-23T21:00:00Z",
                   60, "Monday's session to be completed")
        before = {"views": _views(conn, cards, {"nvda": 90.00, "f": 9.00, "ko": 66.00}), "available": _available(conn, exchange),
                  "monday_bars": _closes(market, "NVDA", "2026-11-23T14:30:00Z", "2026-11-23T21:00:00Z")}

        exchange.set_clock("2026-11-24T14:29:30Z", speed=20)  # Tuesday: the ex-date
        daemon.wait_for(r"cycle 2026-11-24T14:34:00Z", 120)
        exchange.set_clock(speed=0)
        yield {"conn": conn, "market": market, "cards": cards, "exchange": exchange, "daemon": daemon, "env": env,
               "before": before, "factory": orchestrator_factory}
    finally:
        for process in started:
            process.kill()
        exchange.stop()
        market.close()
        conn.close()


def test_a_10_for_1_split_keeps_the_cards_pnl_and_the_broker_in_agreement(split_day):
    conn, exchange, nvda = split_day["conn"], split_day["exchange"], split_day["cards"]["nvda"]
    before = split_day["before"]["views"]["nvda"]
    after = calc.get_algorithm_with_calculations(nvda, 9.00, conn=conn)  # the same market value, a tenth the price

    assert after["current_shares"] == 1190 and exchange.state()["positions"]["NVDA"]["qty"] == 1190
    assert (after["current_value"], after["pnl"]) == (before["current_value"], before["pnl"])
    assert [(t["type"], t["shares"]) for t in ledger.get_transactions(nvda, conn=conn)] == [("buy", 119)]  # no panic sale
    assert _mismatches(conn) == []


def test_the_stored_bars_and_the_cards_chart_show_no_cliff(split_day):
    conn, market, nvda = split_day["conn"], split_day["market"], split_day["cards"]["nvda"]
    monday = db_manager.get_bars_between(market, "NVDA", "2026-11-23T20:00:00Z", "2026-11-23T21:00:00Z").close
    tuesday = db_manager.get_bars_between(market, "NVDA", "2026-11-24T14:30:00Z", "2026-11-24T14:35:00Z").close
    assert 0.9 < tuesday.iloc[0] / monday.iloc[-1] < 1.1   # Monday's bars were divided by ten, once
    raw = split_day["before"]["monday_bars"]
    adjusted = _closes(market, "NVDA", "2026-11-23T14:30:00Z", "2026-11-23T21:00:00Z")
    assert raw and {t: pytest.approx(c / 10, abs=1e-9) for t, c in raw.items()} == {t: adjusted[t] for t in raw}

    algo = ledger.get_algorithm(nvda, conn=conn)
    history = card_history(conn, market, algo, "all", 1000)
    held = [p for p in history["points"] if p["shares"]]
    values = [p["value"] for p in held]
    steps = [abs(b - a) / a for a, b in zip(values, values[1:])]
    # minutes held on both sides of the split (how many on Monday depends on when the card bought)
    assert {p["timestamp"][:10] for p in held} == {"2026-11-23", "2026-11-24"} and max(steps) < 0.05
    assert [m["label"] for m in history["corporate_actions"]] == ["10:1 split"]


def test_a_1_for_3_reverse_split_of_10_shares_matches_the_brokers_fractional_position(split_day):
    conn, exchange, card = split_day["conn"], split_day["exchange"], split_day["cards"]["f"]
    totals = ledger.get_position_totals(card, conn=conn)
    assert (totals["shares"], totals["fractional_shares"]) == (3, 0.333333333)
    assert exchange.state()["positions"]["F"]["qty"] == "3.333333333"
    view = calc.get_algorithm_with_calculations(card, 27.00, conn=conn)  # 9.00 x 3
    assert view["pnl"] == split_day["before"]["views"]["f"]["pnl"]
    assert _mismatches(conn) == []


def test_a_25_cent_dividend_on_100_shares_is_that_cards_money_not_new_cards(split_day):
    conn, exchange, card = split_day["conn"], split_day["exchange"], split_day["cards"]["ko"]
    after = calc.get_algorithm_with_calculations(card, 66.00, conn=conn)
    assert after["current_value"] - split_day["before"]["views"]["ko"]["current_value"] == 25.00
    assert after["dividends"] == 25.00
    assert _available(conn, exchange) == split_day["before"]["available"]


def test_a_restart_reads_the_actions_again_and_changes_nothing(split_day):
    conn, market, exchange = split_day["conn"], split_day["market"], split_day["exchange"]
    effects = [ledger.get_corporate_action_effects(c, conn=conn) for c in split_day["cards"].values()]
    closes = _closes(market, "NVDA", "2026-11-17T14:30:00Z", "2026-11-24T14:34:00Z")
    assert split_day["daemon"].terminate() == 0

    second = split_day["factory"](split_day["env"])
    exchange.set_clock(speed=20)
    second.wait_for(r"cycle 2026-11-24T14:3[6-9]:00Z", 120)
    exchange.set_clock(speed=0)

    assert [ledger.get_corporate_action_effects(c, conn=conn) for c in split_day["cards"].values()] == effects
    now = _closes(market, "NVDA", "2026-11-17T14:30:00Z", "2026-11-24T14:34:00Z")
    assert len(closes) > 1000 and {t: now[t] for t in closes} == closes  # not scaled a second time
    assert len(db_manager.get_bar_adjustments(market, "NVDA")) == 1
    assert ledger.get_position_totals(split_day["cards"]["nvda"], conn=conn)["shares"] == 1190
    assert _mismatches(conn) == []
