"""RealtimeStreamer against the paper exchange's stream: bars into stocks.db, live subscription
changes, and recovery from dropped and silent connections."""
from __future__ import annotations

import logging
import threading

import pytest
import requests

from database import db_manager
from database.realtime_pull import RealtimeStreamer
from shared.config import AlpacaSettings
from tests.fixtures.exchange import wait_until as poll_until

pytestmark = pytest.mark.slow(37)

START = "2026-11-23T14:35:00Z"  # Monday morning
SPEED = 300  # a bar per symbol every 0.2 real seconds; the session outlasts any test by far


def wait_until(condition, what: str, timeout: float = 90.0):
    """The exchange fixture's poll, naming ``what`` first as these tests read best."""
    return poll_until(condition, timeout=timeout, interval=0.1, message=what)


@pytest.fixture
def exchange(paper_exchange_factory):
    return paper_exchange_factory(start=START, speed=SPEED)


class Reconnects:
    """An ``on_reconnect`` that counts its calls (it runs on the streamer's callback thread)."""

    def __init__(self, fail: bool = False):
        self.calls = 0
        self.fail = fail

    def __call__(self):
        self.calls += 1
        if self.fail:
            raise RuntimeError("backfill exploded")


@pytest.fixture
def make_streamer(exchange, stocks_db):
    made = []

    def make(**options) -> RealtimeStreamer:
        options.setdefault("is_market_open", lambda: exchange.state()["clock"]["is_open"])
        options.setdefault("backoff_base", 0.2)
        options.setdefault("backoff_max", 2.0)
        env = {**exchange.env, **options.pop("env", {})}
        streamer = RealtimeStreamer(AlpacaSettings.from_env(env), stocks_db, **options)
        made.append(streamer)
        return streamer

    yield make
    for streamer in made:
        streamer.stop()


def live_connections(exchange) -> list[dict]:
    return [c for c in exchange.state()["stream"]["connections"] if c["authenticated"]]


def subscribed_bars(exchange) -> list[str] | None:
    """The bar symbols of the one authenticated connection, None unless exactly one is open."""
    connections = live_connections(exchange)
    return connections[0]["subscriptions"]["bars"] if len(connections) == 1 else None


def newest(market, ticker: str) -> str | None:
    return db_manager.get_last_timestamp(market, ticker)


def test_bars_of_subscriptions_made_before_start_reach_stocks_db(exchange, make_streamer, market):
    streamer = make_streamer()
    streamer.subscribe("AAPL")
    streamer.subscribe("msft")
    assert streamer.subscriptions == frozenset({"AAPL", "MSFT"}) and not streamer.connected

    streamer.start()

    wait_until(lambda: db_manager.count_bars(market, "AAPL") >= 3 and db_manager.count_bars(market, "MSFT") >= 3,
               "three bars of each ticker")
    assert streamer.connected and streamer.reconnects == 0
    assert streamer.last_message_at and streamer.last_message_at.endswith("Z")
    connection = live_connections(exchange)[0]
    assert connection["subscriptions"]["bars"] == ["AAPL", "MSFT"]
    assert connection["subscriptions"]["updatedBars"] == ["AAPL", "MSFT"]
    assert connection["codec"] == "msgpack"
    stamp = newest(market, "MSFT")
    stored = db_manager.get_bars_between(market, "MSFT", stamp, stamp).iloc[0]
    rest = requests.get(f"{exchange.base_url}/v2/stocks/MSFT/bars", headers=exchange.headers, timeout=30,
                        params={"timeframe": "1Min", "start": stamp, "end": stamp, "feed": "iex"}).json()
    [bar] = rest["bars"]
    assert (stored["open"], stored["close"], stored["volume"]) == (bar["o"], bar["c"], bar["v"])


def test_no_connection_until_something_is_wanted(exchange, make_streamer, market):
    streamer = make_streamer()
    streamer.start()
    assert exchange.state()["stream"]["connection_count"] == 0 and not streamer.connected

    streamer.subscribe("NVDA")

    wait_until(lambda: db_manager.count_bars(market, "NVDA") >= 1, "a bar after the first subscription")
    assert subscribed_bars(exchange) == ["NVDA"]


