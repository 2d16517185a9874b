"""Adding and stopping cards from the wall, through the PIN pad, against the real API."""
from __future__ import annotations

import pytest

from system_databse import system_db_manager
from tests.fixtures.browser import dashboard_url, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow(30)]


def card(page, ticker: str):
    return page.locator(".card", has=page.locator(".card-ticker", has_text=ticker))


def enter_pin(page, pin: str = "2020") -> None:
    page.wait_for_selector("#pin-dialog", state="visible")
    for key in pin:
        page.click(f'#pin-keys [data-digit="{key}"]')
    page.click('#pin-keys [data-action="ok"]')


def type_on_screen(page, text: str) -> None:
    for key in text:
        page.click(f'#add-keyboard [data-key="{key}"]')


def open_add_form(page) -> None:
    page.click("#add-button")
    enter_pin(page)
    page.wait_for_selector("#add-dialog", state="visible")
    page.wait_for_selector("#add-available:has-text('$')")


def test_adding_a_card_shows_it_without_reloading(market_hours, page_factory):
    day, api = market_hours
    day.add_bars("NVDA", [120.0] * 30)
    page = page_factory(800, 480, has_touch=True)
    page.goto(dashboard_url(api))
    page.wait_for_selector("#empty:has-text('No algorithms running')")
    page.evaluate("window.sameDocument = true")

    open_add_form(page)
    assert page.locator("#add-algorithm option").all_inner_texts() == [
        "bollinger_reversion", "lot_take_profit", "sma_crossover"]
    page.select_option("#add-algorithm", "sma_crossover")
    assert page.inner_text("#add-description").startswith("SMA crossover: buy with the card's cash")
    assert page.inner_text("#add-available") == "Available cash: $100,000.00"
    page.click("#add-ticker")
    type_on_screen(page, "nvda".upper())                            # the on-screen keyboard
    page.click("#add-capital")
    type_on_screen(page, "2500.50")
    assert page.input_value("#add-ticker") == "NVDA"
    assert page.input_value("#add-capital") == "2500.50"
    page.click("#add-submit")

    page.wait_for_selector("#add-dialog", state="hidden")
    wait_until(lambda: card(page, "NVDA").count() == 1, what="the new card")
    new_card = card(page, "NVDA")
    assert new_card.locator('[data-field="capital"]').inner_text() == "$2,500.50"
    assert new_card.locator('[data-field="price"]').inner_text() == "$120.00"
    assert new_card.locator(".card-algorithm").inner_text() == "sma_crossover"
    assert page.evaluate("window.sameDocument") is True             # no reload happened
    assert page.is_hidden("#empty")
    [stored] = system_db_manager.get_all_algorithms("running")
    assert (stored["ticker"], stored["algorithm_type"], stored["initial_capital"]) == ("NVDA", "sma_crossover", 2500.5)


def test_refusals_are_shown_in_the_form_in_plain_words(market_hours, page_factory):
    day, api = market_hours
    page = page_factory(1280, 720)
    page.console_watch.expect_failed("/api/algorithms", 422)
    page.goto(dashboard_url(api))
    open_add_form(page)
    page.select_option("#add-algorithm", "lot_take_profit")
    assert page.inner_text("#add-description").startswith("Lot trader:")

    page.click("#add-submit")
    assert page.inner_text("#add-error") == "Enter a ticker symbol, for example NVDA."
    page.fill("#add-ticker", "zzzz")
    page.fill("#add-capital", "-5")
    assert page.input_value("#add-capital") == "5"                  # a minus sign cannot even be typed
    page.fill("#add-capital", "abc")
    page.click("#add-submit")
    assert page.inner_text("#add-error").startswith("Enter the capital as a positive dollar amount")

    page.fill("#add-capital", "1000")
    page.click("#add-submit")
    page.wait_for_selector("#add-error:has-text('tradable')")
    assert page.inner_text("#add-error") == "Not added. ZZZZ is not a tradable asset at the broker."

    page.fill("#add-ticker", "AAPL")
    page.fill("#add-capital", "250,000")
    page.click("#add-submit")
    page.wait_for_selector("#add-error:has-text('more than the available cash')")
    assert page.inner_text("#add-error") == (
        "Not added. The capital $250,000.00 is more than the available cash $100,000.00.")
    assert page.is_visible("#add-dialog")
    assert system_db_manager.get_all_algorithms() == []

    page.click("#add-cancel")
    page.wait_for_selector("#add-dialog", state="hidden")
    assert page.locator(".card").count() == 0


