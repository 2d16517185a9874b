"""What the wall shows for real cards: numbers, border colours, charts, local times, scrolling."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.fixtures.browser import dashboard_url, wait_until

pytestmark = pytest.mark.browser

GREEN = "rgb(51, 255, 102)"
RED = "rgb(255, 77, 77)"
WHITE = "rgb(255, 255, 255)"


def card(page, ticker: str):
    return page.locator(".card", has=page.locator(".card-ticker", has_text=ticker))


def field(page, ticker: str, name: str) -> str:
    return card(page, ticker).locator(f'[data-field="{name}"]').inner_text()


def border_colour(page, ticker: str) -> str:
    return card(page, ticker).evaluate("el => getComputedStyle(el).borderTopColor")


@pytest.fixture
def three_cards(market_hours):
    """NVDA up, AAPL down, MSFT untouched: a profit, a loss and a flat card from real trades."""
    day, api = market_hours
    nvda = day.create_card("NVDA", 10_000)
    aapl = day.create_card("AAPL", 5_000)
    day.create_card("MSFT", 2_000)
    day.add_bars("NVDA", [100 + i * 0.1 for i in range(30)])     # last close 102.90
    day.add_bars("AAPL", [200 - i * 0.2 for i in range(30)])     # last close 194.20
    day.add_bars("MSFT", [300.0] * 30)
    day.buy(nvda, 50, 100.00, minute=2)
    day.buy(aapl, 10, 200.00, minute=1)
    day.sell(aapl, 5, 199.00, minute=20)
    return day, api


def test_border_colours_and_numbers_follow_each_cards_pnl(three_cards, page_factory):
    day, api = three_cards
    page = page_factory(1280, 720)
    page.goto(dashboard_url(api))
    wait_until(lambda: page.locator(".card").count() == 3, what="three cards")

    # NVDA: 50 bought at 100.00, now 102.90 -> +145.00 on 10,000 (+1.45%).
    assert border_colour(page, "NVDA") == GREEN
    assert field(page, "NVDA", "shares") == "50"
    assert field(page, "NVDA", "trades") == "1"
    assert field(page, "NVDA", "price") == "$102.90"
    assert field(page, "NVDA", "value") == "$10,145.00"
    assert field(page, "NVDA", "capital") == "$10,000.00"
    assert field(page, "NVDA", "pnl") == "+$145.00"
    assert field(page, "NVDA", "pnl-percent") == "+1.45%"

    # AAPL: 10 bought at 200, 5 sold at 199, 5 left at 194.20 -> 5*194.20 + 5000 - 1005 = 4966.
    assert border_colour(page, "AAPL") == RED
    assert field(page, "AAPL", "shares") == "5"
    assert field(page, "AAPL", "trades") == "2"
    assert field(page, "AAPL", "value") == "$4,966.00"
    assert field(page, "AAPL", "pnl") == "−$34.00"
    assert field(page, "AAPL", "pnl-percent") == "−0.68%"

    # MSFT: never traded -> exactly zero, white.
    assert border_colour(page, "MSFT") == WHITE
    assert field(page, "MSFT", "pnl") == "$0.00"
    assert field(page, "MSFT", "pnl-percent") == "0.00%"

    assert page.inner_text("#status-pnl") == "P&L +$111.00"
    card_text = card(page, "NVDA").inner_text()
    assert "sma_crossover" in card_text and "NVDA_sma_crossover_" in card_text
    # Cards come in creation order.
    assert page.locator(".card .card-ticker").all_inner_texts() == ["NVDA", "AAPL", "MSFT"]


def test_colour_changes_when_a_new_bar_turns_profit_into_loss(three_cards, page_factory):
    day, api = three_cards
    page = page_factory(1280, 720)
    page.goto(dashboard_url(api, poll_open_ms=500))
    wait_until(lambda: page.locator(".card").count() == 3, what="three cards")
    assert border_colour(page, "NVDA") == GREEN
    day.add_bars("NVDA", [99.00], first_minute=30)                 # 50 * (99 - 100) = -50
    wait_until(lambda: field(page, "NVDA", "pnl") == "−$50.00", what="NVDA loss after the new bar")
    assert border_colour(page, "NVDA") == RED
    assert field(page, "NVDA", "pnl-percent") == "−0.50%"


def test_chart_draws_the_value_with_a_marker_per_trade(three_cards, page_factory):
    day, api = three_cards
    page = page_factory(1280, 720)
    page.goto(dashboard_url(api))
    for ticker in ("AAPL", "NVDA"):  # each card draws its chart when its own history arrives
        wait_until(lambda: card(page, ticker).locator(".chart-line").count() == 1, what=f"{ticker} chart")
    aapl = card(page, "AAPL")
    assert aapl.locator(".chart-marker--buy").count() == 1
    assert aapl.locator(".chart-marker--sell").count() == 1
    assert card(page, "NVDA").locator(".chart-marker--buy").count() == 1
    assert card(page, "NVDA").locator(".chart-marker--sell").count() == 0
    assert card(page, "MSFT").locator(".chart-marker").count() == 0
    # One vertex per bar (30 bars), inside the chart's box.
    points = aapl.locator(".chart-line").get_attribute("points").split()
    assert len(points) == 30
    box = aapl.locator(".card-chart").bounding_box()
    xs = [float(p.split(",")[0]) for p in points]
    assert 0 <= min(xs) < max(xs) <= box["width"]
    # The sell marker sits where the value line is at the sale's minute (the 21st bar).
    sell = aapl.locator(".chart-marker--sell").get_attribute("points").split()[0]
    assert abs(float(sell.split(",")[0]) - xs[20]) < 1.0
    assert "sell 5 @ $199.00" in aapl.locator(".chart-marker--sell title").text_content()


def test_a_card_without_bars_says_so_instead_of_a_chart(market_hours, page_factory):
    day, api = market_hours
    day.create_card("AMD", 1_000)
    page = page_factory(1280, 720)
    page.goto(dashboard_url(api))
    page.wait_for_selector(".card .chart-empty:has-text('no price data yet')")
    assert field(page, "AMD", "price") == "no data"
    assert field(page, "AMD", "pnl") == "$0.00"
    assert border_colour(page, "AMD") == WHITE


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Asia/Tokyo"])
def test_times_are_shown_in_the_viewers_time_zone(three_cards, page_factory, zone):
    day, api = three_cards
    page = page_factory(1280, 720, timezone_id=zone)
    page.goto(dashboard_url(api))
    page.wait_for_selector("#status-session:has-text('closes')")

    market_now = datetime.fromisoformat(api.exchange.state()["clock"]["now"].replace("Z", "+00:00"))

    def shown(moment: datetime) -> str:
        """As the wall shows it: the weekday unless it is the market's today in the viewer's zone."""
        local = moment.astimezone(ZoneInfo(zone))
        time_text = local.strftime("%I:%M %p").lstrip("0")
        if local.date() == market_now.astimezone(ZoneInfo(zone)).date():
            return time_text
        return f"{local.strftime('%a')} {time_text}"

    assert page.inner_text("#status-session") == f"closes {shown(day.close)}"
    last_bar = day.minute(29)
    wait_until(lambda: card(page, "NVDA").locator(".chart-price-at").inner_text() == f"price {shown(last_bar)}",
               what="price time in the viewer's zone")


def test_the_row_scrolls_by_wheel_keyboard_and_swipe(market_hours, page_factory):
    day, api = market_hours
    for ticker in ("NVDA", "AAPL", "MSFT", "TSLA", "AMZN", "GOOGL", "META"):
        day.create_card(ticker, 1_000)
        day.add_bars(ticker, [50.0] * 5)
    page = page_factory(800, 480, has_touch=True)
    page.goto(dashboard_url(api))
    wait_until(lambda: page.locator(".card").count() == 7, what="seven cards")
    row = page.locator("#cards")
    scroll = lambda: row.evaluate("el => el.scrollLeft")
    widest = row.evaluate("el => el.scrollWidth - el.clientWidth")
    assert widest > 0

    page.mouse.move(400, 300)
    page.mouse.wheel(0, 400)                                       # an ordinary vertical wheel
    wait_until(lambda: scroll() > 0, what="wheel scroll")

    page.keyboard.press("Home")
    wait_until(lambda: scroll() == 0, what="Home")
    page.keyboard.press("ArrowRight")
    wait_until(lambda: scroll() > 0, what="ArrowRight")
    page.keyboard.press("End")
    wait_until(lambda: scroll() >= widest - 1, what="End")
    page.keyboard.press("Home")
    wait_until(lambda: scroll() == 0, what="Home again")

    cdp = page.context.new_cdp_session(page)                      # a finger swiping right-to-left
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": 600, "y": 300}]})
    for step in range(1, 21):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": 600 - step * 20, "y": 300}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    wait_until(lambda: scroll() > 0, what="touch swipe")
