"""Test controls of the paper exchange: fill delay, partial fills, rejections, 5xx, dropped and
silent streams; and the order life cycle around the open and the close."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderStatus

from tests.fixtures.exchange import SdkStream, market_order, trading_client, wait_for_status, wait_until
from tests.fixtures.exchange import stream_connect as connect

pytestmark = pytest.mark.slow(35)

UTC = timezone.utc
CASH = Decimal("100000")


@pytest.fixture
def exchange(paper_exchange_factory):
    return paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=1)


@pytest.fixture
def client(exchange):
    return trading_client(exchange)


def test_fill_delay_keeps_the_order_new_until_it_passes(client, exchange):
    exchange.control(fill_delay_seconds=3)
    client.submit_order(market_order("AAPL", 3, "buy", "slow"))
    assert client.get_order_by_client_id("slow").status == OrderStatus.NEW
    assert exchange.state()["positions"] == {}
    filled = wait_for_status(client, "slow", {OrderStatus.FILLED})
    assert Decimal(filled.filled_qty) == 3


def test_partial_fill_shows_partially_filled_then_cancels_the_rest(client, exchange):
    exchange.control(partial_fill_ratio=0.4, partial_fill_hold_seconds=3)
    client.submit_order(market_order("MSFT", 10, "buy", "part"))
    partial = wait_for_status(client, "part", {OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCELED})
    assert partial.status == OrderStatus.PARTIALLY_FILLED
    done = wait_for_status(client, "part", {OrderStatus.CANCELED})
    assert (Decimal(done.qty), Decimal(done.filled_qty)) == (10, 4)
    assert done.canceled_at is not None
    price = Decimal(done.filled_avg_price)
    assert Decimal(client.get_account().cash) == CASH - 4 * price
    assert Decimal(client.get_open_position("MSFT").qty) == 4


def test_rejection_leaves_no_trace_in_cash_or_positions_and_only_hits_n_orders(client, exchange):
    exchange.control(reject_orders=1)
    client.submit_order(market_order("AAPL", 2, "buy", "refused"))
    rejected = wait_for_status(client, "refused", {OrderStatus.REJECTED, OrderStatus.FILLED})
    assert rejected.status == OrderStatus.REJECTED and rejected.failed_at is not None
    assert Decimal(rejected.filled_qty) == 0
    assert Decimal(client.get_account().cash) == CASH
    client.submit_order(market_order("AAPL", 2, "buy", "accepted"))
    assert wait_for_status(client, "accepted", {OrderStatus.REJECTED, OrderStatus.FILLED}).status == OrderStatus.FILLED


def test_transient_server_errors_hit_the_next_n_calls_then_stop(client, exchange):
    exchange.control(fail_requests=2)
    for _ in range(2):
        with pytest.raises(APIError) as caught:
            client.get_account()
        assert caught.value.status_code == 500
        assert caught.value.code == 50010000
    assert Decimal(client.get_account().cash) == CASH


def test_failures_can_be_kept_to_one_path_while_the_rest_answers(client, exchange):
    exchange.control(fail_requests=5, fail_path="/v2/orders")
    assert Decimal(client.get_account().cash) == CASH               # the account and the clock still answer
    assert client.get_clock().timestamp is not None
    with pytest.raises(APIError) as caught:
        client.submit_order(market_order("AAPL", 1, "buy", "goes-nowhere"))
    assert caught.value.status_code == 500
    assert exchange.state()["orders"] == []
    exchange.control(fail_requests=0, fail_path="/")


def test_a_lost_answer_means_the_order_was_placed_and_a_resend_is_a_duplicate(client, exchange):
    exchange.control(fail_requests=1, fail_status=503, fail_after_processing=True)
    with pytest.raises(APIError) as caught:
        client.submit_order(market_order("SPY", 1, "buy", "lost-answer"))
    assert caught.value.status_code == 503
    assert client.get_order_by_client_id("lost-answer").symbol == "SPY"
    with pytest.raises(APIError) as duplicate:
        client.submit_order(market_order("SPY", 1, "buy", "lost-answer"))
    assert duplicate.value.status_code == 422
    assert len(exchange.state()["orders"]) == 1


def test_gateway_errors_have_no_json_body(exchange):
    exchange.control(fail_requests=1, fail_status=502)
    response = requests.get(f"{exchange.base_url}/v2/clock", headers=exchange.headers, timeout=30)
    assert response.status_code == 502
    assert "502 Bad Gateway" in response.text


@pytest.mark.parametrize("body", [
    {"partial_fill_ratio": 1.5}, {"fill_delay_seconds": -1}, {"reject_orders": "two"},
    {"fail_status": 404}, {"fail_path": "v2/orders"}, {"drop_streams": "yes"}, {"no_such_switch": 1}, {"clock": {"set": "2040-01-01T00:00:00Z"}},
    ["not", "an", "object"],
])
def test_bad_controls_are_refused_and_change_nothing(untraded_exchange, body):
    before = untraded_exchange.state()["controls"]
    response = requests.post(f"{untraded_exchange.base_url}/_sim/control", json=body, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]
    assert untraded_exchange.state()["controls"] == before


def test_orders_before_the_open_wait_and_fill_at_the_opening_price(paper_exchange_factory):
    exchange = paper_exchange_factory(start="2026-11-23T14:28:00Z", speed=0)
    client = trading_client(exchange)
    client.submit_order(market_order("NVDA", 5, "buy", "early"))
    assert client.get_order_by_client_id("early").status == OrderStatus.ACCEPTED
    exchange.set_clock(speed=60)  # from 14:28, two real seconds to the open
    filled = wait_for_status(client, "early", {OrderStatus.FILLED})
    assert filled.filled_at == datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    opening = wait_until(lambda: requests.get(
        f"{exchange.base_url}/v2/stocks/NVDA/bars", headers=exchange.headers, timeout=30,
        params={"timeframe": "1Min", "start": "2026-11-23T14:30:00Z", "end": "2026-11-23T14:30:00Z"}).json()["bars"],
        message="the first bar of the day")
    assert Decimal(filled.filled_avg_price) == Decimal(str(opening[0]["o"]))


def test_a_day_order_still_waiting_at_the_close_expires(paper_exchange_factory):
    exchange = paper_exchange_factory(start="2026-11-27T17:58:00Z", speed=0)  # 2 minutes before the early close
    exchange.control(fill_delay_seconds=10)
    client = trading_client(exchange)
    client.submit_order(market_order("AAPL", 1, "buy", "too-late"))
    exchange.set_clock(speed=60)  # the 10 real seconds of delay now span the close
    expired = wait_for_status(client, "too-late", {OrderStatus.EXPIRED, OrderStatus.FILLED})
    assert expired.status == OrderStatus.EXPIRED
    assert expired.expired_at == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert Decimal(client.get_account().cash) == CASH


def test_cancel_an_order_waiting_on_its_fill_delay(client, exchange):
    exchange.control(fill_delay_seconds=30)
    order = client.submit_order(market_order("AAPL", 1, "buy", "cancel-me"))
    client.cancel_order_by_id(order.id)
    assert client.get_order_by_client_id("cancel-me").status == OrderStatus.CANCELED
    with pytest.raises(APIError) as caught:
        client.cancel_order_by_id(order.id)
    assert caught.value.status_code == 422


def test_dropped_streams_are_cut_and_the_sdk_reconnects_with_its_subscriptions(paper_exchange):
    with SdkStream(paper_exchange, ["AAPL"]) as sdk:
        [first] = wait_until(lambda: [c for c in paper_exchange.state()["stream"]["connections"]
                                      if c["subscriptions"]["bars"] == ["AAPL"]], message="first connection")
        wait_until(lambda: sdk.of("AAPL"), message="a bar before the drop")
        assert paper_exchange.control(drop_streams=True)["dropped_streams"] == 1
        [second] = wait_until(lambda: [c for c in paper_exchange.state()["stream"]["connections"]
                                       if c["subscriptions"]["bars"] == ["AAPL"] and c["id"] != first["id"]],
                              message="a new connection with the subscription restored")
        count = len(sdk.of("AAPL"))
        wait_until(lambda: len(sdk.of("AAPL")) > count, message="bars after the reconnect")
    assert second["id"] > first["id"]


def test_silenced_stream_stays_open_but_misses_bars_while_new_connections_get_them(paper_exchange_factory):
    exchange = paper_exchange_factory(stream_connection_limit=2, speed=120)  # a bar every 0.5 s
    received: dict[str, list[str]] = {"old": [], "new": []}

    def listen(name: str, stop: threading.Event, connected: threading.Event):
        with connect(f"{exchange.stream_url}/v2/iex") as ws:
            ws.recv(timeout=30)
            ws.send(json.dumps({"action": "auth", "key": exchange.key, "secret": exchange.secret}))
            ws.recv(timeout=30)
            ws.send(json.dumps({"action": "subscribe", "bars": ["SPY"]}))
            ws.recv(timeout=30)
            connected.set()
            while not stop.is_set():
                try:
                    frame = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                received[name].extend(m["t"] for m in json.loads(frame) if m["T"] == "b")

    stop, old_ready, new_ready = threading.Event(), threading.Event(), threading.Event()
    old = threading.Thread(target=listen, args=("old", stop, old_ready), daemon=True)
    old.start()
    old_ready.wait(30)
    wait_until(lambda: len(received["old"]) >= 2, message="bars before the silence")
    assert exchange.control(silence_streams_seconds=3)["silenced_streams"] == 1  # six simulated minutes
    assert exchange.state()["stream"]["connections"][0]["muted"] is True
    new = threading.Thread(target=listen, args=("new", stop, new_ready), daemon=True)
    new.start()
    new_ready.wait(30)
    wait_until(lambda: len(received["new"]) >= 4, message="bars on the new connection")
    wait_until(lambda: not exchange.state()["stream"]["connections"][0]["muted"], timeout=60, message="silence over")
    count = len(received["old"])
    wait_until(lambda: len(received["old"]) > count, message="bars after the silence")
    stop.set()
    old.join(30), new.join(30)
    minutes = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in received["old"]]
    assert max(b - a for a, b in zip(minutes, minutes[1:])) >= timedelta(minutes=3)  # a gap: missed, not queued
    new_minutes = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in received["new"]]
    assert all(b - a == timedelta(minutes=1) for a, b in zip(new_minutes, new_minutes[1:]))