def test_subscribe_and_unsubscribe_while_streaming(exchange, make_streamer, market):
    streamer = make_streamer()
    streamer.subscribe("AAPL")
    streamer.start()
    wait_until(lambda: db_manager.count_bars(market, "AAPL") >= 2, "AAPL bars")

    streamer.subscribe("NVDA")
    wait_until(lambda: db_manager.count_bars(market, "NVDA") >= 2, "NVDA bars after subscribing")
    streamer.unsubscribe("AAPL")
    wait_until(lambda: subscribed_bars(exchange) == ["NVDA"], "the exchange to drop AAPL")

    aapl_rows = db_manager.count_bars(market, "AAPL")
    nvda_rows = db_manager.count_bars(market, "NVDA")
    wait_until(lambda: db_manager.count_bars(market, "NVDA") >= nvda_rows + 3, "more NVDA bars")
    assert db_manager.count_bars(market, "AAPL") == aapl_rows
    assert streamer.subscriptions == frozenset({"NVDA"})
    history = exchange.state()["stream"]["history"]
    assert any(h["action"] == "unsubscribe" and h.get("bars") == ["AAPL"] for h in history)
    assert any(h["action"] == "unsubscribe" and h.get("updatedBars") == ["AAPL"] for h in history)


def test_subscription_changes_from_many_threads_converge(exchange, make_streamer):
    streamer = make_streamer()
    streamer.subscribe("SPY")
    streamer.start()
    wait_until(lambda: subscribed_bars(exchange) == ["SPY"], "the first subscription")
    symbols = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "QQQ", "AMD"]

    def churn(mine):
        for _ in range(20):
            for symbol in mine:
                streamer.subscribe(symbol)
            for symbol in mine[1:]:
                streamer.unsubscribe(symbol)

    threads = [threading.Thread(target=churn, args=(symbols[i::3],)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    expected = sorted({"SPY", *symbols[0::3][:1], *symbols[1::3][:1], *symbols[2::3][:1]})
    assert sorted(streamer.subscriptions) == expected
    wait_until(lambda: subscribed_bars(exchange) == expected, "the exchange to hold exactly the wanted set")


def test_recovers_after_the_exchange_drops_the_connection(exchange, make_streamer, market):
    reconnected = Reconnects()
    streamer = make_streamer(on_reconnect=reconnected)
    streamer.subscribe("AAPL")
    streamer.subscribe("TSLA")
    streamer.start()
    wait_until(lambda: db_manager.count_bars(market, "AAPL") >= 2, "bars before the drop")
    first_id = live_connections(exchange)[0]["id"]

    exchange.control(drop_streams=True)

    wait_until(lambda: streamer.reconnects == 1 and reconnected.calls == 1, "a reconnect and its callback")
    before = newest(market, "TSLA")
    wait_until(lambda: newest(market, "TSLA") > before, "bars after the reconnect")
    [connection] = live_connections(exchange)  # Alpaca allows one stream connection: still one
    assert connection["id"] != first_id
    assert connection["subscriptions"]["bars"] == ["AAPL", "TSLA"]
    assert streamer.connected


def test_the_owner_is_told_to_backfill_only_once_the_feed_holds_the_new_subscription(exchange, make_streamer,
                                                                                     market):
    """A backfill asked before the feed takes the subscription would leave the minutes between
    the two in neither: the feed here takes 1.5 s (over 7 minutes at this speed) to answer."""
    held_when_told = []
    streamer = make_streamer(on_reconnect=lambda: held_when_told.append(subscribed_bars(exchange)))
    streamer.subscribe("AAPL")
    streamer.subscribe("TSLA")
    streamer.start()
    wait_until(lambda: subscribed_bars(exchange) == ["AAPL", "TSLA"], "the first subscription")

    exchange.control(stream_subscribe_delay_seconds=1.5, drop_streams=True)

    wait_until(lambda: held_when_told, "the owner to be told of the reconnect")
    assert held_when_told == [["AAPL", "TSLA"]]
    assert streamer.reconnects == 1


def test_recovers_when_the_connection_goes_silent_in_market_hours(exchange, make_streamer, market):
    reconnected = Reconnects()
    streamer = make_streamer(on_reconnect=reconnected, silence_timeout=2)
    streamer.subscribe("AMZN")
    streamer.start()
    wait_until(lambda: db_manager.count_bars(market, "AMZN") >= 2, "bars before the silence")
    first_id = live_connections(exchange)[0]["id"]

    # Open but mute, the known Alpaca failure. The streamer gives up on it after 2 s of silence and
    # an unanswered ping; until the exchange reads again (15 s) it still counts the abandoned
    # connection against its limit of one, so the streamer's first attempts are refused.
    exchange.control(silence_streams_seconds=15)

    wait_until(lambda: streamer.reconnects == 1 and reconnected.calls == 1, "a reconnect after the silence")
    before = newest(market, "AMZN")
    wait_until(lambda: newest(market, "AMZN") > before, "bars on the new connection")
    [connection] = live_connections(exchange)
    assert connection["id"] != first_id and not connection["muted"]
    assert connection["subscriptions"]["bars"] == ["AMZN"]


def test_silence_outside_market_hours_is_not_a_failure(exchange, make_streamer, market):
    asked = []

    def market_closed():
        asked.append(1)
        return False

    streamer = make_streamer(silence_timeout=1, is_market_open=market_closed)
    streamer.subscribe("QQQ")
    streamer.start()
    wait_until(lambda: db_manager.count_bars(market, "QQQ") >= 1, "a first bar")
    first_id = live_connections(exchange)[0]["id"]

    exchange.control(silence_streams_seconds=3600)

    wait_until(lambda: len(asked) >= 5, "the streamer to notice the silence several times")
    assert streamer.reconnects == 0 and streamer.connected
    assert [c["id"] for c in live_connections(exchange)] == [first_id]

    exchange.control(silence_streams_seconds=0)  # the feed speaks again: the same connection carries on
    before = newest(market, "QQQ")
    wait_until(lambda: newest(market, "QQQ") > before, "bars on the first connection after the silence")
    assert streamer.reconnects == 0 and [c["id"] for c in live_connections(exchange)] == [first_id]


def test_a_failing_on_reconnect_does_not_stop_the_stream(exchange, make_streamer, market):
    reconnected = Reconnects(fail=True)
    streamer = make_streamer(on_reconnect=reconnected)
    streamer.subscribe("META")
    streamer.start()
    wait_until(lambda: db_manager.count_bars(market, "META") >= 1, "a first bar")

    exchange.control(drop_streams=True)
    wait_until(lambda: reconnected.calls == 1, "the callback")
    before = newest(market, "META")
    wait_until(lambda: newest(market, "META") > before, "bars after the failed callback")


def test_stop_closes_the_connection(exchange, make_streamer, market):
    streamer = make_streamer()
    streamer.subscribe("GOOGL")
    streamer.start()
    wait_until(lambda: streamer.connected, "the connection")

    streamer.stop()

    assert not streamer.connected
    wait_until(lambda: exchange.state()["stream"]["connection_count"] == 0, "the exchange to see it close")


def test_wrong_keys_keep_retrying_quietly_and_never_log_the_secret(exchange, make_streamer, market, caplog):
    caplog.set_level(logging.DEBUG)
    streamer = make_streamer(env={"ALPACA_SECRET": "wrong-secret-999"})
    streamer.subscribe("AAPL")
    streamer.start()

    wait_until(lambda: caplog.text.count("stream connection failed") >= 2, "two refused attempts")
    assert not streamer.connected and db_manager.count_bars(market, "AAPL") == 0

    good = make_streamer()
    streamer.stop()
    good.subscribe("AAPL")
    good.start()
    wait_until(lambda: db_manager.count_bars(market, "AAPL") >= 1, "bars with the right keys")
    good.stop()
    for secret in ("wrong-secret-999", exchange.secret):
        assert secret not in caplog.text
        # websockets would log the auth frame at DEBUG in hex, its tail (the secret's end) included
        assert " ".join(f"{byte:02x}" for byte in secret.encode()[-6:]) not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith("database.realtime_pull.websocket")
                and r.levelno < logging.INFO]
