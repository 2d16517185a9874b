"""Issue #24 through the real orchestrator process, the real API and the paper exchange: the
daemon has no code of its own for deposits and withdrawals, it decides on the card's position,
and the position follows the money the owner moved.

A KO card given $100 asks every minute to buy 5 shares and is refused (it cannot afford them);
the owner deposits through the API and the next minute it buys them. An F card given $10,000 that
spends whatever it holds is added while the market stands still and $9,000 is withdrawn before
its first minute: it buys what $1,000 affords, not $10,000. And the one seam a withdrawal has with
a minute already deciding: the buy it no longer covers is not sent.
"""
from __future__ import annotations

import math

import pytest

from system_databse import system_db_manager as ledger
from system_databse import system_db_manager as ledger_db
from tests.fixtures.api import auth, get_token
from tests.fixtures.orchestrator import orchestrator_env, wait_until
from tests.test_money_path import MONDAY, Desk, _minute, stamp

pytestmark = pytest.mark.slow(30)

ALGORITHMS = {
    "buy_five_once": '''"""Buys 5 shares once; until it can, asks every minute."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        return ("hold", 0) if transaction_history else ("buy", 5)
''',
    "spend_it_all": '''"""Buys as many whole shares as its uninvested cash affords, once."""
from algorithms._framework import AlgorithmBase


class Algorithm(AlgorithmBase):
    def on_data(self, bars, transaction_history):
        if transaction_history:
            return ("hold", 0)
        close = float(bars.close[-1])
        cash = self.uninvested_cash(transaction_history)
        return ("buy", self.affordable_shares(cash, close), f"capital {self.initial_capital:.2f}, cash {cash:.2f}")
''',
}


def _decisions(conn, card, kind):
    return ledger.get_decisions(card, kind=kind, limit=50, conn=conn)


@pytest.fixture
def wall(tmp_path, system_db, stocks_db, api_factory, paper_exchange_factory):
    exchange = paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=30)
    algorithms = tmp_path / "algorithms"
    algorithms.mkdir()
    for name, source in ALGORITHMS.items():
        (algorithms / f"{name}.py").write_text(source)
    env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db, algorithms_dir=algorithms,
                           log_dir=tmp_path / "logs")
    app = api_factory(exchange, ALGORITHMS_DIR=algorithms)
    conn = ledger.get_connection(system_db)
    yield exchange, env, app.test_client(), conn
    conn.close()


def test_a_deposit_lets_a_card_buy_and_a_withdrawal_shrinks_its_first_buy(wall, orchestrator_factory):
    exchange, env, client, conn = wall
    ko = ledger.create_algorithm("KO", "buy_five_once", 100, conn=conn)
    daemon = orchestrator_factory(env)

    # $100 cannot buy 5 KO: refused, minute after minute, by the same check as every decision.
    refused = wait_until(lambda: _decisions(conn, ko, "refused"), 90, "the KO card's refusal")[0]
    assert (refused["requested_action"], refused["requested_shares"]) == ("buy", 5)
    assert "more than the card's uninvested cash $100.00" in refused["reason"]

    exchange.set_clock(speed=0)  # the market stands still while the owner moves money
    price = refused["price"]
    deposit = math.ceil(5 * price * 1.2) - 100  # enough for 5 shares with room for the price to move
    answer = client.post(f"/api/algorithms/{ko}/deposit", json={"amount": deposit}, headers=auth(get_token(client, "deposit")))
    assert answer.status_code == 201, answer.get_json()

    # Meanwhile a new F card with $10,000, of which $9,000 goes back before its first minute.
    created = client.post("/api/algorithms", json={"ticker": "F", "algorithm_type": "spend_it_all",
                                                   "initial_capital": 10_000}, headers=auth(get_token(client, "add")))
    assert created.status_code == 201, created.get_json()
    f = created.get_json()["id"]
    withdrawn = client.post(f"/api/algorithms/{f}/withdraw", json={"amount": 9_000},
                            headers=auth(get_token(client, "withdraw")))
    assert withdrawn.status_code == 201, withdrawn.get_json()
    exchange.set_clock(speed=30)

    wait_until(lambda: ledger.get_transactions(ko, conn=conn), 90, "the KO card to buy after the deposit")
    [ko_buy] = ledger.get_transactions(ko, conn=conn)
    assert (ko_buy["type"], ko_buy["shares"]) == ("buy", 5)
    daemon.wait_for(rf"card {ko} KO: bought 5 shares at \$", 60)
    ko_card = client.get(f"/api/algorithms/{ko}").get_json()
    assert ko_card["capital"] == 100 + deposit
    assert ko_card["uninvested_cash"] == round(100 + deposit - 5 * ko_buy["price"], 2)

    wait_until(lambda: ledger.get_transactions(f, conn=conn), 90, "the F card's first buy")
    [f_buy] = ledger.get_transactions(f, conn=conn)
    buys = lambda: [d for d in _decisions(conn, f, "decision") if d["action"] == "buy"]  # noqa: E731
    [decided] = wait_until(buys, 30, "the minute's decisions logged")  # written as the cycle ends, after its fills
    assert "capital 1000.00, cash 1000.00" in decided["reason"]
    assert f_buy["shares"] == decided["shares"] == math.floor(1_000 / decided["price"] + 1e-9)
    assert f_buy["shares"] < math.floor(10_000 / decided["price"]), "it spent what was left, not what it was given"
    assert exchange.state()["positions"]["F"]["qty"] == f_buy["shares"]
    assert daemon.terminate() == 0


def test_a_withdrawal_while_the_minute_decides_stops_the_buy_it_no_longer_covers(paper_exchange_factory, ledger,
                                                                                 market, tmp_path):
    desk = Desk(paper_exchange_factory(start=stamp(MONDAY), speed=0), ledger, market, tmp_path)
    spender, other = desk.card("MSFT", "buy_nine"), desk.card("KO", "buy_three")
    for ticker in ("MSFT", "KO"):
        desk.backfill(ticker)
    decide_all = desk.runner.decide_all

    def decide_then_withdraw(cards, at):
        made = decide_all(cards, at)
        ledger_db.withdraw(spender, 9_990, conn=ledger)  # the wall's WITHDRAW lands while the cycle decides
        return made

    desk.runner.decide_all = decide_then_withdraw
    report = desk.cycle.run(_minute(desk))

    assert sorted((t.card_id, t.status, t.filled_shares) for t in report.trades) == [
        (spender, "failed", 0), (other, "filled", 3)]
    assert "no longer covers the buy" in report.card_errors[spender]
    assert "(withdrawn since it decided)" in report.card_errors[spender]
    assert ledger_db.get_transactions(spender, conn=ledger) == []
    assert (desk.broker_holds("MSFT"), desk.broker_holds("KO")) == (0, 3)
