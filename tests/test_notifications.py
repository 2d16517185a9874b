"""Webhook notifications: a local HTTP receiver gets fills, errors, a frozen ticker, stale data, a quiet
heartbeat and the daily summary; a receiver that hangs delays nothing; limits and failures behave."""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from database import db_manager
from shared import notifier as notifier_module
from orchestra.alerts import Alerts
from shared.config import ConfigError, NotifySettings, Settings
from orchestra.cycle import CycleReport
from shared.notifier import Notifier
from orchestra.trader import TradeOutcome
from system_databse import system_db_manager as manager
from tests.fixtures.exchange import wait_until
from tests.fixtures.orchestrator import run_orchestrator
from tests.test_orchestrator_cli import _account_holds, desk, exchange  # noqa: F401 - fixtures

__all__ = ["desk", "exchange"]


class Receiver:
    """A webhook receiver on 127.0.0.1: records each POST; can answer 500s or hang until released."""

    def __init__(self):
        self.messages: list[dict] = []
        self.fail_next = 0
        self.hang = threading.Event()      # set: requests block until ``release`` is set
        self.release = threading.Event()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                receiver.arrived.set()
                if receiver.hang.is_set():
                    receiver.release.wait(30)
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.messages.append({"path": self.path, "type": self.headers.get("Content-Type"),
                                          "title": self.headers.get("Title"), "body": body})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/autotrader"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[str]:
        return [m["body"] for m in self.messages]

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def make(url, **options) -> Notifier:
    return Notifier(NotifySettings(url=url, timeout=2, **options), secrets=["SECRETKEY123"], sleep=lambda s: None)


def test_plain_text_by_default_and_json_when_the_url_asks(receiver):
    plain = make(receiver.url)
    assert plain.notify("fill", "BUY NVDA", "card 1 NVDA: buy 5 shares at $100.00")
    wait_until(lambda: len(receiver.messages) == 1, message="plain message")
    assert receiver.messages[0]["body"] == "card 1 NVDA: buy 5 shares at $100.00"
    assert receiver.messages[0]["type"].startswith("text/plain") and receiver.messages[0]["title"] == "BUY NVDA"
    as_json = make("json+" + receiver.url)
    as_json.notify("card_error", "card 2 error", "card 2: boom")
    wait_until(lambda: len(receiver.messages) == 2, message="json message")
    body = json.loads(receiver.messages[1]["body"])
    assert receiver.messages[1]["type"] == "application/json" and receiver.messages[1]["path"] == "/autotrader"
    assert (body["event"], body["title"], body["text"]) == ("card_error", "card 2 error", "card 2: boom")


def test_keys_never_leave_in_a_message(receiver):
    make(receiver.url).notify("card_error", "x", "auth failed for key SECRETKEY123")
    wait_until(lambda: receiver.messages, message="message")
    assert receiver.bodies() == ["auth failed for key ***"]


def test_repeats_and_floods_are_held_back(receiver):
    n = make(receiver.url, max_per_hour=3)
    assert [n.notify("frozen", "NVDA frozen", "frozen", key="frozen:NVDA") for _ in range(3)] == [True, False, False]
    n.forget("frozen:NVDA")
    assert n.notify("frozen", "NVDA frozen", "again", key="frozen:NVDA")
    assert n.notify("fill", "a", "1", key="f1")                   # the third of three this hour
    assert n.notify("fill", "b", "2", key="f2") is False          # over the hourly cap
    wait_until(lambda: len(receiver.messages) == 3, message="three delivered")


def test_a_failing_receiver_is_retried_and_logged_once(receiver, caplog):
    n = make(receiver.url, retries=2)
    receiver.fail_next = 2
    n.notify("fill", "a", "retried")                   # two 500s, then delivered on the third try
    wait_until(lambda: receiver.bodies() == ["retried"], message="delivered after retries")
    dead = make("http://127.0.0.1:9/nothing-listens", retries=1)
    with caplog.at_level(logging.WARNING, logger="shared.notifier"):
        for i in range(3):
            dead.notify("fill", f"t{i}", f"m{i}")
        assert dead.flush(20)
    failures = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(failures) == 1 and "127.0.0.1:9" not in failures[0].getMessage()


def test_a_hanging_receiver_delays_nothing(receiver):
    receiver.hang.set()
    n = make(receiver.url)
    n.notify("fill", "a", "first")
    assert receiver.arrived.wait(10)                    # the receiver holds the first request...
    for i in range(5):                                  # ...and every later notify still returns at once
        assert n.notify("fill", f"t{i}", f"m{i}")
    assert not receiver.release.is_set() and receiver.messages == []
    receiver.release.set()
    wait_until(lambda: len(receiver.messages) >= 1, message="delivered once released")


