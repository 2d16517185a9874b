"""The add dialog on the 800x480 wall: an algorithm's parameters with defaults and bounds, and a
PREVIEW that backtests the last 20 trading days and says what the CLI backtest says."""
from __future__ import annotations

import re

import pytest

from scripts import backtest
from system_databse import system_db_manager
from tests.fixtures.browser import dashboard_url, wait_until
from tests.test_dashboard_add_stop import open_add_form, type_on_screen

pytestmark = pytest.mark.browser


@pytest.fixture
def wall(paper_exchange_factory, live_api_factory):
    exchange = paper_exchange_factory(start="2026-11-24T16:00:00Z", speed=1)
    return live_api_factory(exchange, PREVIEW_ENV=exchange.env, HEARTBEAT_STALE_SECONDS=10**7)


def cli_report(stocks_db, capsys, start: str, end: str, *params: str) -> str:
    args = ["sma_crossover", "AAPL", "--start", start, "--end", end, "--capital", "10000", "--db", str(stocks_db),
            "--no-progress"]
    for param in params:
        args += ["--param", param]
    assert backtest.main(args) == 0
    return capsys.readouterr().out


def test_preview_shows_the_curve_and_figures_the_cli_backtest_gives(wall, page_factory, stocks_db, capsys,
                                                                    save_screenshot):
    page = page_factory(800, 480, has_touch=True)
    page.goto(dashboard_url(wall))
    open_add_form(page)
    page.select_option("#add-algorithm", "sma_crossover")
    fields = page.locator("#add-params .field")
    assert fields.all_inner_texts() == ["fast\n2–200", "slow\n3–400"]
    assert page.input_value('[data-param="fast"]') == "20" and page.input_value('[data-param="slow"]') == "50"
    page.click("#add-ticker")
    type_on_screen(page, "AAPL")
    page.click("#add-capital")
    type_on_screen(page, "10000")
    page.click('[data-param="fast"]')
    assert page.inner_text("#add-description") == "fast: fast moving average, in minute bars (shorter than slow)"
    page.click('#add-keyboard [data-key="Backspace"]')
    page.click('#add-keyboard [data-key="Backspace"]')
    type_on_screen(page, "10")
    assert page.input_value('[data-param="fast"]') == "10"

    page.click("#add-preview-button")
    page.wait_for_selector('#add-preview-figures [data-figure="trades"]', timeout=60_000)
    status = page.inner_text("#add-preview-status")
    start, end = re.match(r"AAPL (\S+) to (\S+) \(20 trading days\)", status).groups()
    assert page.locator("#add-preview-chart polyline").count() == 2  # the card and buy-and-hold
    save_screenshot(page, "add-dialog-preview-800x480")

    report = cli_report(stocks_db, capsys, start, end, "fast=10")
    trades = int(re.search(r"^trades\s+([\d,]+)", report, re.M).group(1).replace(",", ""))
    percent = re.search(r"^P&L .*\(([+-][\d.]+%)\)", report, re.M).group(1)
    figure = lambda name: page.inner_text(f'#add-preview-figures [data-figure="{name}"]')  # noqa: E731
    assert figure("trades") == str(trades) and trades > 0
    assert figure("total_return").replace("−", "-") == (percent if percent not in ("+0.00%", "-0.00%") else "0.00%")
    final = re.search(r"^final value\s+\$([\d,.]+)", report, re.M).group(1)
    assert f"→ ${final}" in status
    assert "parameters    fast=10, slow=50" in report
    for name in ("buy_hold_return", "max_drawdown", "win_rate", "time_in_market"):
        assert re.fullmatch(r"[+−]?\d+\.\d+%|—", figure(name)), (name, figure(name))

    page.click("#add-submit")  # the card keeps the values it was previewed with
    page.wait_for_selector("#add-dialog", state="hidden")
    [card] = system_db_manager.get_all_algorithms("running")
    assert system_db_manager.get_algorithm_parameters(card["id"]) == {"fast": 10, "slow": 50}


def test_progress_and_refusals_are_said_in_plain_words(wall, page_factory):
    page = page_factory(800, 480, has_touch=True)
    page.console_watch.expect_failed("/api/preview", 400)
    page.goto(dashboard_url(wall))
    progress = page.evaluate("""async () => {
        const { progressText } = await import('./js/preview.js');
        return [progressText({ state: 'fetching', progress: { phase: 'fetching', done: 3, total: 21 } }),
                progressText({ state: 'replaying', progress: { phase: 'replaying', done: 0, total: 1 } })];
    }""")
    assert progress == ["Fetching history: 3 of 21 days…", "Backtesting…"]
    open_add_form(page)
    page.select_option("#add-algorithm", "sma_crossover")
    page.fill("#add-ticker", "AAPL")
    page.fill("#add-capital", "1000")
    page.fill('[data-param="slow"]', "4000")
    page.click("#add-preview-button")
    wait_until(lambda: "No preview." in page.inner_text("#add-preview-status"), what="the refusal")
    assert page.inner_text("#add-preview-status") == \
        "No preview. parameter 'slow' must be an integer from 3 to 400, got 4000"
    page.fill('[data-param="slow"]', "4x")
    page.click("#add-preview-button")
    assert page.inner_text("#add-error") == "Enter slow as a whole number."
