"""Tap a card -> its full story: chart with fills and indicator lines, FIFO lots, fills, why -> back."""
from __future__ import annotations

import math
from datetime import timedelta

import pytest

from database import db_manager, market_calendar
from orchestra import decision_log
from orchestra.card_runner import CardRunner
from orchestra.cycle import CycleReport
from system_databse import system_db_manager
from tests.fixtures.browser import dashboard_url, stamp, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow(35)]

SIZES = [(800, 480), (1280, 720), (1920, 1080)]
CLOSES = [round(100 + 2 * math.sin(i / 6), 2) for i in range(80)]


def store_decision(day, card_id: int, minute_index: int) -> str:
    """Run the card's real algorithm on the stored bars, as the daemon does, and keep its decision."""
    system = system_db_manager.get_connection(day.system_db)
    market = db_manager.get_connection(day.stocks_db)
    try:
        card = system_db_manager.get_algorithm(card_id, conn=system)
        made = CardRunner(market, system).decide(card, day.minute(minute_index))
        report = CycleReport(stamp(day.minute(minute_index)), True, decisions=[made])
        report.card_errors[card_id] = "on_data raised RuntimeError: test error"  # shown as the last error
        decision_log.record(system, report, stamp(day.minute(minute_index + 1)))  # at the bar's close
        return made.decision.reason
    finally:
        system.close()
        market.close()


@pytest.fixture
def story(market_hours):
    """NVDA sma_crossover: 50 @ 100.00, 30 @ 101.50, then 60 sold @ 102.00 (FIFO realized +105.00)."""
    day, api = market_hours
    nvda = day.create_card("NVDA", 10_000)
    day.add_bars("NVDA", CLOSES)
    day.buy(nvda, 50, 100.00, minute=5)
    day.buy(nvda, 30, 101.50, minute=12)
    day.sell(nvda, 60, 102.00, minute=40)
    reason = store_decision(day, nvda, 79)
    return day, api, nvda, reason


def open_detail(page, api):
    page.goto(dashboard_url(api))
    page.locator(".card").first.click()
    page.wait_for_selector("#detail:not([hidden])[data-loaded]")
    wait_until(lambda: page.locator("#detail-chart svg").count() == 1, what="detail chart")


@pytest.mark.parametrize("width, height", [(800, 480), (1280, 720)])
def test_tap_a_card_see_lots_fills_reason_and_lines_then_go_back(story, page_factory, width, height):
    day, api, nvda, reason = story
    page = page_factory(width, height)
    open_detail(page, api)
    last = CLOSES[-1]

    assert page.inner_text("#detail-title") == f"NVDA · sma_crossover · #{nvda}"
    # FIFO: the 60 sold are the 50 @ 100.00 (+100.00) and 10 of the 30 @ 101.50 (+5.00).
    assert page.inner_text('[data-field="realized"]') == "+$105.00"
    unrealized = round(20 * (last - 101.50), 2)
    lots = page.locator("#detail-lots tbody tr")
    assert lots.count() == 1
    assert lots.first.locator("td").all_inner_texts() == ["20", "$101.50", f"{'+' if unrealized > 0 else '−'}${abs(unrealized):,.2f}"]
    # realized + unrealized is the card's P&L: 20 x last + 10,000 - (5000 + 3045 - 6120) - 10,000
    pnl = round(20 * last - 1925, 2)
    assert page.inner_text('[data-field="pnl"]').startswith(f"{'+' if pnl > 0 else '−'}${abs(pnl):,.2f}")
    assert abs(105.00 + unrealized - pnl) < 0.005

    rows = page.locator("#detail-transactions tbody tr")
    assert [rows.nth(i).locator("td").all_inner_texts()[1:] for i in range(3)] == [
        ["SELL", "60", "$102.00", "$6,120.00"], ["BUY", "30", "$101.50", "$3,045.00"], ["BUY", "50", "$100.00", "$5,000.00"]]
    sold_at = day.minute(40).astimezone(market_calendar.nyse().tz)
    assert f"{sold_at.hour % 12 or 12}:{sold_at.minute:02d}" in rows.first.locator("td").first.inner_text()

    assert page.inner_text('[data-field="decision-reason"]') == reason
    assert reason.startswith("no cross: SMA20") or "crossed" in reason
    assert page.inner_text('[data-field="error-reason"]') == "on_data raised RuntimeError: test error"

    # The algorithm's own lines: SMA20 and SMA50 of the closes, as the legend's last values.
    assert page.locator('#detail-chart .chart-indicator[data-name="SMA20"]').count() >= 1
    assert page.locator('#detail-chart .chart-indicator[data-name="SMA50"]').count() >= 1
    assert page.inner_text('.legend-item[data-name="SMA20"] .legend-value') == f"{sum(CLOSES[-20:]) / 20:.2f}"
    assert page.inner_text('.legend-item[data-name="SMA50"] .legend-value') == f"{sum(CLOSES[-50:]) / 50:.2f}"
    # Zoomed in (80 minute bars) the chart draws candles, with a marker at each fill's own price.
    assert page.get_attribute("#detail-chart", "data-mode") == "candles"
    assert page.locator("#detail-chart .candle").count() == 80
    assert sorted(float(p) for p in page.locator("#detail-chart .chart-marker").evaluate_all(
        "els => els.map(e => e.dataset.price)")) == [100.0, 101.5, 102.0]

    page.click("#detail-back")
    assert page.locator("#detail").is_hidden()
    assert page.locator(".card").first.is_visible()


