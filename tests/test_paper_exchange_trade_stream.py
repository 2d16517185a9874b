"""The paper exchange's trade updates stream, read with alpaca-py's unchanged TradingStream."""
from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest
from alpaca.trading.stream import TradingStream

from tests.fixtures.exchange import market_order, trading_client, wait_until
from tests.fixtures.exchange import stream_connect as connect


@pytest.fixture
def exchange(paper_exchange_factory):
    return paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=1)


class SdkTradeStream:
    """alpaca-py's TradingStream on the exchange, in its own thread, collecting its updates."""

    def __init__(self, exchange) -> None:
        self.stream = TradingStream(exchange.key, exchange.secret, paper=True, url_override=f"{exchange.stream_url}/stream")
        self.updates: list = []
        self.stream.subscribe_trade_updates(self._on_update)
        self.thread = threading.Thread(target=self.stream.run, daemon=True)

    async def _on_update(self, update) -> None:
        self.updates.append(update)

    def __enter__(self) -> "SdkTradeStream":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stream.stop()
        self.thread.join(30)

    def events(self, client_order_id: str) -> list[str]:
        return [str(u.event.value if hasattr(u.event, "value") else u.event) for u in list(self.updates)
                if u.order.client_order_id == client_order_id]


def _listening(exchange) -> bool:
    return exchange.state()["stream"]["trade_updates"]["listening"] == 1


def test_a_filled_order_is_announced_as_new_then_fill_with_price_and_position(exchange):
    client = trading_client(exchange)
    with SdkTradeStream(exchange) as stream:
        wait_until(lambda: _listening(exchange), 30, message="the trade stream to listen")
        client.submit_order(market_order("AAPL", 6, "buy", "streamed"))
        wait_until(lambda: "fill" in stream.events("streamed"), 30, message="the fill event")
    assert stream.events("streamed") == ["new", "fill"]
    fill = next(u for u in stream.updates if u.event == "fill")
    order = client.get_order_by_client_id("streamed")
    assert (fill.qty, fill.position_qty) == (6, 6)
    assert Decimal(str(fill.price)) == Decimal(order.filled_avg_price)
    assert fill.order.status == "filled" and fill.execution_id is not None


def test_partial_fill_then_canceled_and_rejected_are_announced(exchange):
    client = trading_client(exchange)
    with SdkTradeStream(exchange) as stream:
        wait_until(lambda: _listening(exchange), 30, message="the trade stream to listen")
        exchange.control(partial_fill_ratio=0.5, partial_fill_hold_seconds=0.5)
        client.submit_order(market_order("MSFT", 10, "buy", "half"))
        wait_until(lambda: "canceled" in stream.events("half"), 30, message="the cancel event")
        exchange.control(partial_fill_ratio=None, reject_orders=1)
        client.submit_order(market_order("MSFT", 1, "buy", "refused"))
        wait_until(lambda: "rejected" in stream.events("refused"), 30, message="the rejection")
    assert stream.events("half") == ["new", "partial_fill", "canceled"]
    partial = next(u for u in stream.updates if u.event == "partial_fill")
    assert (partial.qty, partial.order.filled_qty) == (5, "5")
    assert stream.events("refused") == ["new", "rejected"]


def test_wrong_keys_are_unauthorized_and_listen_is_acknowledged(exchange):
    url = f"{exchange.stream_url}/stream"
    with connect(url) as ws:
        ws.send(json.dumps({"action": "authenticate", "data": {"key_id": "nope", "secret_key": "nope"}}))
        answer = ws.recv(timeout=10)
        assert isinstance(answer, bytes), "Alpaca's paper trade stream sends binary frames"
        assert json.loads(answer) == {"stream": "authorization",
                                      "data": {"status": "unauthorized", "action": "authenticate"}}
    with connect(url) as ws:
        ws.send(json.dumps({"action": "auth", "key": exchange.key, "secret": exchange.secret}))
        assert json.loads(ws.recv(timeout=10))["data"]["status"] == "authorized"
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert json.loads(ws.recv(timeout=10)) == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
