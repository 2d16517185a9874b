"""A broker that holds fewer shares than the cards: the ticker is frozen, the wall says so in
red, nothing is sold, and the owner's reconcile command lets the card trade again."""
from __future__ import annotations

import pytest
from alpaca.trading.enums import OrderStatus

from orchestra.alpaca_wrapper import AlpacaWrapper
from orchestra.card_runner import CardRunner
from shared.config import AlpacaSettings
from shared.clock import make_clock
from orchestra.cycle import Cycle
from orchestra.heartbeat import ErrorLog
from orchestra.trader import Trader
from scripts import reconcile
from system_databse import system_db_manager as manager
from tests.fixtures.browser import dashboard_url, wait_until
from tests.fixtures.exchange import market_order, trading_client, wait_for_status
from tests.fixtures.orchestrator import write_test_algorithms

pytestmark = pytest.mark.browser

BROKER_BANNER = "#broker-banner"


@pytest.fixture
def desk(market_hours, system_db, stocks_db, tmp_path, monkeypatch):
    """An NVDA card that holds 5 shares in the ledger while the account holds only 2."""
    day, api = market_hours
    for key, value in api.exchange.env.items():
        monkeypatch.setenv(key, value)
    card = day.create_card("NVDA", 10_000, "trim")  # sells 4 a minute while it holds shares
    day.buy(card, 5, 100.0, minute=0)
    day.add_bars("NVDA", [100.0] * 30)
    client = trading_client(api.exchange)
    client.submit_order(market_order("NVDA", 2, "buy", "held-by-the-account"))
    wait_for_status(client, "held-by-the-account", {OrderStatus.FILLED})
    ledger, market = manager.get_connection(system_db), _market(stocks_db)
    broker = AlpacaWrapper(AlpacaSettings.from_env(api.exchange.env))
    runner = CardRunner(market, ledger, directory=write_test_algorithms(tmp_path / "algorithms", ["trim"]))
    cycle = Cycle(ledger_conn=ledger, market_conn=market, broker=broker, trader=Trader(broker, ledger, now=make_clock("broker", lambda: broker.get_clock().timestamp).peek),
                  errors=ErrorLog(), runner=runner)
    yield day, api, card, cycle
    ledger.close()
    market.close()


def _market(stocks_db):
    from database import db_manager

    return db_manager.get_connection(stocks_db)


def _run_minute(day, api, cycle, index):
    """One orchestrator minute, and its heartbeat as the daemon writes it."""
    report = cycle.run(day.minute(index))
    manager.write_heartbeat("orchestrator", {"position_mismatches": report.position_mismatches},
                            now=api.clock.stamp())
    return report


def _orders(api) -> list:
    return [o for o in api.exchange.state()["orders"] if o["client_order_id"] != "held-by-the-account"]


def test_a_ticker_the_broker_disagrees_on_is_frozen_shown_in_red_and_sells_nothing(desk, page_factory):
    day, api, card, cycle = desk
    report = _run_minute(day, api, cycle, 29)
    assert report.position_mismatches == [{"ticker": "NVDA", "broker": 2, "cards": 5}]
    assert report.decisions[0].decision.action == "sell" and report.trades == []
    assert _orders(api) == [], "a frozen ticker sends nothing"
    assert manager.get_position_totals(card)["shares"] == 5

    page = page_factory(1280, 720)
    page.goto(dashboard_url(api, poll_open_ms=500))
    page.wait_for_selector(f"{BROKER_BANNER}:has-text('NVDA')")
    assert page.inner_text(BROKER_BANNER).startswith("NVDA: the broker holds 2 shares, the cards 5.")
    color = page.eval_on_selector(BROKER_BANNER, "el => getComputedStyle(el).color")
    assert color == "rgb(255, 77, 77)", "the broker banner is red"
    frozen = page.locator(f'.card[data-card-id="{card}"] .card-frozen')
    assert frozen.is_visible() and frozen.inner_text() == "frozen: broker disagrees"

    # The owner checks the account and accepts its count on this card: the wall clears, trading resumes.
    assert reconcile.main(["--ticker", "NVDA", "--card", str(card), "--accept-broker"]) == 0
    assert manager.get_position_totals(card)["shares"] == 2
    report = _run_minute(day, api, cycle, 30)
    assert report.position_mismatches == []
    assert [(o["symbol"], o["side"], o["qty"]) for o in _orders(api)] == [("NVDA", "sell", "2")]
    page.wait_for_selector(BROKER_BANNER, state="hidden")
    assert not page.locator(".card-frozen").first.is_visible()


def test_reconcile_lists_the_disagreement_and_refuses_a_card_of_another_ticker(desk, capsys):
    day, api, card, cycle = desk
    assert reconcile.main([]) == 0
    out = capsys.readouterr().out
    assert "NVDA: broker holds 2 shares, the cards 5" in out and f"card {card} " in out
    other = day.create_card("AAPL", 1_000)
    assert reconcile.main(["--ticker", "NVDA", "--card", str(other), "--accept-broker"]) == 2
    assert capsys.readouterr().err.strip() == f"reconcile: card {other} is not a NVDA card"
    assert reconcile.main(["--accept-broker"]) == 2
