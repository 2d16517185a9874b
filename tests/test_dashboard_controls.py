"""PAUSE, RESUME and a card's limits on the 800x480 wall, through the PIN pad and the real API.

The wall shows an unmistakable banner while trading is paused, a line on a card whose limit
tripped (which limit, when) and the trip in its detail view; RESUME CARD and CHANGE LIMITS each
ask for the PIN; a new card takes its limits from the add dialog. Screenshots go to
test-artifacts/screenshots/.
"""
from __future__ import annotations

import pytest

from system_databse import system_db_manager as ledger
from tests.fixtures.browser import dashboard_url, stamp, wait_until
from tests.test_dashboard_add_stop import card, enter_pin, open_add_form, type_on_screen
from tests.test_dashboard_layout import assert_fits

pytestmark = pytest.mark.browser


@pytest.fixture
def wall(market_hours):
    """Two running cards; the MSFT card's daily loss limit tripped at the session's 20th minute."""
    day, api = market_hours
    day.add_bars("NVDA", [120.0] * 30)
    day.add_bars("MSFT", [400.0 - i for i in range(30)])
    day.create_card("NVDA", 5_000)
    msft = day.create_card("MSFT", 5_000)
    day.buy(msft, 10, 400.0, minute=1)
    conn = ledger.get_connection(day.system_db)
    ledger.set_card_limits(msft, {"daily_loss_limit": 100, "max_trades_per_day": 20}, at=stamp(day.minute(0)), conn=conn)
    ledger.trip_card(msft, "daily_loss", "daily loss limit $100.00 reached: $190.00 lost today",
                     at=stamp(day.minute(20)), conn=conn)
    yield day, api, msft, conn
    conn.close()


def test_pause_banner_and_a_tripped_card_at_800x480(wall, page_factory, save_screenshot):
    day, api, msft, conn = wall
    page = page_factory(800, 480, has_touch=True)
    page.goto(dashboard_url(api, poll_open_ms=500))
    wait_until(lambda: page.locator(".card").count() == 2, what="two cards")

    tripped = card(page, "MSFT").locator(".card-tripped")
    tripped.wait_for(state="visible")
    minute_20 = page.evaluate(f"async () => (await import('/js/format.js')).formatDayTime(new Date('{stamp(day.minute(20))}'))")
    assert tripped.inner_text() == f"LIMIT: daily loss · {minute_20}"
    assert card(page, "NVDA").locator(".card-tripped").is_hidden()
    assert page.is_hidden("#pause-banner") and page.inner_text("#pause-button") == "PAUSE"
    save_screenshot(page, "800x480-card-limit-tripped")
    assert_fits(page)

    page.click("#pause-button")
    enter_pin(page)
    page.wait_for_selector("#pause-banner", state="visible")
    banner = page.inner_text("#pause-banner")
    assert banner.startswith("TRADING PAUSED by the owner since ") and "No card sends orders" in banner
    assert page.inner_text("#pause-button") == "RESUME"
    assert page.evaluate("getComputedStyle(document.querySelector('#pause-banner')).backgroundImage").startswith(
        "repeating-linear-gradient")                                 # striped red: unlike the amber stale banner
    assert ledger.get_pause(conn=conn)["paused_by"] == "owner"
    save_screenshot(page, "800x480-paused")
    assert_fits(page)

    card(page, "MSFT").click()
    page.wait_for_selector("#detail [data-field='trip']")
    assert page.inner_text("#detail [data-field='trip']").endswith("daily loss limit $100.00 reached: $190.00 lost today")
    assert page.inner_text("#detail-alerts").startswith("LIMIT TRIPPED: daily loss limit $100.00 reached")
    assert page.inner_text("#detail [data-field='limits']") == "Limits: day loss $100.00 · 20 trades/day → pause"
    save_screenshot(page, "800x480-detail-limit-tripped")

    page.click("#detail-resume-card")
    enter_pin(page)
    wait_until(lambda: ledger.get_card_limits(msft, conn=conn)["trip"] is None, what="the card resumed")
    page.wait_for_selector("#detail [data-field='trip']", state="detached")

    page.click("#detail-change-limits")
    enter_pin(page)
    page.wait_for_selector("#limits-dialog", state="visible")
    assert page.input_value("#limits-daily-loss") == "100" and page.input_value("#limits-trades") == "20"
    page.click("#limits-drawdown")
    for key in "12.5":
        page.click(f'#limits-keyboard [data-key="{key}"]')
    page.fill("#limits-trades", "")
    page.select_option("#limits-on-trip", "liquidate")
    save_screenshot(page, "800x480-limits-dialog")
    assert_fits(page)
    page.click("#limits-save")
    page.wait_for_selector("#limits-dialog", state="hidden")
    stored = ledger.get_card_limits(msft, conn=conn)
    assert (stored["max_drawdown_percent"], stored["daily_loss_limit"], stored["max_trades_per_day"],
            stored["on_trip"]) == (12.5, 100.0, None, "liquidate")
    wait_until(lambda: page.inner_text("#detail [data-field='limits']")
               == "Limits: max loss 12.5% from peak · day loss $100.00 → stop and sell", what="the new limits shown")
    page.click("#detail-back")

    page.click("#pause-button")
    enter_pin(page)
    page.wait_for_selector("#pause-banner", state="hidden")
    assert page.inner_text("#pause-button") == "PAUSE" and ledger.get_pause(conn=conn)["paused"] is False
    card(page, "MSFT").locator(".card-tripped").wait_for(state="hidden")


def test_a_new_card_takes_the_limits_chosen_in_the_add_dialog(wall, page_factory, save_screenshot):
    day, api, msft, conn = wall
    page = page_factory(800, 480, has_touch=True)
    page.goto(dashboard_url(api))
    open_add_form(page)
    page.wait_for_selector("#add-limits:has-text('Limits: none')")  # no defaults in this .env
    page.select_option("#add-algorithm", "sma_crossover")
    page.click("#add-ticker")
    type_on_screen(page, "AAPL")
    page.click("#add-capital")
    type_on_screen(page, "1000")
    page.click("#add-limits-button")
    page.wait_for_selector("#limits-dialog", state="visible")
    page.fill("#limits-cooldown", "15")
    page.fill("#limits-trades", "2.5")
    page.click("#limits-save")
    assert page.inner_text("#limits-error") == "Trades a day: a whole number above 0, or empty for none."
    page.fill("#limits-trades", "30")
    page.click("#limits-save")
    page.wait_for_selector("#limits-dialog", state="hidden")
    assert page.inner_text("#add-limits") == "Limits: 30 trades/day · 15 min cooldown → pause"
    save_screenshot(page, "800x480-add-with-limits")
    assert_fits(page)
    page.click("#add-submit")
    page.wait_for_selector("#add-dialog", state="hidden")
    [added] = [c for c in ledger.get_all_algorithms("running", conn=conn) if c["ticker"] == "AAPL"]
    stored = ledger.get_card_limits(added["id"], conn=conn)
    assert (stored["max_trades_per_day"], stored["cooldown_minutes"], stored["max_drawdown_percent"],
            stored["trip"]) == (30, 15, None, None)
