"""The paper exchange sends what Alpaca's IEX feed sends: thin symbols skip minutes (the same ones in
the stream and in REST), some bars are corrected ~30 s later (``"T":"u"``, then REST serves the
corrected bar), a connection that dropped uncleanly still counts for a while (406), and a
connection may hold only so many symbols (405)."""
from __future__ import annotations

import json
import time

import requests

from tests.fixtures.exchange import wait_until
from tests.fixtures.exchange import stream_connect as connect

DAY_START, DAY_END = "2026-11-23T14:30:00Z", "2026-11-23T20:59:00Z"  # one whole session


def rest_bars(exchange, symbol, start=DAY_START, end=DAY_END, feed="iex") -> list[dict]:
    body = requests.get(f"{exchange.base_url}/v2/stocks/{symbol}/bars", headers=exchange.headers, timeout=30,
                        params={"timeframe": "1Min", "start": start, "end": end, "feed": feed,
                                "limit": 10000}).json()
    return body["bars"]


def json_messages(ws, timeout=30) -> list:
    return json.loads(ws.recv(timeout=timeout))


def authenticated(exchange, ws) -> list:
    json_messages(ws)  # connected
    ws.send(json.dumps({"action": "auth", "key": exchange.key, "secret": exchange.secret}))
    return json_messages(ws)


def test_a_thin_symbol_skips_minutes_the_same_way_in_every_answer_and_sip_has_them_all(paper_exchange_factory):
    exchange = paper_exchange_factory(start="2026-11-24T14:30:00Z", speed=0, thin_symbols="KO:0.4:0.1")
    iex, sip, liquid = rest_bars(exchange, "KO"), rest_bars(exchange, "KO", feed="sip"), rest_bars(exchange, "AAPL")

    assert len(sip) == len(liquid) == 390
    assert 0.33 < 1 - len(iex) / 390 < 0.47  # about 40% of the minutes had no IEX trade
    assert rest_bars(exchange, "KO") == iex  # decided by (seed, symbol, minute): asked again, same holes
    assert {b["t"] for b in iex} < {b["t"] for b in sip}
    again = paper_exchange_factory(start="2026-11-24T14:30:00Z", speed=0, thin_symbols="KO:0.4:0.1")
    assert [b["t"] for b in rest_bars(again, "KO")] == [b["t"] for b in iex]
    other_seed = paper_exchange_factory(start="2026-11-24T14:30:00Z", speed=0, seed=7, thin_symbols="KO:0.4:0.1")
    assert [b["t"] for b in rest_bars(other_seed, "KO")] != [b["t"] for b in iex]
    assert exchange.state()["feed"] == {"KO": {"empty_share": 0.4, "correction_share": 0.1}}


def test_streamed_bars_and_corrections_match_rest_before_and_after_the_correction(paper_exchange_factory):
    exchange = paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=240, thin_symbols="KO:0.4:0.5")
    bars, updates = [], []
    with connect(f"{exchange.stream_url}/v2/iex") as ws:
        authenticated(exchange, ws)
        ws.send(json.dumps({"action": "subscribe", "bars": ["KO"], "updatedBars": ["KO"]}))
        json_messages(ws)  # the subscription answer
        while len(updates) < 3:
            for message in json_messages(ws, timeout=60):
                (bars if message["T"] == "b" else updates).append(message)
        first_bar_minute = bars[0]["t"]
    stream_end = bars[-1]["t"]
    rest = {b["t"]: b for b in rest_bars(exchange, "KO", start=first_bar_minute, end=stream_end)}

    assert [b["t"] for b in bars] == sorted(rest)  # the stream skipped exactly the minutes REST has no bar for
    for update in updates:
        original = next(b for b in bars if b["t"] == update["t"])
        assert update["T"] == "u" and update["S"] == "KO"
        assert (update["v"], update["n"]) != (original["v"], original["n"])  # a late trade changed the bar
        assert {k: v for k, v in rest[update["t"]].items()} == {k: update[k] for k in rest[update["t"]]}
    uncorrected = [b for b in bars if b["t"] not in {u["t"] for u in updates}
                   and b["t"] < updates[-1]["t"]]
    for bar in uncorrected:
        assert {k: bar[k] for k in rest[bar["t"]]} == rest[bar["t"]]


