"""History (stopped cards, daily P&L bars, open vs realized) and the quiet screen after the close."""
from __future__ import annotations

from datetime import timedelta

import pytest

from database import db_manager, market_calendar
from system_databse import system_db_manager
from tests.fixtures.browser import dashboard_url, stamp, wait_until

pytestmark = pytest.mark.browser

SIZES = [(800, 480), (1280, 720), (1920, 1080)]


def add_bar(day, ticker, moment, close):
    conn = db_manager.get_connection(day.stocks_db)
    try:
        db_manager.upsert_bars(conn, [{"ticker": ticker, "timestamp": stamp(moment), "open": close, "high": close,
                                       "low": close, "close": close, "volume": 100}])
    finally:
        conn.close()


@pytest.fixture
def two_days(market_hours):
    """NVDA runs: 50 @ 100, closes 102 on day 1 and 99 on day 2. AAPL bought 10 @ 200, sold @ 205, stopped."""
    day, api = market_hours
    nvda = day.create_card("NVDA", 10_000)
    aapl = day.create_card("AAPL", 5_000, "bollinger_reversion")
    day.add_bars("NVDA", [100.0] * 20 + [102.0])
    day.add_bars("AAPL", [200.0] * 20 + [205.0])
    day.buy(nvda, 50, 100.00, minute=2)
    day.buy(aapl, 10, 200.00, minute=3)
    day.sell(aapl, 10, 205.00, minute=20)
    day.stop_card(aapl, minute=21)
    second_open = market_calendar.next_open(day.close).to_pydatetime()
    add_bar(day, "NVDA", second_open + timedelta(minutes=5), 99.0)
    return day, api, nvda, aapl, second_open


def expected_daily(day, second_open):
    """From the ledger's fills and each day's last close: what each day added to the account."""
    system = system_db_manager.get_connection(day.system_db)
    rows = system.execute("SELECT a.ticker, t.type, t.shares, t.price FROM transactions t"
                          " JOIN algorithm_instances a ON a.id = t.algorithm_id").fetchall()
    system.close()
    closes = {"NVDA": [102.0, 99.0], "AAPL": [205.0, 205.0]}
    marks = [0.0, 0.0]
    for ticker, kind, shares, price in rows:
        sign = 1 if kind == "buy" else -1
        for k in range(2):
            marks[k] += sign * shares * (closes[ticker][k] - price)
    return {day.open.strftime("%Y-%m-%d"): round(marks[0], 2), second_open.strftime("%Y-%m-%d"): round(marks[1] - marks[0], 2)}


@pytest.mark.parametrize("width, height", [(800, 480), (1280, 720)])
def test_history_shows_the_stopped_card_and_daily_bars_that_match_the_ledger(two_days, page_factory, width, height):
    day, api, nvda, aapl, second_open = two_days
    page = page_factory(width, height)
    page.goto(dashboard_url(api))
    wait_until(lambda: page.locator(".card").count() == 1, what="the running card only")
    # header: open P&L of NVDA's 50 shares at 99 (-50.00), realized all time: AAPL's +50.00
    wait_until(lambda: page.inner_text("#status-pnl-split") == "open −$50.00 · realized +$50.00", what="P&L split")

    page.click("#history-button")
    page.wait_for_selector('#history[data-loaded="true"]')
    rows = page.locator("#history-closed tbody tr")
    assert rows.count() == 1
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[0].startswith("AAPL") and f"#{aapl}" in cells[0]
    assert cells[3] == "2" and cells[4] == "+$50.00"

    bars = page.locator("#history-daily .pnl-bar").evaluate_all(
        "els => els.map(e => [e.dataset.date, Number(e.dataset.pnl), e.getAttribute('class')])")
    expected = expected_daily(day, second_open)
    assert {d: p for d, p, _ in bars} == expected == {
        day.open.strftime("%Y-%m-%d"): 150.0, second_open.strftime("%Y-%m-%d"): -150.0}
    assert [c for *_, c in bars] == ["pnl-bar pnl-bar--up", "pnl-bar pnl-bar--down"]
    page.click("#history-back")
    assert page.locator("#history").is_hidden()


