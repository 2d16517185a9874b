"""The dashboard in Chromium started with the kiosk unit's own flags, used by touch alone."""
from __future__ import annotations

from pathlib import Path

import pytest

from system_databse import system_db_manager
from tests.fixtures.browser import dashboard_url, launch_chromium, wait_until

pytestmark = pytest.mark.browser

KIOSK_UNIT = Path(__file__).resolve().parents[1] / "scripts" / "systemd" / "autotrader-kiosk.service"


def kiosk_flags() -> list[str]:
    """The switches the Pi's kiosk service passes to chromium (``--kiosk`` among them)."""
    exec_line = next(line for line in KIOSK_UNIT.read_text().splitlines() if line.startswith("ExecStart="))
    return [word for word in exec_line.split()[1:] if word.startswith("--")]


@pytest.fixture
def kiosk_browser(playwright_driver):
    flags = kiosk_flags()
    assert "--kiosk" in flags
    browser = launch_chromium(playwright_driver, flags)
    yield browser
    browser.close()


def tap(page, selector: str) -> None:
    page.locator(selector).tap()


def test_add_and_stop_a_card_by_touch_in_kiosk_mode(market_hours, kiosk_browser, page_factory):
    day, api = market_hours
    day.add_bars("AMD", [150.0] * 30)
    page = page_factory(800, 480, has_touch=True, browser=kiosk_browser)
    page.goto(dashboard_url(api))
    page.wait_for_selector("#empty:has-text('No algorithms running')")

    tap(page, "#add-button")
    for key in "2020":
        tap(page, f'#pin-keys [data-digit="{key}"]')
    tap(page, '#pin-keys [data-action="ok"]')
    page.wait_for_selector("#add-dialog", state="visible")
    page.wait_for_selector("#add-available:has-text('$')")
    tap(page, "#add-ticker")
    for key in "AMD":
        tap(page, f'#add-keyboard [data-key="{key}"]')
    tap(page, "#add-capital")
    for key in "1500":
        tap(page, f'#add-keyboard [data-key="{key}"]')
    tap(page, '#add-keyboard [data-key="Backspace"]')               # 150
    tap(page, "#add-submit")
    page.wait_for_selector("#add-dialog", state="hidden")
    wait_until(lambda: page.locator(".card").count() == 1, what="the new card")
    assert page.locator('.card [data-field="capital"]').inner_text() == "$150.00"

    tap(page, ".card .stop-button")                                 # the add's PIN is forgotten: ask again
    page.wait_for_selector("#pin-dialog", state="visible")
    for key in "2020":
        tap(page, f'#pin-keys [data-digit="{key}"]')
    tap(page, '#pin-keys [data-action="ok"]')
    page.wait_for_selector("#stop-dialog", state="visible")
    tap(page, "#stop-confirm")
    wait_until(lambda: page.locator(".card").count() == 0, what="the stopped card to go")
    assert [a["status"] for a in system_db_manager.get_all_algorithms()] == ["stopped"]
