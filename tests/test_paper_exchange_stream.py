"""The market-data stream through alpaca-py's StockDataStream (msgpack) and a plain JSON client."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import msgpack
import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.fixtures.exchange import SdkStream, wait_until
from tests.fixtures.exchange import stream_connect as connect

UTC = timezone.utc


def rest_bar(exchange, symbol, minute: datetime) -> dict:
    stamp = minute.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = requests.get(f"{exchange.base_url}/v2/stocks/{symbol}/bars", headers=exchange.headers, timeout=30,
                        params={"timeframe": "1Min", "start": stamp, "end": stamp}).json()
    [bar] = body["bars"]
    return bar


def connections(exchange):
    return exchange.state()["stream"]["connections"]


def test_streamed_bars_are_the_rest_history_exactly_and_only_for_subscribed_symbols(paper_exchange):
    with SdkStream(paper_exchange, ["AAPL", "SPY"]) as sdk:
        wait_until(lambda: len(sdk.of("AAPL")) >= 3 and len(sdk.of("SPY")) >= 3, message="three bars each")
    assert {b.symbol for b in sdk.bars} == {"AAPL", "SPY"}
    for bar in sdk.bars[:6]:
        expected = rest_bar(paper_exchange, bar.symbol, bar.timestamp)
        assert expected["t"] == bar.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trade_count, bar.vwap) == \
            (expected["o"], expected["h"], expected["l"], expected["c"], expected["v"], expected["n"], expected["vw"])
    minutes = [b.timestamp for b in sdk.of("AAPL")]
    assert minutes == sorted(minutes) and minutes[0] >= datetime(2026, 11, 23, 14, 30, tzinfo=UTC)


def test_state_shows_subscribe_and_unsubscribe_and_bars_stop_for_the_dropped_symbol(paper_exchange):
    with SdkStream(paper_exchange, ["AAPL", "MSFT"]) as sdk:
        wait_until(lambda: any(c["subscriptions"]["bars"] == ["AAPL", "MSFT"] for c in connections(paper_exchange)),
                   message="subscription in state")
        wait_until(lambda: sdk.of("MSFT"), message="a MSFT bar")
        sdk.stream.unsubscribe_bars("MSFT")
        [connection] = wait_until(lambda: [c for c in connections(paper_exchange)
                                           if c["subscriptions"]["bars"] == ["AAPL"]], message="unsubscribe in state")
        history = paper_exchange.state()["stream"]["history"]
        unsubscribed_at = datetime.fromisoformat(history[-1]["at"].replace("Z", "+00:00"))
        wait_until(lambda: [b for b in sdk.of("AAPL") if b.timestamp >= unsubscribed_at + timedelta(minutes=1)],
                   message="AAPL bars after the unsubscribe")
    assert [(h["connection"], h["action"], h["bars"]) for h in history] == [
        (connection["id"], "subscribe", ["AAPL", "MSFT"]), (connection["id"], "unsubscribe", ["MSFT"])]
    assert all(b.timestamp + timedelta(minutes=1) <= unsubscribed_at for b in sdk.of("MSFT"))


def json_messages(ws) -> list:
    return json.loads(ws.recv(timeout=30))


def test_json_client_handshake_auth_errors_subscription_and_bars(paper_exchange):
    url = f"{paper_exchange.stream_url}/v2/iex"
    with connect(url) as ws:
        assert json_messages(ws) == [{"T": "success", "msg": "connected"}]
        ws.send(json.dumps({"action": "subscribe", "bars": ["AAPL"]}))
        assert json_messages(ws) == [{"T": "error", "code": 401, "msg": "not authenticated"}]
        ws.send(json.dumps({"action": "auth", "key": paper_exchange.key, "secret": "wrong"}))
        assert json_messages(ws) == [{"T": "error", "code": 402, "msg": "auth failed"}]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=30)
    with connect(url) as ws:
        json_messages(ws)
        ws.send(json.dumps({"action": "auth", "key": paper_exchange.key, "secret": paper_exchange.secret}))
        assert json_messages(ws) == [{"T": "success", "msg": "authenticated"}]
        ws.send("not json at all")
        assert json_messages(ws) == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
        ws.send(json.dumps({"action": "subscribe", "bars": ["aapl"]}))
        [ack] = json_messages(ws)
        assert ack == {"T": "subscription", "trades": [], "quotes": [], "bars": ["AAPL"], "updatedBars": [],
                       "dailyBars": [], "statuses": [], "lulds": [], "corrections": [], "cancelErrors": []}
        [bar] = json_messages(ws)
        assert bar["T"] == "b" and bar["S"] == "AAPL"
        assert bar == {**rest_bar(paper_exchange, "AAPL", datetime.fromisoformat(bar["t"].replace("Z", "+00:00"))),
                       "T": "b", "S": "AAPL"}


def test_msgpack_client_gets_binary_frames_with_timestamp_extension(paper_exchange):
    with connect(f"{paper_exchange.stream_url}/v2/sip", additional_headers={"Content-Type": "application/msgpack"}) as ws:
        assert msgpack.unpackb(ws.recv(timeout=30)) == [{"T": "success", "msg": "connected"}]
        ws.send(msgpack.packb({"action": "auth", "key": paper_exchange.key, "secret": paper_exchange.secret}))
        assert msgpack.unpackb(ws.recv(timeout=30)) == [{"T": "success", "msg": "authenticated"}]
        ws.send(msgpack.packb({"action": "subscribe", "bars": ["*"]}))
        assert msgpack.unpackb(ws.recv(timeout=30))[0]["bars"] == ["*"]
        bars = msgpack.unpackb(ws.recv(timeout=30))
        [connection] = connections(paper_exchange)
    assert (connection["feed"], connection["codec"], connection["subscriptions"]["bars"]) == ("sip", "msgpack", ["*"])
    assert len(bars) == 25  # every active symbol of the universe
    assert all(isinstance(b["t"], msgpack.Timestamp) for b in bars)


def test_a_second_connection_is_refused_as_alpaca_does(paper_exchange):
    with connect(f"{paper_exchange.stream_url}/v2/iex") as first, connect(f"{paper_exchange.stream_url}/v2/iex") as second:
        answers = []
        for ws in (first, second):
            json_messages(ws)
            ws.send(json.dumps({"action": "auth", "key": paper_exchange.key, "secret": paper_exchange.secret}))
            answers.append(json_messages(ws))
        assert answers == [[{"T": "success", "msg": "authenticated"}],
                           [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]]
        with pytest.raises(ConnectionClosed):
            second.recv(timeout=30)


def test_unknown_stream_path_is_refused_at_the_handshake(paper_exchange):
    with pytest.raises(InvalidStatus) as caught:
        connect(f"{paper_exchange.stream_url}/v2/crypto")
    assert caught.value.response.status_code == 404


def test_key_headers_at_the_handshake_authenticate_and_a_second_auth_is_refused(paper_exchange):
    with connect(f"{paper_exchange.stream_url}/v2/iex", additional_headers=paper_exchange.headers) as ws:
        assert json_messages(ws) == [{"T": "success", "msg": "connected"}]
        assert json_messages(ws) == [{"T": "success", "msg": "authenticated"}]
        ws.send(json.dumps({"action": "auth", "key": paper_exchange.key, "secret": paper_exchange.secret}))
        assert json_messages(ws) == [{"T": "error", "code": 403, "msg": "already authenticated"}]
        ws.send(json.dumps({"action": "subscribe", "bars": ["MSFT"]}))
        assert json_messages(ws)[0]["bars"] == ["MSFT"]
