"""The PIN pad in a real browser against the real API: masked digits, wrong PIN, lock-out."""
from __future__ import annotations

import re

import pytest

from tests.fixtures.browser import dashboard_url, wait_until

pytestmark = pytest.mark.browser

PIN_DIALOG = "#pin-dialog"
PIN_MESSAGE = "#pin-message"


def press(page, keys: str) -> None:
    for key in keys:
        page.click(f'#pin-keys [data-digit="{key}"]')


def ok(page) -> None:
    page.click('#pin-keys [data-action="ok"]')


@pytest.fixture
def dashboard(market_hours, page_factory):
    day, api = market_hours
    page = page_factory(800, 480)
    page.goto(dashboard_url(api))
    page.wait_for_selector("#status-market:has-text('MARKET OPEN')")
    return page


def test_digits_are_masked_and_clear_and_back_edit_them(dashboard):
    page = dashboard
    page.click("#add-button")
    page.wait_for_selector(PIN_DIALOG, state="visible")
    press(page, "2021")
    assert page.inner_text("#pin-display") == "●●●●"
    assert "2021" not in page.inner_text(PIN_DIALOG)
    page.click('#pin-keys [data-action="back"]')
    assert page.inner_text("#pin-display") == "●●●"
    page.click('#pin-keys [data-action="clear"]')
    assert page.inner_text("#pin-display") == ""
    page.click('#pin-keys [data-action="cancel"]')
    page.wait_for_selector(PIN_DIALOG, state="hidden")
    assert not page.is_visible("#add-dialog")


def test_wrong_pin_says_so_and_the_right_one_opens_the_add_form(dashboard):
    page = dashboard
    page.console_watch.expect_failed("/api/validate-pin", 401)
    page.click("#add-button")
    press(page, "1111")
    ok(page)
    page.wait_for_selector(f"{PIN_MESSAGE}:has-text('Wrong PIN')")
    assert page.inner_text(PIN_MESSAGE) == "Wrong PIN. 4 attempts left before a lock-out."
    assert page.inner_text("#pin-display") == ""
    press(page, "12")
    ok(page)
    assert page.inner_text(PIN_MESSAGE) == "The PIN has at least 4 digits."
    page.click('#pin-keys [data-action="clear"]')
    page.keyboard.type("2020")                      # a physical keyboard works too
    page.keyboard.press("Enter")
    page.wait_for_selector("#add-dialog", state="visible")
    assert not page.is_visible(PIN_DIALOG)
    wait_until(lambda: page.locator("#add-algorithm option").count() > 0, what="algorithm choices")


def test_five_wrong_pins_lock_the_pad_and_the_server_keeps_refusing(market_hours, page_factory):
    day, api = market_hours
    page = page_factory(800, 480)
    page.console_watch.expect_failed("/api/validate-pin", 401)
    page.console_watch.expect_failed("/api/validate-pin", 429)
    page.goto(dashboard_url(api))
    page.click("#add-button")
    for attempt in range(5):
        press(page, "9999")
        ok(page)
        page.wait_for_selector(f"{PIN_MESSAGE}:has-text('Wrong PIN'), {PIN_MESSAGE}:has-text('Locked')")
    message = page.inner_text(PIN_MESSAGE)
    assert re.fullmatch(r"Too many wrong PINs\. Locked: try again in (1 min( \d+ s)?|\d+ s)\.", message), message
    assert page.is_disabled('#pin-keys [data-digit="2"]')
    assert page.is_disabled('#pin-keys [data-action="ok"]')
    assert page.is_enabled('#pin-keys [data-action="cancel"]')

    # A reloaded page knows nothing of the lock: the server's 429 says it, even for the right PIN.
    page.reload()
    page.click("#add-button")
    press(page, "2020")
    ok(page)
    page.wait_for_selector(f"{PIN_MESSAGE}:has-text('Too many wrong PINs')")
    assert not page.is_visible("#add-dialog")


def test_the_lock_out_ends_by_itself(market_hours, page_factory):
    day, api = market_hours
    api.app.config["PIN_LOCKOUT_SECONDS"] = 3
    page = page_factory(800, 480)
    page.console_watch.expect_failed("/api/validate-pin", 401)
    page.goto(dashboard_url(api))
    page.click("#add-button")
    for attempt in range(5):
        press(page, "9999")
        ok(page)
        page.wait_for_selector(f"{PIN_MESSAGE}:has-text('Wrong PIN'), {PIN_MESSAGE}:has-text('Locked')")
    assert "Locked" in page.inner_text(PIN_MESSAGE)
    page.wait_for_selector(f"{PIN_MESSAGE}:has-text('You can try again now.')", timeout=30_000)
    press(page, "2020")
    ok(page)
    page.wait_for_selector("#add-dialog", state="visible")
