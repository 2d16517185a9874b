"""Polling that follows the market, and the banner for stale data or an unreachable server."""
from __future__ import annotations

from datetime import timedelta
from typing import Callable
from urllib.parse import urlparse

import pytest

from tests.fixtures.browser import dashboard_url, stamp, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow(45)]

BANNER = "#banner"


def poll_ms(page) -> int:
    return int(page.evaluate("document.body.dataset.pollMs || 0"))


def listing_requests(page) -> Callable[[], int]:
    """How many GET /api/algorithms the page has sent since this call, as the browser sent them
    (Playwright's network events: the page's own performance timeline is faked with its clock)."""
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url)
            if urlparse(request.url).path == "/api/algorithms" else None)

    def count() -> int:
        page.evaluate("0")  # a round trip delivers the events so far
        return len(sent)
    return count


def switch_market(api, moment) -> None:
    """Move the exchange's clock, then the API past its minute-long market-status cache."""
    api.exchange.set_clock(stamp(moment))
    api.clock.advance(60)


@pytest.fixture
def polling_page(market_hours, page_factory):
    day, api = market_hours
    day.create_card("NVDA", 1_000)
    day.add_bars("NVDA", [100.0] * 30)
    page = page_factory(1280, 720)
    return day, api, page


def test_polling_interval_follows_the_market_flag(polling_page):
    day, api, page = polling_page
    sent = listing_requests(page)
    page.goto(dashboard_url(api, poll_open_ms=500, poll_closed_ms=2000))
    page.wait_for_selector("#status-market:has-text('MARKET OPEN')")
    wait_until(lambda: poll_ms(page) == 500, what="the open-market interval")
    wait_until(lambda: sent() >= 4, what="several quick polls")

    switch_market(api, day.close + timedelta(minutes=30))
    page.wait_for_selector("#status-market:has-text('MARKET CLOSED')")
    wait_until(lambda: poll_ms(page) == 2000, what="the closed-market interval")
    assert page.inner_text("#status-session").startswith("opens ")
    assert page.is_hidden(BANNER)              # old bars are no news while the market is closed
    closed_from = sent()
    wait_until(lambda: sent() > closed_from, timeout=90, what="a closed-market poll")
    assert poll_ms(page) == 2000               # still scheduled at the closed interval, never sooner

    switch_market(api, day.minute(31))
    page.wait_for_selector("#status-market:has-text('MARKET OPEN')", timeout=60_000)
    wait_until(lambda: poll_ms(page) == 500, what="back to the open-market interval")
    assert page.inner_text("#status-session").startswith("closes ")


def test_a_closed_market_is_checked_again_just_after_the_open(next_session, paper_exchange_factory,
                                                              live_api_factory, page_factory):
    # The exchange stands 20 s before the open; the page's timers move only when the test says so.
    exchange = paper_exchange_factory(start=stamp(next_session.open - timedelta(seconds=20)), speed=0)
    api = live_api_factory(exchange, HEARTBEAT_STALE_SECONDS=3600)
    page = page_factory(1280, 720)
    page.clock.install()
    page.goto(dashboard_url(api, poll_open_ms=500, poll_closed_ms=600_000))   # hourly-ish when closed
    page.wait_for_selector("#status-market:has-text('MARKET CLOSED')")
    wait_until(lambda: poll_ms(page) > 0, what="the first schedule")
    # woken for the open (time to the open + 5 s), not the 10-minute closed interval
    delay = poll_ms(page)
    assert delay == 25_000
    polls = int(page.evaluate("document.body.dataset.pollCount"))

    switch_market(api, next_session.open + timedelta(seconds=5))
    page.clock.fast_forward(delay - 1_000)
    assert int(page.evaluate("document.body.dataset.pollCount")) == polls, "no poll before the wake-up time"
    page.clock.fast_forward(1_000)
    page.wait_for_selector("#status-market:has-text('MARKET OPEN')")
    wait_until(lambda: poll_ms(page) == 500, what="the open-market interval")


def test_stale_prices_raise_a_banner_that_clears_when_bars_arrive(polling_page):
    day, api, page = polling_page
    page.goto(dashboard_url(api, poll_open_ms=500))
    page.wait_for_selector("#status-market:has-text('MARKET OPEN')")
    wait_until(lambda: page.locator(".card").count() == 1, what="the card")
    assert page.is_hidden(BANNER)

    switch_market(api, day.minute(45))         # 15 minutes later, no new NVDA bar
    page.wait_for_selector(f"{BANNER}:has-text('No new NVDA price')")
    last_bar_time = page.locator(".chart-price-at").inner_text().removeprefix("price ")
    assert page.inner_text(BANNER) == f"No new NVDA price since {last_bar_time}."

    day.add_bars("NVDA", [101.0] * 15, first_minute=30)
    page.wait_for_selector(BANNER, state="hidden")
    assert page.locator('[data-field="price"]').inner_text() == "$101.00"


def test_a_silent_orchestrator_raises_a_banner_that_clears_when_it_reports(polling_page):
    day, api, page = polling_page
    api.app.config["HEARTBEAT_STALE_SECONDS"] = 180
    day.heartbeat(api, seconds_ago=600)
    page.goto(dashboard_url(api, poll_open_ms=500))
    page.wait_for_selector(f"{BANNER}:has-text('trading engine')")
    assert page.inner_text(BANNER).startswith("The trading engine (orchestrator) has not reported for 10 min")
    day.heartbeat(api)
    page.wait_for_selector(BANNER, state="hidden")


def test_an_unreachable_server_raises_a_banner_that_clears_when_it_returns(polling_page):
    day, api, page = polling_page
    page.console_watch.expect_failed("/api/", "net::")
    page.goto(dashboard_url(api, poll_open_ms=500))
    wait_until(lambda: page.locator(".card").count() == 1, what="the card")
    assert page.is_hidden(BANNER)

    api.stop()
    page.wait_for_selector(f"{BANNER}:has-text('Cannot reach the AutoTrader server.')")
    assert "showing the last data received, retrying" in page.inner_text(BANNER)
    assert page.locator(".card").count() == 1  # the last data stays on screen

    api.start()
    page.wait_for_selector(BANNER, state="hidden", timeout=60_000)
    assert page.locator(".card").count() == 1


def test_a_broker_outage_shows_cash_unavailable_and_keeps_the_cards(polling_page):
    day, api, page = polling_page
    page.console_watch.expect_failed("/api/account/cash", 503)
    page.goto(dashboard_url(api, poll_open_ms=500))
    page.wait_for_selector("#status-cash:has-text('CASH $')")
    api.exchange.stop()
    page.wait_for_selector("#status-cash:has-text('CASH unavailable')", timeout=90_000)
    assert "broker" in page.get_attribute("#status-cash", "title")
    assert page.locator('.card [data-field="price"]').inner_text() == "$100.00"
    assert page.is_hidden(BANNER) or "Cannot reach" not in page.inner_text(BANNER)
