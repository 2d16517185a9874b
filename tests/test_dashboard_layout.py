"""The page fits the Pi touch displays (800x480, 1280x720) and a 1920x1080 monitor: nothing
overlaps, no text is cut off; a screenshot of each state is kept in test-artifacts/screenshots/."""
from __future__ import annotations

import pytest

from tests.fixtures.browser import dashboard_url, stamp, wait_until

pytestmark = pytest.mark.browser

SIZES = [(800, 480), (1280, 720), (1920, 1080)]

# Problems a person would see, measured in the page: text overflowing its box or the screen,
# boxes overlapping their neighbours, a card or dialog not fully on screen.
LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const vw = window.innerWidth, vh = window.innerHeight, eps = 0.5;
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const name = (el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}` +
    `${typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\\s+/).join('.') : ''}` +
    ` "${(el.textContent || '').trim().slice(0, 40)}"`;
  const inside = (r, b) => r.left >= b.left - eps && r.right <= b.right + eps && r.top >= b.top - eps && r.bottom <= b.bottom + eps;
  const overlap = (a, b) => a.left < b.right - eps && b.left < a.right - eps && a.top < b.bottom - eps && b.top < a.bottom - eps;
  const dialog = [...document.querySelectorAll('dialog[open]')].pop();
  const roots = dialog ? [dialog] : ['#status-bar', '#banner', '#cards'].map((s) => document.querySelector(s));
  for (const root of roots) {
    for (const el of [root, ...root.querySelectorAll('*')]) {
      if (!shown(el) || el.closest('svg, select')) continue;
      if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
      const r = el.getBoundingClientRect();
      if (getComputedStyle(el).display !== 'inline') {
        if (el.scrollWidth > el.clientWidth + 1) problems.push('text wider than its box: ' + name(el));
        if (el.scrollHeight > el.clientHeight + 1) problems.push('text taller than its box: ' + name(el));
      }
      if (r.top < -eps || r.bottom > vh + eps) problems.push('text off screen vertically: ' + name(el));
      if (!el.closest('#cards') && (r.left < -eps || r.right > vw + eps)) problems.push('text off screen: ' + name(el));
      const box = el.closest('.card, dialog, .status-bar, .banner');
      if (box && box !== el && !inside(r, box.getBoundingClientRect())) problems.push('text sticks out: ' + name(el));
    }
  }
  const groups = dialog
    ? [...dialog.querySelectorAll('form, .field-row, .modal-actions, .pin-keys, .osk, .osk-row')]
    : [...document.querySelectorAll('body, #status-bar, .card, .card-meta, .card-fields, .card-pnl, .chart-caption')];
  for (const group of groups) {
    const kids = [...group.children].filter((k) => shown(k) && getComputedStyle(k).position !== 'fixed' && k.tagName !== 'DIALOG' && k.tagName !== 'SCRIPT');
    for (let i = 0; i < kids.length; i++) for (let j = i + 1; j < kids.length; j++) {
      if (overlap(kids[i].getBoundingClientRect(), kids[j].getBoundingClientRect())) {
        problems.push('overlap: ' + name(kids[i]) + ' / ' + name(kids[j]));
      }
    }
  }
  const screen = { left: 0, top: 0, right: vw, bottom: vh };
  for (const card of document.querySelectorAll('.card')) {
    const r = card.getBoundingClientRect();
    if (r.top < -eps || r.bottom > vh + eps) problems.push('card not fully on screen vertically: ' + name(card));
  }
  const row = document.querySelector('#cards');
  const cards = row.querySelectorAll('.card');
  const atStart = row.scrollLeft <= 1, atEnd = row.scrollLeft >= row.scrollWidth - row.clientWidth - 1;
  if (cards.length && atStart && !inside(cards[0].getBoundingClientRect(), screen)) problems.push('first card cut off');
  if (cards.length && atEnd && !inside(cards[cards.length - 1].getBoundingClientRect(), screen)) problems.push('last card cut off');
  if (dialog) {
    if (!inside(dialog.getBoundingClientRect(), screen)) problems.push('dialog off screen');
    if (dialog.scrollHeight > dialog.clientHeight + 1) problems.push('dialog needs scrolling');
  }
  return problems;
}"""


def assert_fits(page) -> None:
    problems = page.evaluate(LAYOUT_PROBLEMS)
    assert problems == [], "\n".join(problems)


@pytest.fixture
def busy_wall(next_session, paper_exchange_factory, live_api_factory):
    """Six cards: profits, losses, flat, a seven-figure one, a card being closed, one without bars."""
    day = next_session
    exchange = paper_exchange_factory(start=stamp(day.minute(30)), speed=1, cash=5_000_000)
    api = live_api_factory(exchange, HEARTBEAT_STALE_SECONDS=3600)
    day.heartbeat(api)
    big = day.create_card("NVDA", 1_000_000)
    day.add_bars("NVDA", [100 + i * 0.5 for i in range(30)])
    day.buy(big, 9_000, 100.00, minute=1)
    day.sell(big, 1_000, 110.00, minute=20)
    loss = day.create_card("TSLA", 25_000)
    day.add_bars("TSLA", [250 - i for i in range(30)])
    day.buy(loss, 90, 250.00, minute=3)
    day.create_card("MSFT", 2_000)
    day.add_bars("MSFT", [400.0] * 30)
    closing = day.create_card("AAPL", 5_000)
    day.add_bars("AAPL", [190 + (i % 5) for i in range(30)])
    day.buy(closing, 20, 190.00, minute=4)
    day.stop_card(closing, minute=25)
    day.create_card("GOOGL", 7_500, algorithm_type="lot_take_profit")
    day.add_bars("GOOGL", [170 + i * 0.1 for i in range(30)])
    day.create_card("META", 3_000, algorithm_type="bollinger_reversion")
    return day, api


@pytest.mark.parametrize("width,height", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_screen_fits_at_each_size(busy_wall, page_factory, save_screenshot, width, height):
    day, api = busy_wall
    size = f"{width}x{height}"
    page = page_factory(width, height)
    page.console_watch.expect_failed("/api/algorithms", 422)          # the refused add below
    page.goto(dashboard_url(api))
    wait_until(lambda: page.locator(".card").count() == 6, what="six cards")
    wait_until(lambda: page.locator(".card .chart-line").count() == 5, what="five charts")
    # META has no bars: the banner says so during market hours, which also tests its layout.
    page.wait_for_selector("#banner:has-text('No price data yet for META')")
    assert page.locator(".card--closing").count() == 1
    save_screenshot(page, f"{size}-cards")
    assert_fits(page)

    page.locator("#cards").evaluate("el => { el.style.scrollSnapType = 'none'; el.scrollLeft = el.scrollWidth; }")
    save_screenshot(page, f"{size}-cards-scrolled")
    assert_fits(page)
    page.locator("#cards").evaluate("el => { el.scrollLeft = 0; el.style.scrollSnapType = ''; }")

    page.click("#add-button")
    page.wait_for_selector("#pin-dialog", state="visible")
    for key in "20":
        page.click(f'#pin-keys [data-digit="{key}"]')
    save_screenshot(page, f"{size}-pin-pad")
    assert_fits(page)
    for key in "20":
        page.click(f'#pin-keys [data-digit="{key}"]')
    page.click('#pin-keys [data-action="ok"]')

    page.wait_for_selector("#add-dialog", state="visible")
    page.wait_for_selector("#add-available:has-text('$')")
    page.select_option("#add-algorithm", "lot_take_profit")          # the longest description
    page.fill("#add-ticker", "AMD")
    page.fill("#add-capital", "91234567.89")
    page.click("#add-submit")
    page.wait_for_selector("#add-error:has-text('more than the available cash')")
    save_screenshot(page, f"{size}-add-form")
    assert_fits(page)
    page.click("#add-cancel")

    page.locator(".card", has=page.locator(".card-ticker", has_text="NVDA")).locator(".stop-button").click()
    page.wait_for_selector("#pin-dialog", state="visible")           # a stop asks for its own PIN
    for key in "2020":
        page.click(f'#pin-keys [data-digit="{key}"]')
    page.click('#pin-keys [data-action="ok"]')
    page.wait_for_selector("#stop-dialog", state="visible")
    save_screenshot(page, f"{size}-stop-confirm")
    assert_fits(page)


def test_an_empty_wall_fits_and_invites_to_add(market_hours, page_factory, save_screenshot):
    day, api = market_hours
    for width, height in SIZES:
        page = page_factory(width, height)
        page.goto(dashboard_url(api))
        page.wait_for_selector("#empty:has-text('No algorithms running. Press + to add one.')")
        page.wait_for_selector("#status-cash:has-text('CASH $100,000.00')")
        save_screenshot(page, f"{width}x{height}-empty")
        assert_fits(page)
        empty = page.locator("#empty").bounding_box()
        header = page.locator("#status-bar").bounding_box()
        assert empty["y"] >= header["y"] + header["height"] and empty["y"] + empty["height"] <= height