def test_zoom_presets_and_a_line_when_there_are_many_bars(story, page_factory):
    day, api, nvda, _ = story
    day.add_bars("NVDA", [101.0 + i / 100 for i in range(60)], first_minute=80)   # 140 bars: too many candles
    page = page_factory(1280, 720)
    open_detail(page, api)
    assert page.get_attribute('[data-zoom="today"]', "aria-pressed") == "true"
    assert page.get_attribute("#detail-chart", "data-mode") == "line"
    assert len(page.get_attribute("#detail-chart .chart-line", "points").split()) == 140
    page.click('[data-zoom="all"]')
    wait_until(lambda: page.get_attribute('[data-zoom="all"]', "aria-pressed") == "true", what="ALL pressed")
    wait_until(lambda: page.locator("#detail-chart .chart-line").count() == 1, what="ALL chart")
    assert page.get_attribute('[data-zoom="today"]', "aria-pressed") == "false"
    # a long window is merged server-side: 140 bars asked at 40 points come as 4-minute candles
    body = page.evaluate(f"fetch('/api/algorithms/{nvda}/chart?zoom=all&points=40').then(r => r.json())")
    assert body["bars_per_point"] == 4 and len(body["points"]) == 35


def test_the_list_keeps_polling_under_the_detail_view(story, page_factory):
    day, api, nvda, _ = story
    page = page_factory(1280, 720)
    page.goto(dashboard_url(api, poll_open_ms=300))
    page.locator(".card").first.click()
    page.wait_for_selector("#detail:not([hidden])[data-loaded]")
    polls = int(page.get_attribute("body", "data-poll-count"))
    day.add_bars("NVDA", [110.0], first_minute=80)
    wait_until(lambda: int(page.get_attribute("body", "data-poll-count")) > polls + 1, what="polls go on")
    wait_until(lambda: "$110.00" in page.inner_text('[data-field="price"]'), what="detail refreshed with the poll")
    assert page.locator(".card").first.locator('[data-field="price"]').inner_text() == "$110.00"


@pytest.mark.parametrize("width, height", SIZES)
def test_detail_screenshots(story, page_factory, save_screenshot, width, height):
    day, api, nvda, _ = story
    page = page_factory(width, height)
    open_detail(page, api)
    save_screenshot(page, f"{width}x{height}-detail")
    overflow = page.evaluate("() => { const b = document.querySelector('#detail .view-bar');"
                             " return b.scrollWidth > b.clientWidth; }")
    assert not overflow