def test_bad_notify_settings_are_refused():
    with pytest.raises(ConfigError, match="NOTIFY_URL must be an http"):
        NotifySettings.from_env({"NOTIFY_URL": "ftp://x"})
    with pytest.raises(ConfigError, match="NOTIFY_MAX_PER_HOUR"):
        NotifySettings.from_env({"NOTIFY_URL": "http://x", "NOTIFY_MAX_PER_HOUR": "0"})
    assert notifier_module.from_settings(Settings.from_env({})).enabled is False


# --------------------------------------------------------------------------- from the daemon


def test_one_cycle_notifies_its_fill_and_its_card_errors(desk, exchange, receiver):
    env, cards, system_db = desk
    _account_holds(exchange, "AAPL", 3)  # the stopped card's shares, so its ticker is not frozen
    result = run_orchestrator({**env, "NOTIFY_URL": receiver.url}, "--once")
    assert result.returncode == 0, result.stderr
    bodies = receiver.bodies()
    # the stopped card's 3 shares cross to the buyer; the other 4 come from the broker
    assert any(b.startswith(f"card {cards['hold']} AAPL: buy 3 shares at $") for b in bodies)
    assert any(b.startswith(f"card {cards['hold']} AAPL: buy 4 shares at $") for b in bodies)
    assert any(b.startswith(f"card {cards['stopped']} AAPL: sell 3 shares at $") for b in bodies)
    assert any(f"card {cards['raiser']}:" in b and "boom from raiser" in b for b in bodies)
    assert not any(env["ALPACA_SECRET"] in b or env["ALPACA_API_KEY"] in b for b in bodies)


def test_a_hanging_receiver_does_not_hold_up_the_cycle(desk, exchange, receiver):
    env, cards, system_db = desk
    _account_holds(exchange, "AAPL", 3)
    receiver.hang.set()
    result = run_orchestrator({**env, "NOTIFY_URL": receiver.url}, "--once")
    assert result.returncode == 0, result.stderr
    assert f"card {cards['hold']} AAPL: buy 4 -> filled 4" in result.stdout   # the cycle traded and finished
    assert receiver.arrived.is_set() and receiver.messages == []              # while the receiver still hung


class ListNotifier:
    enabled = True

    def __init__(self):
        self.sent: list[tuple] = []
        self.forgotten: list[str] = []

    def notify(self, event, title, text, *, key=None):
        self.sent.append((event, text))
        return True

    def forget(self, key):
        self.forgotten.append(key)


def test_frozen_stale_and_the_daily_summary(ledger, market):
    card = manager.create_algorithm("NVDA", "sma_crossover", 10_000, conn=ledger)
    ledger.execute("UPDATE algorithm_instances SET created_at = '2026-11-23T14:00:00Z'")
    manager.record_buy(card, 10, 100.0, timestamp="2026-11-23T15:00:00Z", conn=ledger)
    db_manager.upsert_bars(market, [{"ticker": "NVDA", "timestamp": "2026-11-23T20:40:00Z", "open": 103, "high": 103,
                                     "low": 103, "close": 103, "volume": 1}])
    sink = ListNotifier()
    alerts = Alerts(sink, ledger, market)
    last_minute = datetime(2026, 11, 23, 20, 59, tzinfo=timezone.utc)   # the session's last bar (close 16:00 ET)
    report = CycleReport("2026-11-23T20:59:00Z", True, position_mismatches=[{"ticker": "NVDA", "broker": 12, "cards": 10}])
    report.trades.append(TradeOutcome("c1", card, "NVDA", "sell", 1, "failed"))   # not a fill: not sent
    alerts.after_cycle(report, last_minute)
    events = dict(sink.sent)
    assert events["frozen"] == "NVDA frozen: the broker holds 12 shares, the cards add up to 10; not traded until they agree"
    assert events["stale"] == "no new NVDA bar since 2026-11-23T20:40:00Z (market open)"
    assert events["daily_summary"] == "2026-11-23: P&L +30.00 today, +30.00 in all; 1 fill(s)"
    assert "fill" not in events
    alerts.after_cycle(CycleReport("2026-11-23T20:58:00Z", True, position_mismatches=[]),
                       datetime(2026, 11, 23, 20, 58, tzinfo=timezone.utc))
    assert "frozen:NVDA" in sink.forgotten      # cleared: reported again should it come back


# --------------------------------------------------------------------------- from the API


def test_the_api_notices_a_quiet_heartbeat_once_and_its_return(api_factory, api_clock, ledger, receiver):
    n = make(receiver.url)
    client = api_factory("down", NOTIFIER=n).test_client()
    manager.write_heartbeat("orchestrator", {}, now="2026-11-23T14:00:00Z", conn=ledger)   # an hour before api_clock
    for _ in range(3):
        assert client.get("/api/health").status_code == 200
    manager.write_heartbeat("orchestrator", {}, now="2026-11-23T15:00:00Z", conn=ledger)
    client.get("/api/health")
    wait_until(lambda: len(receiver.messages) == 2, message="quiet and back")
    assert receiver.bodies()[0].startswith("the orchestrator has not reported for 3600 s")
    assert receiver.bodies()[1] == "the orchestrator reports again (2026-11-23T15:00:00Z)"