@pytest.mark.parametrize("width, height", SIZES)
def test_history_screenshots(two_days, page_factory, save_screenshot, width, height):
    day, api, *_ = two_days
    page = page_factory(width, height)
    page.goto(dashboard_url(api))
    page.wait_for_selector(".card")
    save_screenshot(page, f"{width}x{height}-wall-with-history-button")
    page.click("#history-button")
    page.wait_for_selector('#history[data-loaded="true"] .pnl-bar')
    save_screenshot(page, f"{width}x{height}-history")


@pytest.fixture
def after_the_close(next_session, paper_exchange_factory, live_api_factory):
    """The exchange 10 minutes after the session's close; a card that made +145.00 that day."""
    day = next_session
    card = day.create_card("NVDA", 10_000)
    day.add_bars("NVDA", [100 + i * 0.1 for i in range(30)])     # last close 102.90
    day.buy(card, 50, 100.00, minute=2)
    exchange = paper_exchange_factory(start=stamp(day.close + timedelta(minutes=10)), speed=1)
    api = live_api_factory(exchange, HEARTBEAT_STALE_SECONDS_CLOSED=24 * 3600)
    day.heartbeat(api)
    return day, api, exchange


def test_the_wall_dims_after_the_close_wakes_on_touch_and_at_the_open(after_the_close, page_factory):
    day, api, exchange = after_the_close
    page = page_factory(800, 480, has_touch=True)
    page.goto(dashboard_url(api, dim_after_ms=1500, poll_closed_ms=500, poll_open_ms=500))
    page.wait_for_selector(".card")
    assert page.locator("#quiet").is_hidden()
    page.wait_for_selector("#quiet:not([hidden])", timeout=15_000)
    next_open = market_calendar.next_open(day.close).to_pydatetime().astimezone(market_calendar.nyse().tz)
    opens_at = f"{next_open.hour % 12 or 12}:{next_open.minute:02d} AM"
    pnl = f"P&L {day.open.strftime('%a, %b %-d')}: +$145.00"
    wait_until(lambda: page.inner_text("#quiet-open").endswith(opens_at) and page.inner_text("#quiet-pnl") == pnl,
               what="the next open and the day's P&L on the quiet screen")  # filled in by their own requests

    page.tap("#quiet")                                        # a touch wakes it; the card below is not opened
    assert page.locator("#quiet").is_hidden() and page.locator("#detail").is_hidden()
    page.wait_for_selector("#quiet:not([hidden])", timeout=15_000)   # idle again: dims again

    exchange.set_clock(stamp(next_open + timedelta(minutes=1)))
    api.clock.advance(3600)                                    # past the API's market-status cache
    page.wait_for_selector("#quiet", state="hidden", timeout=20_000)
    assert page.get_attribute("body", "data-market-open") == "true"


@pytest.mark.parametrize("width, height", SIZES)
def test_quiet_screen_screenshots(after_the_close, page_factory, save_screenshot, width, height):
    day, api, exchange = after_the_close
    page = page_factory(width, height)
    page.goto(dashboard_url(api, dim_after_ms=500, poll_closed_ms=500))
    page.wait_for_selector("#quiet:not([hidden])", timeout=15_000)
    wait_until(lambda: "+$145.00" in page.inner_text("#quiet-pnl"), what="the day's P&L")
    save_screenshot(page, f"{width}x{height}-quiet")


def test_wake_at_open_can_be_turned_off(after_the_close, page_factory):
    day, api, exchange = after_the_close
    page = page_factory(800, 480)
    page.goto(dashboard_url(api, dim_after_ms=1000, poll_closed_ms=500, poll_open_ms=500, wake_at_open=0))
    page.wait_for_selector("#quiet:not([hidden])", timeout=15_000)
    next_open = market_calendar.next_open(day.close).to_pydatetime()
    exchange.set_clock(stamp(next_open + timedelta(minutes=1)))
    api.clock.advance(3600)
    wait_until(lambda: page.get_attribute("body", "data-market-open") == "true", what="market open seen")
    assert page.locator("#quiet").is_visible()
    page.mouse.click(10, 10)
    assert page.locator("#quiet").is_hidden()
