"""The orchestrator's parts one by one: subscriptions, market minutes, clocks, logs, systemd,
heartbeat, the card runner (time budget, reload on edit)."""
from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from database import db_manager
from orchestra.alpaca_wrapper import AlpacaWrapper
from orchestra.card_runner import CardRunner
from shared.clock import BrokerClock, ClockUnavailable, SystemClock
from shared.config import AlpacaSettings, Settings
from orchestra.daemon import is_cycle_minute, next_wake
from orchestra.exceptions import AlgorithmBusy, AlgorithmError, AlgorithmTimeout
from orchestra.heartbeat import ErrorLog, HeartbeatWriter
from shared.logging_setup import setup_logging
from orchestra import systemd
from orchestra.websocket_manager import WebSocketManager
from system_databse import system_db_manager as manager
from tests.fixtures.orchestrator import write_test_algorithms


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- subscriptions


class RecordingStreamer:
    """Stands in for the stream connection: records what the manager asks of it."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []
        self.subscriptions: frozenset = frozenset()
        self.connected, self.last_message_at, self.reconnects = True, None, 0

    def subscribe(self, ticker):
        self.calls.append(("subscribe", ticker))
        self.subscriptions = self.subscriptions | {ticker}

    def unsubscribe(self, ticker):
        self.calls.append(("unsubscribe", ticker))
        self.subscriptions = self.subscriptions - {ticker}


def test_a_ticker_stays_subscribed_until_its_last_card_stops():
    streamer = RecordingStreamer()
    streams = WebSocketManager(streamer)
    nvda1, nvda2 = {"id": 1, "ticker": "NVDA"}, {"id": 2, "ticker": "nvda"}
    assert streams.update_subscriptions([nvda1]) == (["NVDA"], [])
    assert streams.update_subscriptions([nvda1, nvda2]) == ([], [])
    assert streams.active_tickers == {"NVDA": 2}
    assert streams.update_subscriptions([nvda2]) == ([], [])
    assert streams.active_tickers == {"NVDA": 1}
    assert streams.update_subscriptions([]) == ([], ["NVDA"])
    assert streamer.calls == [("subscribe", "NVDA"), ("unsubscribe", "NVDA")]
    assert streams.status()["subscriptions"] == []


# --------------------------------------------------------------------------- market minutes


@pytest.mark.parametrize("now, wake", [
    ("2026-11-23T14:29:50Z", "2026-11-23T14:31:00Z"),  # before the open: the first bar closes at 14:31
    ("2026-11-23T15:10:20Z", "2026-11-23T15:11:00Z"),  # in session: the next minute boundary
    ("2026-11-23T20:59:30Z", "2026-11-24T14:31:00Z"),  # last minute: no cycle after the close
    ("2026-11-26T15:00:00Z", "2026-11-27T14:31:00Z"),  # Thanksgiving: straight to Friday
    ("2026-11-27T17:59:10Z", "2026-11-30T14:31:00Z"),  # early close at 18:00Z, then the weekend
    ("2026-03-09T13:29:00Z", "2026-03-09T13:31:00Z"),  # after the switch to daylight time: 09:30 is 13:30Z
])
def test_next_wake_follows_the_nyse_calendar(now, wake):
    assert next_wake(utc(now)) == utc(wake)


def test_only_minutes_whose_close_is_in_session_are_cycles():
    assert is_cycle_minute(utc("2026-11-27T17:58:00Z"))
    assert not is_cycle_minute(utc("2026-11-27T17:59:00Z"))
    assert not is_cycle_minute(utc("2026-11-26T15:00:00Z"))
    assert not is_cycle_minute(utc("2026-11-28T15:00:00Z"))


# --------------------------------------------------------------------------- clocks


class FakeTime:
    def __init__(self):
        self.real = 100.0

    def __call__(self):
        return self.real


def test_broker_clock_measures_the_simulation_speed_and_extrapolates():
    real, sim = FakeTime(), {"now": utc("2026-11-23T15:00:00Z")}
    clock = BrokerClock(lambda: sim["now"], monotonic=real)
    assert clock.now() == utc("2026-11-23T15:00:00Z")
    real.real += 1.0
    sim["now"] += timedelta(seconds=300)
    assert clock.now() == utc("2026-11-23T15:05:00Z")
    assert clock.rate() == pytest.approx(300.0)
    real.real += 0.5  # between polls: extrapolated, the broker is not asked
    sim["now"] = utc("2030-01-01T00:00:00Z")
    assert clock.now() == utc("2026-11-23T15:07:30Z")


def test_broker_clock_treats_a_set_clock_as_a_jump_and_keeps_its_rate():
    real, sim = FakeTime(), {"now": utc("2026-11-26T15:00:00Z")}
    clock = BrokerClock(lambda: sim["now"], monotonic=real)
    for _ in range(3):
        clock.poll()
        real.real += 1.0
        sim["now"] += timedelta(seconds=200)
    sim["now"] = utc("2026-11-27T14:28:00Z")
    clock.poll()
    assert clock.rate() == pytest.approx(200.0)
    real.real += 0.25
    assert clock.peek() == utc("2026-11-27T14:28:50Z")
    sim["now"] = utc("2026-11-20T10:00:00Z")  # set backwards: a jump as well
    real.real += 1.0
    assert clock.now() == utc("2026-11-20T10:00:00Z")
    assert clock.rate() == pytest.approx(200.0)


def test_broker_clock_sees_a_second_jump_before_it_has_measured_the_speed_again():
    """A restart sets the simulation back, and a quarter second later the night is skipped: the
    new speed must not be measured across that second jump (it read 18:18 for 14:28 and the
    daemon took the session for over)."""
    real, sim = FakeTime(), {"now": utc("2026-11-25T20:55:00Z")}
    clock = BrokerClock(lambda: sim["now"], monotonic=real)
    for _ in range(3):
        clock.poll()
        real.real += 0.25
        sim["now"] += timedelta(seconds=75)  # 300x
    sim["now"] = utc("2026-11-25T20:50:00Z")  # restarted a little behind: a jump
    clock.poll()
    real.real += 0.25
    sim["now"] = utc("2026-11-27T14:28:00Z")  # the night skipped at once
    clock.poll()
    for _ in range(3):
        real.real += 0.25
        sim["now"] += timedelta(seconds=75)
        clock.poll()
    assert clock.rate() == pytest.approx(300.0)
    real.real += 0.1
    assert clock.peek() == utc("2026-11-27T14:32:15Z")


def test_a_fresh_broker_clock_never_measures_its_speed_across_a_skipped_night():
    real, sim = FakeTime(), {"now": utc("2026-11-25T20:59:00Z")}
    clock = BrokerClock(lambda: sim["now"], monotonic=real)
    clock.poll()
    real.real += 0.3
    sim["now"] = utc("2026-11-27T14:28:00Z")  # the night skipped before any rate was measured
    clock.poll()
    for _ in range(4):
        real.real += 0.25
        sim["now"] += timedelta(seconds=75)
        clock.poll()
    assert clock.rate() == pytest.approx(300.0)
    assert clock.peek() == utc("2026-11-27T14:33:00Z")


def test_broker_clock_learns_a_hundredfold_speed_up_right_after_a_jump():
    real, sim = FakeTime(), {"now": utc("2026-11-23T15:00:00Z")}
    clock = BrokerClock(lambda: sim["now"], monotonic=real)
    for _ in range(3):
        clock.poll()
        real.real += 1.0
        sim["now"] += timedelta(seconds=1)  # real time
    sim["now"] = utc("2026-11-24T14:30:00Z")  # set forward, and from now on 1000x
    clock.poll()
    for _ in range(4):
        real.real += 0.25
        sim["now"] += timedelta(seconds=250)
        clock.poll()
    assert clock.rate() == pytest.approx(1000.0)


def test_broker_clock_learns_a_new_speed_without_a_jump():
    real, sim = FakeTime(), {"now": utc("2026-11-23T15:00:00Z")}
    clock = BrokerClock(lambda: sim["now"], monotonic=real)
    clock.poll()
    for _ in range(3):
        real.real += 1.0
        sim["now"] += timedelta(seconds=60)
        clock.poll()
    for _ in range(3):  # the simulation speeds up to 1000x
        real.real += 1.0
        sim["now"] += timedelta(seconds=1000)
        clock.poll()
    assert clock.rate() == pytest.approx(1000.0)


def test_broker_clock_unreachable_is_temporary_and_falls_back_to_extrapolation():
    real, state = FakeTime(), {"up": False}

    def fetch():
        if not state["up"]:
            raise ConnectionError("connection refused")
        return utc("2026-11-23T15:00:00Z")

    clock = BrokerClock(fetch, monotonic=real)
    with pytest.raises(ClockUnavailable, match="broker clock unavailable"):
        clock.now()
    state["up"] = True
    clock.now()
    state["up"] = False
    real.real += 2.0
    assert clock.now() == utc("2026-11-23T15:00:02Z")


def test_broker_clock_sleeps_until_the_exchange_reaches_the_target(paper_exchange_factory):
    exchange = paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=120)
    broker = AlpacaWrapper(AlpacaSettings.from_env(exchange.env))
    clock = BrokerClock(lambda: broker.get_clock().timestamp)
    target = clock.now() + timedelta(minutes=3)
    assert clock.sleep_until(target, threading.Event()) is True
    assert broker.get_clock().timestamp >= target


@pytest.mark.parametrize("clock", [SystemClock(), BrokerClock(lambda: datetime.now(timezone.utc))],
                         ids=["system", "broker"])
def test_a_stop_request_ends_a_long_sleep(clock):
    stop = threading.Event()
    result = {}
    sleeper = threading.Thread(target=lambda: result.setdefault(
        "reached", clock.sleep_until(datetime.now(timezone.utc) + timedelta(hours=10), stop)))
    sleeper.start()
    stop.set()
    sleeper.join(timeout=30)
    assert not sleeper.is_alive() and result["reached"] is False


# --------------------------------------------------------------------------- logs


@pytest.fixture
def clean_root_logger():
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_logs_go_to_daily_files_with_stream_events_apart_and_secrets_masked(tmp_path, clean_root_logger):
    env = {"AUTOTRADER_LOG_DIR": str(tmp_path / "logs"), "ALPACA_API_KEY": "key-123456", "ALPACA_SECRET": "s3cr3t-value",
           "AUTOTRADER_LOG_KEEP_DAYS": "3"}
    directory = setup_logging("orchestrator", Settings.from_env(env), console=False)
    setup_logging("orchestrator", Settings.from_env(env), console=False)  # twice: still one set of handlers
    logging.getLogger("orchestra.cycle").info("cycle ran with s3cr3t-value in it")
    logging.getLogger("database.realtime_pull").info("stream connected")
    logging.getLogger("orchestra.websocket_manager").info("subscribed NVDA")
    for handler in logging.getLogger().handlers:
        handler.flush()
    main_log = (directory / "orchestrator.log").read_text()
    stream_log = (directory / "stream.log").read_text()
    assert main_log.count("cycle ran with *** in it") == 1 and "s3cr3t-value" not in main_log
    assert "stream connected" in stream_log and "subscribed NVDA" in stream_log
    assert "stream connected" not in main_log and "cycle ran" not in stream_log
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "_autotrader", False)]
    assert {h.backupCount for h in handlers if hasattr(h, "backupCount")} == {3}
    rotating = next(h for h in handlers if getattr(h, "baseFilename", "").endswith("orchestrator.log"))
    midnight = datetime(2026, 11, 10, tzinfo=timezone.utc).timestamp()
    for day in range(6):  # six midnights pass: only three old files are kept
        logging.getLogger("orchestra.cycle").info("day %d", day)
        rotating.rolloverAt = midnight + (day + 1) * 86400
        rotating.doRollover()
    kept = sorted(p.name for p in directory.glob("orchestrator.log.*"))
    assert kept == ["orchestrator.log.2026-11-13", "orchestrator.log.2026-11-14", "orchestrator.log.2026-11-15"]


def test_the_api_process_gets_its_own_log_file(tmp_path, clean_root_logger):
    directory = setup_logging("api", Settings.from_env({"AUTOTRADER_LOG_DIR": str(tmp_path)}), console=False)
    logging.getLogger("api.cards").warning("card 3 not found")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "card 3 not found" in (directory / "api.log").read_text()
    assert not (directory / "stream.log").exists()


# --------------------------------------------------------------------------- systemd


def test_systemd_notifications_reach_the_notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(5)
        env = {"NOTIFY_SOCKET": str(path)}
        assert systemd.ready(env) and systemd.watchdog(env) and systemd.status("trading", env) and systemd.stopping(env)
        received = [listener.recv(100).decode() for _ in range(4)]
    assert received == ["READY=1", "WATCHDOG=1", "STATUS=trading", "STOPPING=1"]


def test_systemd_abstract_socket_and_no_socket(tmp_path):
    name = f"autotrader-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        listener.settimeout(5)
        assert systemd.ready({"NOTIFY_SOCKET": "@" + name})
        assert listener.recv(100) == b"READY=1"
    assert systemd.ready({}) is False
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "300000000"}) == 150.0
    assert systemd.watchdog_interval({}) is None


def test_a_listener_that_does_not_read_never_blocks_the_daemon(tmp_path):
    path = tmp_path / "full.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        results = [systemd.watchdog({"NOTIFY_SOCKET": str(path)}) for _ in range(5000)]
    assert results[0] is True and results[-1] is False


# --------------------------------------------------------------------------- heartbeat


def test_heartbeat_is_written_each_cycle_but_not_rewritten_while_nothing_changes(ledger):
    real = FakeTime()
    writer = HeartbeatWriter(ledger, refresh_seconds=300, monotonic=real)
    payload = {"last_cycle_at": None, "market_open": False, "stream": {"connected": True, "last_message_at": "a"}}
    assert writer.write(payload, force=True)
    assert not writer.write({**payload, "stream": {"connected": True, "last_message_at": "b"}})
    assert writer.write({**payload, "market_open": True})
    real.real += 301
    assert writer.write({**payload, "market_open": True})
    stored = manager.get_heartbeat("orchestrator", conn=ledger)["payload"]
    assert stored["market_open"] is True and stored["pid"] == os.getpid()


def test_error_log_counts_the_last_hour():
    real = FakeTime()
    errors = ErrorLog(monotonic=real)
    errors.record("a")
    real.real += 1800
    errors.record("b")
    assert errors.last_hour() == 2
    real.real += 1801
    assert errors.last_hour() == 1


# --------------------------------------------------------------------------- card runner


@pytest.fixture
def runner_setup(tmp_path, ledger, market):
    directory = write_test_algorithms(tmp_path / "algorithms", ["hanger", "raiser", "buy_and_hold"])
    start = utc("2026-11-23T14:30:00Z")
    db_manager.upsert_bars(market, [
        {"ticker": "AAPL", "timestamp": start + timedelta(minutes=i), "open": 100 + i, "high": 101 + i,
         "low": 99 + i, "close": 100.5 + i, "volume": 1000} for i in range(10)])
    runner = CardRunner(market, ledger, directory=directory, timeout=0.5)
    return runner, directory, start + timedelta(minutes=9)


def _card(ledger, algorithm_type: str) -> dict:
    return manager.get_algorithm(manager.create_algorithm("AAPL", algorithm_type, 10000.0, conn=ledger), conn=ledger)


def test_a_card_decides_on_the_bar_of_its_minute(runner_setup, ledger):
    runner, _, minute = runner_setup
    made = runner.decide(_card(ledger, "buy_and_hold"), minute - timedelta(minutes=2))
    assert (made.decision.action, made.decision.shares, made.price) == ("buy", 7, 107.5)
    assert made.last_bar == "2026-11-23T14:37:00Z"


def test_a_hanging_algorithm_times_out_then_is_skipped_while_still_running(runner_setup, ledger):
    runner, _, minute = runner_setup
    card = _card(ledger, "hanger")
    with pytest.raises(AlgorithmTimeout, match="on_data did not return within 0.5s") as timed_out:
        runner.decide(card, minute)
    assert timed_out.value.card_id == card["id"]
    with pytest.raises(AlgorithmBusy, match="still running"):
        runner.decide(card, minute)
    made = runner.decide(_card(ledger, "buy_and_hold"), minute)  # other cards are unaffected
    assert made.decision.action == "buy"


def test_a_raising_algorithm_becomes_a_card_error(runner_setup, ledger):
    runner, _, minute = runner_setup
    card = _card(ledger, "raiser")
    with pytest.raises(AlgorithmError, match="boom from raiser") as raised:
        runner.decide(card, minute)
    assert raised.value.card_id == card["id"]


def test_an_edited_algorithm_file_takes_effect_on_the_next_decision(runner_setup, ledger):
    runner, directory, minute = runner_setup
    card = _card(ledger, "buy_and_hold")
    assert runner.decide(card, minute).decision.shares == 7
    path = Path(directory) / "buy_and_hold.py"
    path.write_text(path.read_text().replace('("buy", 7)', '("buy", 3)'))
    assert runner.decide(card, minute).decision.shares == 3


def test_a_card_is_asked_its_data_requirements_once_per_minute(runner_setup, ledger):
    runner, directory, minute = runner_setup
    calls = directory / "requirement_calls.txt"
    (directory / "counts_requirements.py").write_text(
        '"""Test: records each get_data_requirements call."""\n'
        "class Algorithm:\n"
        "    def __init__(self, ticker, initial_capital): pass\n"
        "    def get_data_requirements(self, current_time):\n"
        f"        with open({str(calls)!r}, 'a') as log: log.write(current_time + '\\n')\n"
        "        return {'bars': 3}\n"
        "    def on_data(self, bars, transaction_history): return ('hold', 0)\n")
    made = runner.decide(_card(ledger, "counts_requirements"), minute)
    assert (made.decision.action, made.bars) == ("hold", 3)
    assert calls.read_text().splitlines() == ["2026-11-23T14:40:00Z"]