def test_a_correction_is_not_served_before_it_happened(paper_exchange_factory):
    exchange = paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=0, thin_symbols="KO:0.0:0.5")
    exchange.set_clock("2026-11-23T15:00:45Z")  # the 14:59 bar is complete; a correction would come at 15:00:30
    early = rest_bars(exchange, "KO", start="2026-11-23T14:59:00Z", end="2026-11-23T14:59:00Z")
    exchange.set_clock("2026-11-23T15:05:00Z")
    late = rest_bars(exchange, "KO", start="2026-11-23T14:59:00Z", end="2026-11-23T14:59:00Z")
    corrected_minutes = [b["t"] for b, c in zip(rest_bars(exchange, "KO", feed="sip", end="2026-11-23T15:03:00Z"),
                                                  rest_bars(exchange, "KO", end="2026-11-23T15:03:00Z")) if b != c]
    assert len(early) == len(late) == 1
    assert (early[0] != late[0]) == ("2026-11-23T14:59:00Z" in corrected_minutes)
    assert 0 < len(corrected_minutes) < 270  # about half of the minutes were corrected


def test_after_an_unclean_drop_the_old_connection_lingers_with_406(paper_exchange_factory):
    exchange = paper_exchange_factory(stream_linger_seconds=3)
    with connect(f"{exchange.stream_url}/v2/iex") as ws:
        assert authenticated(exchange, ws) == [{"T": "success", "msg": "authenticated"}]
        exchange.control(drop_streams=True)
        wait_until(lambda: exchange.state()["stream"]["connection_count"] == 0, message="the drop")
    dropped_at = time.monotonic()
    with connect(f"{exchange.stream_url}/v2/iex") as ws:
        assert authenticated(exchange, ws) == [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]
    while time.monotonic() - dropped_at < 3.2:
        time.sleep(0.1)
    with connect(f"{exchange.stream_url}/v2/iex") as ws:
        assert authenticated(exchange, ws) == [{"T": "success", "msg": "authenticated"}]


def test_a_clean_close_does_not_linger(paper_exchange_factory):
    exchange = paper_exchange_factory(stream_linger_seconds=60)
    with connect(f"{exchange.stream_url}/v2/iex") as ws:
        authenticated(exchange, ws)
    wait_until(lambda: exchange.state()["stream"]["connection_count"] == 0, message="the close")
    with connect(f"{exchange.stream_url}/v2/iex") as ws:
        assert authenticated(exchange, ws) == [{"T": "success", "msg": "authenticated"}]


def test_subscribing_beyond_the_symbol_limit_is_refused_with_405(paper_exchange_factory):
    exchange = paper_exchange_factory(stream_symbol_limit=2)
    with connect(f"{exchange.stream_url}/v2/iex") as ws:
        authenticated(exchange, ws)
        ws.send(json.dumps({"action": "subscribe", "bars": ["AAPL", "MSFT"], "updatedBars": ["AAPL", "MSFT"]}))
        assert json_messages(ws)[0]["bars"] == ["AAPL", "MSFT"]
        ws.send(json.dumps({"action": "subscribe", "bars": ["AAPL", "MSFT", "KO"]}))
        answer = json_messages(ws)
        while answer[0]["T"] == "b":
            answer = json_messages(ws)
        assert answer == [{"T": "error", "code": 405, "msg": "symbol limit exceeded"}]
        [connection] = exchange.state()["stream"]["connections"]
        assert connection["subscriptions"]["bars"] == ["AAPL", "MSFT"]