def test_stopping_asks_for_the_pin_then_confirmation_then_shows_closing_until_flat(market_hours, page_factory):
    day, api = market_hours
    held = day.create_card("NVDA", 10_000)
    day.add_bars("NVDA", [100.0] * 30)
    day.buy(held, 40, 100.0, minute=5)
    page = page_factory(1280, 720)
    page.goto(dashboard_url(api, poll_open_ms=500))
    wait_until(lambda: card(page, "NVDA").count() == 1, what="NVDA card")
    name = card(page, "NVDA").locator(".card-name").inner_text()

    card(page, "NVDA").locator(".stop-button").click()
    enter_pin(page)                                                 # no token yet: the PIN first
    page.wait_for_selector("#stop-dialog", state="visible")
    assert page.inner_text("#stop-name") == name
    assert page.inner_text("#stop-text") == (
        "It stops trading now, and its 40 shares of NVDA will be sold at the market price.")
    page.click("#stop-cancel")                                      # changing one's mind changes nothing
    page.wait_for_selector("#stop-dialog", state="hidden")
    assert system_db_manager.get_algorithm(held)["status"] == "running"

    card(page, "NVDA").locator(".stop-button").click()              # backing out forgot the PIN: ask again
    enter_pin(page)
    page.wait_for_selector("#stop-dialog", state="visible")
    page.click("#stop-confirm")
    page.wait_for_selector("#stop-dialog", state="hidden")

    closing = card(page, "NVDA")
    wait_until(lambda: closing.locator(".card-closing").is_visible(), what="closing notice")
    assert closing.locator(".card-closing").inner_text() == "CLOSING: selling 40 shares"
    assert closing.locator(".stop-button").is_disabled()
    assert system_db_manager.get_algorithm(held)["status"] == "stopped"

    day.liquidate(held, 40, 101.0, minute=31)                       # the orchestrator sells
    wait_until(lambda: card(page, "NVDA").count() == 0, what="the flat card to disappear")
    assert page.is_visible("#empty")


def test_a_card_without_shares_disappears_at_once(market_hours, page_factory):
    day, api = market_hours
    algo_id = day.create_card("MSFT", 3_000)
    day.add_bars("MSFT", [300.0] * 30)
    page = page_factory(1280, 720)
    page.goto(dashboard_url(api))
    wait_until(lambda: card(page, "MSFT").count() == 1, what="MSFT card")
    card(page, "MSFT").locator(".stop-button").click()
    enter_pin(page)
    page.wait_for_selector("#stop-dialog", state="visible")
    assert page.inner_text("#stop-text") == (
        "It stops trading now. It holds no MSFT shares, so nothing needs to be sold.")
    page.click("#stop-confirm")
    wait_until(lambda: card(page, "MSFT").count() == 0, what="the card to go")
    assert system_db_manager.get_algorithm(algo_id)["status"] == "stopped"


def test_an_expired_token_brings_the_pin_pad_back(market_hours, page_factory):
    day, api = market_hours
    first = day.create_card("NVDA", 1_000)
    day.create_card("AAPL", 1_000)
    day.add_bars("NVDA", [100.0] * 30)
    day.add_bars("AAPL", [100.0] * 30)
    page = page_factory(1280, 720)
    page.console_watch.expect_failed(f"/api/algorithms/", 401)
    page.goto(dashboard_url(api))
    wait_until(lambda: page.locator(".card").count() == 2, what="two cards")

    card(page, "NVDA").locator(".stop-button").click()
    enter_pin(page)
    page.click("#stop-confirm")
    wait_until(lambda: card(page, "NVDA").count() == 0, what="NVDA gone")
    assert system_db_manager.get_algorithm(first)["status"] == "stopped"

    card(page, "AAPL").locator(".stop-button").click()
    enter_pin(page)
    page.wait_for_selector("#stop-dialog", state="visible")
    api.clock.advance(api.app.config["TOKEN_TTL_SECONDS"] + 1)     # the server forgets the token meanwhile
    page.click("#stop-confirm")
    page.wait_for_selector("#pin-title:has-text('PIN expired')")    # the 401 brings the PIN pad back
    enter_pin(page)
    page.wait_for_selector("#stop-dialog", state="hidden")
    wait_until(lambda: card(page, "AAPL").count() == 0, what="AAPL gone")
    assert [a["status"] for a in system_db_manager.get_all_algorithms()] == ["stopped", "stopped"]


def test_the_pin_entered_for_an_add_does_not_stop_a_card_later(market_hours, page_factory):
    """Someone adds nothing and walks away: the next person at the wall must know the PIN to stop a card."""
    day, api = market_hours
    held = day.create_card("NVDA", 1_000)
    day.add_bars("NVDA", [100.0] * 30)
    page = page_factory(1280, 720)
    page.goto(dashboard_url(api))
    wait_until(lambda: card(page, "NVDA").count() == 1, what="NVDA card")

    open_add_form(page)                                             # PIN entered for an add
    page.click("#add-cancel")                                       # ... and the dialog closes
    page.wait_for_selector("#add-dialog", state="hidden")

    card(page, "NVDA").locator(".stop-button").click()
    page.wait_for_selector("#pin-dialog", state="visible")          # a stop asks for the PIN again
    assert page.inner_text("#pin-title") == "PIN to stop"
    assert page.is_hidden("#stop-dialog")
    page.click('#pin-keys [data-action="cancel"]')
    page.wait_for_selector("#pin-dialog", state="hidden")
    assert page.is_hidden("#stop-dialog")
    assert system_db_manager.get_algorithm(held)["status"] == "running"

    page.click("#add-button")                                       # and so does the next add
    page.wait_for_selector("#pin-dialog", state="visible")
    assert page.inner_text("#pin-title") == "PIN to add"
