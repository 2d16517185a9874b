"""A holiday and then a whole (early-close) trading day, driven by the paper exchange's fast clock.

One real orchestrator process runs from Thanksgiving 2026 (no session) through Friday
2026-11-27 (13:00 New York close) with cards on AAPL (two) and MSFT (one trader plus a raising,
a hanging, a broken and an over-greedy algorithm). During the day the test stops the AAPL cards
the way the API does (status 'stopped'); at the end it sends SIGTERM. The tests below read what a
user would see: the exchange's orders and positions, system.db, the stream's subscriptions,
the heartbeat and the logs.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field

import pytest

from system_databse import system_db_manager as ledger
from system_databse.create_system_db import create_system_db
from tests.fixtures.exchange import start_paper_exchange
from tests.fixtures.orchestrator import (
    TEST_ALGORITHMS,
    NotifySocket,
    orchestrator_env,
    start_orchestrator,
    wait_until,
    write_test_algorithms,
)

pytestmark = pytest.mark.slow(60)

SPEED = 300                        # simulated seconds per real second: the day takes about 45 s
HOLIDAY = "2026-11-26T15:00:00Z"   # Thanksgiving, 10:00 New York: a weekday without a session
DAY_START = "2026-11-27T14:28:00Z"  # two minutes before Friday's open; the session closes 18:00Z
CARDS = {
    "hold_aapl": ("AAPL", "buy_and_hold", 10000.0),
    "blocks_aapl": ("AAPL", "blocks", 10000.0),
    "blocks_msft": ("MSFT", "blocks", 20000.0),
    "raiser": ("MSFT", "raiser", 1000.0),
    "hanger": ("MSFT", "hanger", 1000.0),
    "broken": ("MSFT", "broken", 1000.0),
    "greedy": ("MSFT", "greedy", 1000.0),
}


@dataclass
class TradingDay:
    cards: dict
    holiday_orders: list
    holiday_heartbeat: dict
    holiday_log: str
    subscriptions: dict = field(default_factory=dict)   # checkpoint -> set of tickers at the exchange
    last_aapl_stop: str = ""                            # simulated time the last AAPL card was stopped
    exchange: dict = field(default_factory=dict)        # final /_sim/state
    stream_history: list = field(default_factory=list)
    journal: list = field(default_factory=list)
    transactions: dict = field(default_factory=dict)    # card id -> transactions, oldest first
    final_cards: dict = field(default_factory=dict)
    heartbeat: dict = field(default_factory=dict)
    output: str = ""
    log_file: str = ""
    stream_log: str = ""
    exit_code: int | None = None
    notifications: list = field(default_factory=list)


def _subscribed(exchange) -> set[str]:
    connections = exchange.state()["stream"]["connections"]
    return {symbol for c in connections for symbol in c["subscriptions"]["bars"]}


def _subscribed_with(exchange, ticker: str) -> set[str] | None:
    subscribed = _subscribed(exchange)
    return subscribed if ticker in subscribed else None


def _shares(conn, card_id: int) -> int:
    return ledger.get_position_totals(card_id, conn=conn)["shares"]


def _sim_now(exchange) -> str:
    return exchange.state()["clock"]["now"][:19] + "Z"


def _heartbeat(conn) -> dict:
    beat = ledger.get_heartbeat("orchestrator", conn=conn)
    return beat["payload"] if beat else {}


def _closed_heartbeat(conn) -> dict | None:
    beat = _heartbeat(conn)
    return beat if beat.get("market_open") is False else None


@pytest.fixture(scope="module")
def trading_day(tmp_path_factory, stocks_db_template) -> TradingDay:
    tmp = tmp_path_factory.mktemp("trading-day")
    system_db, stocks_db = tmp / "system.db", tmp / "stocks.db"
    create_system_db(system_db)
    shutil.copyfile(stocks_db_template, stocks_db)
    algorithms = write_test_algorithms(tmp / "algorithms")
    conn = ledger.get_connection(system_db)
    cards = {name: ledger.create_algorithm(t, a, c, conn=conn) for name, (t, a, c) in CARDS.items()}
    exchange = start_paper_exchange(tmp / "exchange", start=HOLIDAY, speed=SPEED)
    notify = NotifySocket(tmp / "notify.sock")
    env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db, algorithms_dir=algorithms,
                           log_dir=tmp / "logs", NOTIFY_SOCKET=str(tmp / "notify.sock"))
    proc = start_orchestrator(env, tmp)
    try:
        # Thanksgiving: the daemon must find the market closed and sleep until Friday's open.
        proc.wait_for(r"off hours: next cycle at 2026-11-27T14:31:00Z \(clock 2026-11-26T")
        wait_until(lambda: _sim_now(exchange) >= "2026-11-26T15:15:00Z", 60, "15 holiday minutes to pass")
        day = TradingDay(cards, exchange.state()["orders"], _heartbeat(conn), proc.output())

        exchange.set_clock(DAY_START)
        wait_until(lambda: _shares(conn, cards["hold_aapl"]) == 7, 90, "the buy-and-hold card to buy")
        day.subscriptions["two AAPL cards"] = _subscribed(exchange)

        ledger.stop_algorithm(cards["hold_aapl"], conn=conn)
        stopped_at = _sim_now(exchange)
        wait_until(lambda: _shares(conn, cards["hold_aapl"]) == 0, 90, "the stopped card to be liquidated")
        wait_until(lambda: (_heartbeat(conn).get("last_cycle_at") or "") > stopped_at, 90, "a cycle after the stop")
        day.subscriptions["one AAPL card"] = _subscribed(exchange)

        # A new algorithm file and a card using it, on a ticker nobody watched yet.
        (algorithms / "late_buyer.py").write_text(TEST_ALGORITHMS["buy_and_hold"].replace('("buy", 7)', '("buy", 4)'))
        cards["late_nvda"] = ledger.create_algorithm("NVDA", "late_buyer", 10000.0, conn=conn)
        wait_until(lambda: _shares(conn, cards["late_nvda"]) == 4, 90, "the card added during the day to buy")
        day.subscriptions["NVDA card added"] = wait_until(lambda: _subscribed_with(exchange, "NVDA"), 30,
                                                          "NVDA to be subscribed")

        ledger.stop_algorithm(cards["blocks_aapl"], conn=conn)
        day.last_aapl_stop = _sim_now(exchange)
        wait_until(lambda: "AAPL" not in _subscribed(exchange), 90, "AAPL to be unsubscribed")
        day.subscriptions["no AAPL card"] = _subscribed(exchange)

        proc.wait_for(r"off hours: next cycle at 2026-11-30T14:31:00Z \(clock 2026-11-27T1[78]:", 240)
        day.heartbeat = wait_until(lambda: _closed_heartbeat(conn), 60, "the heartbeat to report the close")
        day.exchange = exchange.state()
        day.stream_history = day.exchange["stream"]["history"]
        day.exit_code = proc.terminate()
        day.notifications = notify.drain()
        day.journal = ledger.get_orders(conn=conn)
        day.transactions = {cid: list(reversed(ledger.get_transactions(cid, conn=conn))) for cid in cards.values()}
        day.final_cards = {cid: ledger.get_algorithm(cid, conn=conn) for cid in cards.values()}
        day.output = proc.output()
        day.log_file = (tmp / "logs" / "orchestrator.log").read_text()
        day.stream_log = (tmp / "logs" / "stream.log").read_text()
        return day
    finally:
        proc.kill()
        exchange.stop()
        notify.close()
        conn.close()


def _cycle_minutes(text: str) -> list[str]:
    return re.findall(r"cycle (\d{4}-\d\d-\d\dT\d\d:\d\d:00Z): \d+ card", text)


def test_a_holiday_produces_no_cycles_and_no_orders(trading_day):
    assert _cycle_minutes(trading_day.holiday_log) == []
    assert trading_day.holiday_orders == []
    assert trading_day.holiday_heartbeat["market_open"] is False
    assert trading_day.holiday_heartbeat["last_cycle_at"] is None
    assert not any(m.startswith("2026-11-26") for m in _cycle_minutes(trading_day.output))


def test_cycles_run_from_the_open_until_the_early_close_only(trading_day):
    minutes = _cycle_minutes(trading_day.output)
    assert minutes, "no cycle ran on the trading day"
    assert all("2026-11-27T14:30:00Z" <= m <= "2026-11-27T17:58:00Z" for m in minutes)
    assert minutes[0] < "2026-11-27T14:45:00Z" and minutes[-1] > "2026-11-27T17:45:00Z"
    assert minutes == sorted(set(minutes)), "a minute ran twice or out of order"


def test_every_exchange_fill_is_recorded_once_on_the_cards_it_was_for(trading_day):
    filled = {o["client_order_id"]: o for o in trading_day.exchange["orders"] if int(o["filled_qty"]) > 0}
    transactions = {t["id"]: (cid, t) for cid, rows in trading_day.transactions.items() for t in rows}
    assert len(filled) >= 20, "the day should have produced a good number of trades"
    allocated = [j for j in trading_day.journal if j["transaction_id"]]
    assert sorted(j["transaction_id"] for j in allocated) == sorted(transactions), "a transaction without its order"
    for coid, order in filled.items():
        parts = [j for j in allocated if j["client_order_id"] == coid and j["kind"] == "order"]
        assert sum(j["filled_shares"] for j in parts) == int(order["filled_qty"])
        for part in parts:
            card_id, tx = transactions[part["transaction_id"]]
            assert card_id == part["algorithm_id"] and trading_day.final_cards[card_id]["ticker"] == order["symbol"]
            assert (tx["type"], tx["shares"]) == (order["side"], part["filled_shares"])
            assert tx["price"] == pytest.approx(float(order["filled_avg_price"]))
        assert re.fullmatch(rf"at-{order['symbol']}-2026112\d{{5}}-[0-9a-f]{{6}}", coid)
    minutes = [(o["symbol"], o["client_order_id"].split("-")[2]) for o in trading_day.exchange["orders"]]
    assert len(minutes) == len(set(minutes)), "two orders on one ticker in one minute"
    assert all(j["status"] in ("filled", "cancelled", "failed", "crossed") for j in trading_day.journal), \
        "an order was left open"


def test_broker_positions_equal_the_sum_of_the_cards(trading_day):
    positions = {s: p["qty"] for s, p in trading_day.exchange["positions"].items()}
    by_ticker: dict[str, int] = {}
    for cid, rows in trading_day.transactions.items():
        ticker = trading_day.final_cards[cid]["ticker"]
        held = sum(t["shares"] if t["type"] == "buy" else -t["shares"] for t in rows)
        if held:
            by_ticker[ticker] = by_ticker.get(ticker, 0) + held
    assert positions == by_ticker
    assert "AAPL" not in positions
    assert trading_day.heartbeat["position_mismatches"] == []


def test_subscriptions_are_reference_counted(trading_day):
    subs = trading_day.subscriptions
    assert subs["two AAPL cards"] == {"AAPL", "MSFT"}
    assert subs["one AAPL card"] == {"AAPL", "MSFT"}
    assert subs["NVDA card added"] == {"AAPL", "MSFT", "NVDA"}
    assert subs["no AAPL card"] == {"MSFT", "NVDA"}
    aapl_changes = [(h["action"], h["at"]) for h in trading_day.stream_history if "AAPL" in h.get("bars", [])]
    actions = [action for action, _ in aapl_changes]  # (a subscribe frame repeats the symbols already held)
    assert actions.count("unsubscribe") == 1 and actions[-1] == "unsubscribe", "dropped once, never re-added"
    assert aapl_changes[-1][1] >= trading_day.last_aapl_stop, "AAPL was dropped before its last card stopped"


def test_a_card_added_during_the_day_is_subscribed_backfilled_then_run(trading_day):
    card, log = trading_day.cards["late_nvda"], trading_day.output
    subscribed = log.index("subscribed NVDA (1 card(s))")
    backfilled = re.search(r"backfilled (\d+) bar\(s\) of NVDA", log)
    bought = log.index(f"card {card} NVDA: bought 4 shares")
    assert subscribed < backfilled.start() < bought
    assert int(backfilled.group(1)) > 1000  # a new ticker gets several sessions of history
    assert [(t["type"], t["shares"]) for t in trading_day.transactions[card]] == [("buy", 4)]


def test_a_stopped_card_holding_shares_is_liquidated_on_that_card(trading_day):
    card = trading_day.cards["hold_aapl"]
    rows = trading_day.transactions[card]
    # Sold in one order, or part crossed inside the ledger with a card buying AAPL that minute.
    assert (rows[0]["type"], rows[0]["shares"]) == ("buy", 7)
    assert [t["type"] for t in rows[1:]] == ["sell"] * (len(rows) - 1) and sum(t["shares"] for t in rows[1:]) == 7
    for sale in rows[1:]:
        journaled = next(j for j in trading_day.journal if j["transaction_id"] == sale["id"])
        assert journaled["reason"] == "card stopped: closing its position of 7 shares"
    assert trading_day.final_cards[card]["status"] == "stopped"
    other = trading_day.transactions[trading_day.cards["blocks_aapl"]]
    assert sum(t["shares"] if t["type"] == "buy" else -t["shares"] for t in other) == 0


def test_raising_hanging_and_broken_algorithms_do_not_stop_the_others(trading_day):
    cards, log = trading_day.cards, trading_day.output
    assert re.search(rf"card {cards['raiser']} MSFT \(raiser\): on_data raised RuntimeError: boom from raiser", log)
    assert re.search(rf"card {cards['hanger']} MSFT \(hanger\): on_data did not return within 1s", log)
    assert re.search(rf"card {cards['hanger']} MSFT \(hanger\): its algorithm is still running", log)
    assert re.search(rf"card {cards['broken']} MSFT \(broken\): syntax error in broken.py line 3", log)
    for name in ("raiser", "hanger", "broken", "greedy"):
        assert trading_day.transactions[cards[name]] == []
    first_failure = log.index("boom from raiser")
    later_trades = re.findall(rf"card {cards['blocks_msft']} MSFT: (?:bought|sold) \d+ shares", log[first_failure:])
    assert len(later_trades) >= 5


def test_every_trade_and_refusal_is_logged_with_card_ticker_shares_price_and_reason(trading_day):
    log = trading_day.log_file
    for cid, rows in trading_day.transactions.items():
        ticker = trading_day.final_cards[cid]["ticker"]
        for tx in rows:
            verb = "bought" if tx["type"] == "buy" else "sold"
            assert re.search(rf"card {cid} {ticker}: {verb} {tx['shares']} shares (crossed inside the ledger )?"
                             rf"at \${tx['price']:,.2f}", log), (cid, tx)
    greedy = trading_day.cards["greedy"]
    assert re.search(rf"card {greedy} MSFT: refused buy 1000000 shares at \$[\d,.]+: refused: buy 1000000 shares"
                     r" at ~\$[\d,.]+ costs \$[\d,.]+, more than the card's uninvested cash \$1,000.00", log)
    assert re.search(r"card \d+ AAPL: wants to buy 7 shares \(last price \$[\d,.]+; reason: buy 7 shares", log)
    assert re.search(r"AAPL: sending buy \d+ shares for \d card\(s\) as at-AAPL-\d{12}-[0-9a-f]{6}", log)


def test_heartbeat_reports_cycles_stream_and_errors(trading_day):
    beat = trading_day.heartbeat
    assert beat["clock"] == "broker" and beat["market_open"] is False
    # the last cycle ran for one of the session's last minutes, when its bar came (a busy machine may
    # run it a little after the 18:00 close)
    assert "2026-11-27T17:45:00Z" < beat["last_cycle_at"] < "2026-11-27T18:05:00Z"
    assert beat["stream"]["connected"] is True and beat["stream"]["subscriptions"] == ["MSFT", "NVDA"]
    assert beat["last_bar"]["MSFT"] >= "2026-11-27T17:50:00Z"
    assert beat["errors_last_hour"] > 0


def test_sigterm_exits_cleanly_and_systemd_is_told(trading_day):
    assert trading_day.exit_code == 0
    assert "SIGTERM received: finishing the current cycle" in trading_day.output
    assert "orchestrator stopped" in trading_day.output
    assert trading_day.notifications[0] == "READY=1"
    assert "STOPPING=1" in trading_day.notifications
    assert "WATCHDOG=1" in trading_day.notifications


def test_start_up_line_and_separate_stream_log(trading_day):
    first = trading_day.log_file.splitlines()[0]
    assert "orchestrator starting" in first and "PAPER trading, iex feed, broker clock" in first
    assert "test-secret" not in trading_day.log_file and "test-secret" not in trading_day.stream_log
    assert "subscribed AAPL" in trading_day.stream_log and "subscribed AAPL" not in trading_day.log_file
    assert "unsubscribed AAPL" in trading_day.stream_log
