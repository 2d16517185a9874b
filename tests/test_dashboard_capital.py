"""Deposit into and withdraw from a running card on the wall (800x480, touch): its detail view,
the PIN pad, the amount typed on the on-screen keypad, the limit shown, a refusal in words."""
from __future__ import annotations

import pytest

from system_databse import system_db_manager
from tests.fixtures.browser import dashboard_url, wait_until

pytestmark = pytest.mark.browser


def enter_pin(page, pin: str = "2020") -> None:
    page.wait_for_selector("#pin-dialog", state="visible")
    for key in pin:
        page.click(f'#pin-keys [data-digit="{key}"]')
    page.click('#pin-keys [data-action="ok"]')


def type_amount(page, text: str) -> None:
    for key in text:
        page.click(f'#capital-keyboard [data-key="{key}"]')


def summary(page, field: str) -> str:
    return page.inner_text(f'#detail-summary [data-field="{field}"]')


def open_dialog(page, kind: str) -> None:
    page.click(f"#detail-{kind}")
    enter_pin(page)
    page.wait_for_selector("#capital-dialog", state="visible")


@pytest.fixture
def nvda(market_hours):
    """$10,000 NVDA card: 50 bought at $100.00, the price now $105.00 (P&L +$250.00, +2.50%)."""
    day, api = market_hours
    card = day.create_card("NVDA", 10_000)
    day.add_bars("NVDA", [105.0] * 30)
    day.buy(card, 50, 100.0, minute=5)
    return day, api, card


def test_deposit_then_a_refused_and_an_accepted_withdrawal_on_the_on_screen_keypad(nvda, page_factory,
                                                                                   save_screenshot):
    day, api, card = nvda
    page = page_factory(800, 480, has_touch=True)
    page.goto(dashboard_url(api, poll_open_ms=500))
    page.locator(".card").first.click()
    page.wait_for_selector("#detail:not([hidden])[data-loaded]")
    assert (summary(page, "capital"), summary(page, "cash"), summary(page, "pnl")) == (
        "$10,000.00", "$5,000.00", "+$250.00 +2.50%")

    open_dialog(page, "deposit")
    assert page.inner_text("#capital-title") == f"Deposit into NVDA #{card}"
    page.wait_for_selector("#capital-limit:has-text('$')")
    assert page.inner_text("#capital-limit") == "Available cash: $95,000.00"   # $100,000 less the card's $5,000
    type_amount(page, "5000")
    assert page.input_value("#capital-amount") == "5000"
    save_screenshot(page, "capital-deposit-dialog-800x480")
    page.click("#capital-submit")
    page.wait_for_selector("#capital-dialog", state="hidden")

    wait_until(lambda: summary(page, "capital") == "$15,000.00", what="the new allocation")
    assert (summary(page, "cash"), summary(page, "pnl")) == ("$10,000.00", "+$250.00 +1.67%")  # 250 of 15,000
    first = page.locator("#detail-transactions tbody tr").first.locator("td").all_inner_texts()
    assert first[1:] == ["DEPOSIT", "+$5,000.00"]
    save_screenshot(page, "capital-detail-after-deposit-800x480")

    page.console_watch.expect_failed("/withdraw", 422)
    open_dialog(page, "withdraw")
    assert page.inner_text("#capital-limit") == "Uninvested cash: $10,000.00 (a withdrawal never sells shares)"
    type_amount(page, "20000")
    page.click("#capital-submit")
    page.wait_for_selector("#capital-error:has-text('Nothing withdrawn')")
    assert page.inner_text("#capital-error") == (
        f"Nothing withdrawn. The withdrawal 20,000.00 is more than card {card}'s uninvested cash 10,000.00; "
        "a withdrawal never sells shares.")
    save_screenshot(page, "capital-withdraw-refused-800x480")
    assert system_db_manager.get_capital_moves(card)[-1]["kind"] == "deposit", "the refusal wrote nothing"

    for _ in range(5):
        page.click('#capital-keyboard [data-key="Backspace"]')
    type_amount(page, "2000.5")
    page.click("#capital-submit")                                # the same PIN token: still this one withdrawal
    page.wait_for_selector("#capital-dialog", state="hidden")
    wait_until(lambda: summary(page, "capital") == "$12,999.50", what="the allocation after the withdrawal")
    assert (summary(page, "cash"), summary(page, "pnl")) == ("$7,999.50", "+$250.00 +1.67%")
    rows = page.locator("#detail-transactions tbody tr")
    assert [rows.nth(i).locator("td").all_inner_texts()[1:] for i in range(3)] == [
        ["WITHDRAW", "−$2,000.50"], ["DEPOSIT", "+$5,000.00"],
        ["BUY", "50", "$100.00", "$5,000.00"]]

    page.click("#detail-back")                                   # the card on the wall shows the allocation too
    wait_until(lambda: page.inner_text('.card [data-field="capital"]') == "$12,999.50", what="the card's allocation")


def test_the_pin_for_a_deposit_is_asked_each_time_and_a_stopped_card_has_no_buttons(nvda, page_factory):
    day, api, card = nvda
    page = page_factory(800, 480, has_touch=True)
    page.goto(dashboard_url(api, poll_open_ms=500))
    page.locator(".card").first.click()
    page.wait_for_selector("#detail:not([hidden])[data-loaded]")
    page.click("#detail-deposit")
    page.wait_for_selector("#pin-dialog", state="visible")
    assert page.inner_text("#pin-title") == "PIN to deposit"
    enter_pin(page)
    page.wait_for_selector("#capital-dialog", state="visible")
    page.click("#capital-cancel")                                # backing out forgets the token
    page.wait_for_selector("#capital-dialog", state="hidden")
    page.click("#detail-withdraw")
    page.wait_for_selector("#pin-dialog", state="visible")
    assert page.inner_text("#pin-title") == "PIN to withdraw"
    page.click('#pin-keys [data-action="cancel"]')
    assert system_db_manager.get_capital_moves(card) == []

    system_db_manager.stop_algorithm(card)
    wait_until(lambda: page.locator("#detail-actions").is_hidden(), what="the buttons to go on a stopped card")
