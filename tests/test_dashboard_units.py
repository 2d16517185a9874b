"""The page's pure helpers (poll timing, staleness, money, input parsing, chart thinning), run
as the real ES modules inside chromium; the files are served straight from frontend/."""
from __future__ import annotations

import mimetypes
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

FRONTEND = Path(__file__).resolve().parents[1] / "frontend"
ORIGIN = "http://dashboard.test"


@pytest.fixture
def modules(page_factory):
    """A page that can ``import()`` the dashboard's modules, with no server and no polling."""
    page = page_factory(800, 480)

    def serve(route):
        path = FRONTEND / route.request.url.removeprefix(ORIGIN + "/").split("?")[0]
        if not path.is_file():
            return route.fulfill(status=404, body="")
        route.fulfill(status=200, body=path.read_bytes(),
                      content_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")

    page.route(f"{ORIGIN}/**", serve)
    page.route(f"{ORIGIN}/", lambda route: route.fulfill(status=200, content_type="text/html",
                                                           body="<!doctype html><title>units</title>"))
    page.goto(ORIGIN + "/")

    def run(module: str, body: str):
        return page.evaluate(f"async () => {{ const m = await import('/js/{module}'); {body} }}")

    return run


def test_poll_delay_follows_the_market(modules):
    result = modules("polling.js", """
        const iv = { openMs: 30000, closedMs: 3600000 };
        return [
          m.nextDelay({ ok: true, marketOpen: true }, iv),
          m.nextDelay({ ok: true, marketOpen: false, msUntilOpen: 10 * 3600000 }, iv),
          m.nextDelay({ ok: true, marketOpen: false, msUntilOpen: 20 * 60000 }, iv),
          m.nextDelay({ ok: true, marketOpen: false, msUntilOpen: -5000 }, iv),
          m.nextDelay({ ok: true, marketOpen: false, msUntilOpen: null }, iv),
          m.nextDelay({ ok: false }, iv),
        ];""")
    assert result == [30_000, 3_600_000, 20 * 60_000 + 5_000, 30_000, 3_600_000, 30_000]


def test_interval_override_accepts_only_sane_numbers(modules):
    result = modules("polling.js", """return [
        m.intervalsFromQuery('?poll_open_ms=500&poll_closed_ms=2000'),
        m.intervalsFromQuery('?poll_open_ms=abc&poll_closed_ms=-1'),
        m.intervalsFromQuery('?poll_open_ms=5'),
        m.intervalsFromQuery(''),
      ];""")
    assert result == [{"openMs": 500, "closedMs": 2000}, {"openMs": 30_000, "closedMs": 3_600_000},
                      {"openMs": 30_000, "closedMs": 3_600_000}, {"openMs": 30_000, "closedMs": 3_600_000}]


def test_money_and_percent_read_naturally(modules):
    result = modules("format.js", """return [
        m.formatSignedMoney(581.25), m.formatSignedMoney(-34), m.formatSignedMoney(0),
        m.formatPercent(0.0581), m.formatPercent(-0.00004), m.formatPercent(0), m.formatMoney(NaN),
        m.formatDuration(59.2), m.formatDuration(125), m.formatDuration(600), m.formatDuration(3 * 3600 + 420),
      ];""")
    assert result == ["+$581.25", "−$34.00", "$0.00", "+5.81%", "0.00%", "0.00%", "—",
                      "1 min", "2 min 5 s", "10 min", "3 h 7 min"]


@pytest.mark.parametrize("typed,expected", [
    ("1000", 1000), ("1,000.50", 1000.5), ("$250", 250), (".5", 0.5),
    ("0", None), ("-5", None), ("1.234", None), ("1e5", None), ("", None), ("abc", None),
])
def test_capital_parsing(modules, typed, expected):
    assert modules("add-dialog.js", f"return m.parseCapital({typed!r});") == expected


def test_refusals_are_reworded_only_when_the_api_says_enough(modules):
    result = modules("add-dialog.js", """
        const capital = { body: { error: 'x', field: 'initial_capital', available_cash: 100 }, message: 'x' };
        const other = { body: { error: 'ZZZZ is not a tradable asset at the broker' },
                        message: 'ZZZZ is not a tradable asset at the broker' };
        return [m.refusalText(capital, { initial_capital: 250 }), m.refusalText(other, {})];""")
    assert result == ["The capital $250.00 is more than the available cash $100.00.",
                      "ZZZZ is not a tradable asset at the broker."]


def test_staleness_of_bars_matters_only_while_open_and_of_the_heartbeat_more_loosely_when_closed(modules):
    result = modules("staleness.js", """
        const at = (iso) => new Date(iso);
        const card = (ticker, priceAt, state = 'running') => ({ ticker, priceAt: priceAt && at(priceAt), state });
        const now = at('2026-11-24T15:30:00Z').getTime();
        const alive = { orchestratorAlive: true, heartbeatAgeSeconds: 30 };
        const listing = (open, cards) => ({ marketOpen: open, cards });
        return [
          m.staleReasons({ listing: listing(true, [card('NVDA', '2026-11-24T15:28:00Z')]), health: alive, now }),
          m.staleReasons({ listing: listing(true, [card('NVDA', '2026-11-24T15:10:00Z'),
                                                   card('NVDA', '2026-11-24T15:29:00Z')]), health: alive, now }),
          m.staleReasons({ listing: listing(true, [card('AMD', null), card('TSLA', '2026-11-24T15:00:00Z', 'closing')]),
                           health: { orchestratorAlive: false, heartbeatAgeSeconds: null }, now }).length,
          m.staleReasons({ listing: listing(false, [card('AMD', null)]), health: null, now }),
          m.staleReasons({ listing: listing(false, []),
                           health: { orchestratorAlive: false, heartbeatAgeSeconds: 600 }, now }),
          m.staleReasons({ listing: listing(false, []),
                           health: { orchestratorAlive: false, heartbeatAgeSeconds: null }, now }),
          m.staleReasons({ listing: listing(false, []),
                           health: { orchestratorAlive: false, heartbeatAgeSeconds: 7200 }, now }),
        ];""")
    assert result == [[], [], 2, [], [], [], ["The trading engine (orchestrator) has not reported for 2 h."]]


def test_the_wall_says_which_tickers_the_feed_refused_for_its_symbol_limit(modules):
    result = modules("staleness.js", """
        const now = new Date('2026-11-24T15:30:00Z').getTime();
        const health = { orchestratorAlive: true, heartbeatAgeSeconds: 30, refusedTickers: ['KO'], symbolLimit: 30 };
        return m.staleReasons({ listing: { marketOpen: false, cards: [] }, health, now });""")
    assert result == ["The market-data feed refused KO: symbol limit of 30 reached, so those cards get no prices. "
                      "Stop the cards of a ticker you no longer need."]


def test_chart_thinning_keeps_the_extremes(modules):
    result = modules("chart.js", """
        const points = Array.from({ length: 5000 }, (_, i) => ({ at: new Date(i * 60000), y: Math.sin(i / 50) * 100 }));
        points[1234].y = 1000; points[4321].y = -1000;
        const kept = m.thin(points, 100);
        const ys = kept.map((p) => p.y);
        const sorted = kept.every((p, i) => i === 0 || p.at >= kept[i - 1].at);
        return [kept.length <= 300, Math.max(...ys), Math.min(...ys), kept[0] === points[0],
                kept[kept.length - 1] === points[4999], sorted];""")
    assert result == [True, 1000, -1000, True, True, True]


def test_a_split_and_a_dividend_are_marked_on_the_card_chart_with_their_labels(modules):
    result = modules("chart.js", """
        const model = await import('/js/model.js');
        const history = model.toHistory({
          initial_capital: 20000,
          points: [{ timestamp: '2026-11-23T20:59:00Z', value: 20238, price: 14.15 },
                   { timestamp: '2026-11-24T14:30:00Z', value: 20119, price: 14.05 },
                   { timestamp: '2026-11-25T14:30:00Z', value: 20144, price: 14.05 }],
          trades: [],
          corporate_actions: [
            { timestamp: '2026-11-25T14:30:00Z', kind: 'cash_dividend', label: 'dividend $25.00' },
            { timestamp: '2026-11-24T14:30:00Z', kind: 'forward_split', label: '10:1 split' },
            { timestamp: '2026-11-24T14:30:00Z', kind: 'forward_split', label: '' }]});
        const box = document.createElement('div');
        box.style.cssText = 'width: 300px; height: 120px; position: relative';
        document.body.append(box);
        m.drawChart(box, history, { baseline: 20000 });
        return [...box.querySelectorAll('.chart-event')].map((g) => [g.getAttribute('class'),
                g.querySelector('text').textContent]);""")
    assert result == [["chart-event chart-event--split", "10:1 split"],
                      ["chart-event chart-event--dividend", "dividend $25.00"]]


def test_a_deposit_is_a_labelled_tick_on_the_card_chart_not_a_jump_in_its_line(modules):
    result = modules("chart.js", """
        const model = await import('/js/model.js');
        const history = model.toHistory({
          initial_capital: 10000, capital: 15000,
          points: [{ timestamp: '2026-11-23T15:00:00Z', value: 10250, capital: 10000, pnl: 250, price: 105 },
                   { timestamp: '2026-11-23T15:01:00Z', value: 15300, capital: 15000, pnl: 300, price: 106 }],
          trades: [], corporate_actions: [],
          capital_moves: [{ timestamp: '2026-11-23T15:00:30Z', kind: 'deposit', amount: 5000,
                            label: 'deposit $5,000.00' }]});
        const box = document.createElement('div');
        box.style.cssText = 'width: 300px; height: 120px; position: relative';
        document.body.append(box);
        m.drawChart(box, history, { baseline: 15000 });
        return [history.points.map((p) => p.value),
                [...box.querySelectorAll('.chart-event')].map((g) => [g.getAttribute('class'),
                  g.querySelector('text').textContent])];""")
    assert result == [[15250, 15300], [["chart-event chart-event--capital", "deposit $5,000.00"]]]


def test_a_clock_the_orchestrator_cannot_trust_is_on_the_wall_until_it_agrees(modules):
    result = modules("staleness.js", """
        const model = await import('/js/model.js');
        const listing = { marketOpen: true, cards: [] };
        const now = new Date('2026-11-24T15:30:00Z').getTime();
        const health = (check) => model.toHealth({ orchestrator: { alive: true, age_seconds: 5 }, clock_check: check });
        return [
          m.staleReasons({ listing, health: health({ in_sync: false, skew_seconds: 120.4 }), now }),
          m.staleReasons({ listing, health: health({ in_sync: false, skew_seconds: -8 }), now }),
          m.staleReasons({ listing, health: health({ in_sync: true, skew_seconds: 0.3 }), now }),
          m.staleReasons({ listing, health: health(null), now }),
        ];""")
    assert result == [
        ["Trading paused: this computer's clock is 2 min 1 s ahead of the broker's. It resumes when they agree."],
        ["Trading paused: this computer's clock is 8 s behind the broker's. It resumes when they agree."],
        [], []]
