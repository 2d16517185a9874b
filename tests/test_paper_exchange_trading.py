"""The paper exchange's trading REST API, driven through alpaca-py's unchanged TradingClient."""
from __future__ import annotations

from datetime import timezone
from decimal import Decimal

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AssetStatus, OrderStatus, QueryOrderStatus
from alpaca.trading.requests import GetAssetsRequest, GetOrdersRequest

from tests.fixtures.exchange import market_order, trading_client, wait_for_status, wait_until


@pytest.fixture
def own_exchange(paper_exchange_factory):
    """A fresh account for a story that trades. Speed 1: prices barely move while a test runs, so
    fills can be compared with quotes."""
    return paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=1)


@pytest.fixture
def own_client(own_exchange) -> TradingClient:
    return trading_client(own_exchange)


@pytest.fixture
def exchange(untraded_exchange):
    """The module's shared exchange, for the stories that only read or are refused."""
    return untraded_exchange


@pytest.fixture
def client(exchange) -> TradingClient:
    return trading_client(exchange)


def test_a_new_account_has_its_starting_cash_and_no_positions(client):
    account = client.get_account()
    assert account.status == "ACTIVE"
    assert Decimal(account.cash) == Decimal("100000")
    assert Decimal(account.buying_power) == Decimal("100000")
    assert Decimal(account.equity) == Decimal("100000")
    assert client.get_all_positions() == []


def test_known_asset_is_active_and_tradable(client):
    asset = client.get_asset("AAPL")
    assert (asset.symbol, asset.status, asset.tradable) == ("AAPL", "active", True)
    assert client.get_asset(str(asset.id)).symbol == "AAPL"


def test_delisted_asset_exists_but_is_not_tradable(client):
    asset = client.get_asset("TWTR")
    assert (asset.status, asset.tradable) == ("inactive", False)


def test_unknown_asset_is_a_404_with_alpacas_body(client):
    with pytest.raises(APIError) as caught:
        client.get_asset("NOSUCH")
    assert caught.value.status_code == 404
    assert caught.value.code == 40410000
    assert caught.value.message == "asset not found for NOSUCH"


def test_market_buy_fills_and_moves_cash_into_a_position(own_client, own_exchange):
    submitted = own_client.submit_order(market_order("AAPL", 10, "buy", "buy-1"))
    assert submitted.client_order_id == "buy-1"
    assert submitted.status in (OrderStatus.ACCEPTED, OrderStatus.NEW, OrderStatus.FILLED)
    filled = wait_for_status(own_client, "buy-1", {OrderStatus.FILLED})
    price = Decimal(filled.filled_avg_price)
    assert Decimal(filled.filled_qty) == 10
    assert filled.filled_at is not None
    assert own_client.get_order_by_id(submitted.id).status == OrderStatus.FILLED
    account = own_client.get_account()
    assert Decimal(account.cash) == Decimal("100000") - price * 10
    [position] = own_client.get_all_positions()
    assert (position.symbol, Decimal(position.qty), Decimal(position.avg_entry_price)) == ("AAPL", 10, price)
    assert own_exchange.state()["positions"]["AAPL"]["qty"] == 10


def test_sell_returns_cash_and_closes_the_position(own_client):
    own_client.submit_order(market_order("MSFT", 4, "buy", "b"))
    bought = wait_for_status(own_client, "b", {OrderStatus.FILLED})
    own_client.submit_order(market_order("MSFT", 4, "sell", "s"))
    sold = wait_for_status(own_client, "s", {OrderStatus.FILLED})
    expected = Decimal("100000") - Decimal(bought.filled_avg_price) * 4 + Decimal(sold.filled_avg_price) * 4
    assert Decimal(own_client.get_account().cash) == expected
    assert own_client.get_all_positions() == []


def test_orders_are_listed_newest_first_and_filtered_by_status(own_client):
    for n in range(3):
        own_client.submit_order(market_order("SPY", 1, "buy", f"list-{n}"))
    for n in range(3):
        wait_for_status(own_client, f"list-{n}", {OrderStatus.FILLED})
    closed = own_client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert [o.client_order_id for o in closed] == ["list-2", "list-1", "list-0"]
    assert own_client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []


def test_duplicate_client_order_id_is_refused_with_422_and_changes_nothing(own_client, own_exchange):
    own_client.submit_order(market_order("AAPL", 1, "buy", "same-id"))
    wait_for_status(own_client, "same-id", {OrderStatus.FILLED})
    cash_before = own_client.get_account().cash
    with pytest.raises(APIError) as caught:
        own_client.submit_order(market_order("AAPL", 1, "buy", "same-id"))
    assert caught.value.status_code == 422
    assert caught.value.code == 40010001
    assert caught.value.message == "client_order_id must be unique"
    assert own_client.get_account().cash == cash_before
    assert len(own_exchange.state()["orders"]) == 1


def test_buying_more_than_the_cash_allows_is_403_insufficient_buying_power(client, exchange):
    with pytest.raises(APIError) as caught:
        client.submit_order(market_order("META", 1000, "buy", "too-big"))
    assert caught.value.status_code == 403
    assert caught.value.code == 40310000
    assert caught.value.message == "insufficient buying power"
    assert exchange.state()["orders"] == []
    assert Decimal(client.get_account().cash) == Decimal("100000")


def test_selling_shares_not_held_is_403_insufficient_qty(client):
    with pytest.raises(APIError) as caught:
        client.submit_order(market_order("AAPL", 5, "sell", "naked"))
    assert caught.value.status_code == 403
    assert caught.value.message == "insufficient qty available for order (requested: 5, available: 0)"


@pytest.mark.parametrize("symbol, message", [
    ("NOSUCH", 'asset "NOSUCH" not found'),
    ("TWTR", "asset TWTR is not active"),
])
def test_orders_for_unknown_or_inactive_symbols_are_422(client, symbol, message):
    with pytest.raises(APIError) as caught:
        client.submit_order(market_order(symbol, 1, "buy", f"bad-{symbol}"))
    assert caught.value.status_code == 422
    assert caught.value.message == message


def test_unknown_client_order_id_is_404(client):
    with pytest.raises(APIError) as caught:
        client.get_order_by_client_id("never-sent")
    assert caught.value.status_code == 404


@pytest.mark.parametrize("key, secret", [("test-key", "wrong"), ("wrong", "test-secret")])
def test_wrong_keys_are_401_for_trading(exchange, key, secret):
    with pytest.raises(APIError) as caught:
        trading_client(exchange, key, secret).get_account()
    assert caught.value.status_code == 401
    assert caught.value.message == "unauthorized."


def test_missing_key_headers_are_401(exchange):
    response = requests.get(f"{exchange.base_url}/v2/account", timeout=30)
    assert response.status_code == 401
    assert response.json() == {"message": "unauthorized."}


def test_after_a_mix_of_trades_cash_and_positions_add_up_to_the_fills(paper_exchange_factory):
    exchange = paper_exchange_factory(start="2026-11-24T16:00:00Z", speed=0)  # frozen: one price for all reads
    client = trading_client(exchange)
    trades = [("AAPL", 7, "buy"), ("TSLA", 3, "buy"), ("AAPL", 2, "sell"), ("SPY", 5, "buy"), ("TSLA", 3, "sell"),
              ("AAPL", 1, "buy"), ("SPY", 4, "sell")]
    for n, (symbol, qty, side) in enumerate(trades):
        client.submit_order(market_order(symbol, qty, side, f"mix-{n}"))
        wait_for_status(client, f"mix-{n}", {OrderStatus.FILLED})
    orders = exchange.state()["orders"]
    flow = sum((Decimal(o["filled_avg_price"]) * int(o["filled_qty"]) * (-1 if o["side"] == "buy" else 1))
               for o in orders)
    account = client.get_account()
    assert Decimal(account.cash) == Decimal("100000") + flow
    held = {p.symbol: int(p.qty) for p in client.get_all_positions()}
    assert held == {"AAPL": 6, "SPY": 1}
    value = sum(Decimal(p.market_value) for p in client.get_all_positions())
    assert Decimal(account.equity) == Decimal(account.cash) + value


@pytest.mark.parametrize("body, message", [
    ({"symbol": "AAPL", "qty": "0", "side": "buy", "type": "market", "time_in_force": "day"}, "qty must be > 0"),
    ({"symbol": "AAPL", "qty": "1.0000000001", "side": "buy", "type": "market", "time_in_force": "day"},
     "qty must have at most 9 decimal places"),
    ({"symbol": "AAPL", "qty": "ten", "side": "buy", "type": "market", "time_in_force": "day"}, "invalid qty: ten"),
    ({"symbol": "AAPL", "side": "buy", "type": "market", "time_in_force": "day"}, "qty is required"),
    ({"symbol": "AAPL", "qty": "1", "side": "hold", "type": "market", "time_in_force": "day"}, "invalid side"),
    ({"symbol": "AAPL", "qty": "1", "side": "buy", "type": "limit", "time_in_force": "day", "limit_price": "1"},
     "order type 'limit' is not supported by the paper exchange (market orders only)"),
    ({"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "fok"},
     "invalid time_in_force (the paper exchange takes day or gtc)"),
    ({"qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}, "symbol is required"),
    ({"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day",
      "client_order_id": "x" * 129}, "client_order_id must be no more than 128 characters"),
])
def test_malformed_orders_are_422_and_book_nothing(exchange, body, message):
    response = requests.post(f"{exchange.base_url}/v2/orders", json=body, headers=exchange.headers, timeout=30)
    assert response.status_code == 422
    assert response.json() == {"code": 40010001, "message": message}
    assert exchange.state()["orders"] == []


def test_a_fraction_trades_in_a_day_market_order_as_at_alpaca_and_is_refused_in_a_gtc_one(client, exchange):
    """Buy 2.5 shares, sell 1.25 of them: the position is 1.25 shares and the cash moved by each fill's value."""
    client.submit_order(market_order("AAPL", 2.5, "buy", "fraction-buy"))
    bought = wait_for_status(client, "fraction-buy", {OrderStatus.FILLED})
    client.submit_order(market_order("AAPL", 1.25, "sell", "fraction-sell"))
    sold = wait_for_status(client, "fraction-sell", {OrderStatus.FILLED})
    assert (bought.filled_qty, sold.filled_qty) == ("2.5", "1.25")
    [position] = client.get_all_positions()
    assert (position.symbol, position.qty) == ("AAPL", "1.25")
    cost = (Decimal(bought.filled_avg_price) * Decimal("2.5")).quantize(Decimal("0.01"))
    proceeds = (Decimal(sold.filled_avg_price) * Decimal("1.25")).quantize(Decimal("0.01"))
    assert Decimal(client.get_account().cash) == Decimal("100000") - cost + proceeds
    body = {"symbol": "AAPL", "qty": "0.25", "side": "sell", "type": "market", "time_in_force": "gtc"}
    refused = requests.post(f"{exchange.base_url}/v2/orders", json=body, headers=exchange.headers, timeout=30)
    assert (refused.status_code, refused.json()["message"]) == (422, "fractional orders must be DAY orders")


def test_a_body_that_is_not_json_is_400(exchange):
    response = requests.post(f"{exchange.base_url}/v2/orders", data="symbol=AAPL", headers=exchange.headers, timeout=30)
    assert response.status_code == 400
    assert response.json() == {"code": 40010000, "message": "request body format is invalid"}


def test_asset_list_has_the_universe_and_filters_by_status(client):
    active = {a.symbol for a in client.get_all_assets(GetAssetsRequest(status=AssetStatus.ACTIVE))}
    assert {"AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "SPY", "QQQ", "AMD"} <= active
    assert "TWTR" not in active
    assert "TWTR" in {a.symbol for a in client.get_all_assets()}


def test_a_fill_price_lies_within_the_bar_of_its_minute(paper_exchange):
    client = trading_client(paper_exchange)
    client.submit_order(market_order("TSLA", 1, "buy", "priced"))
    filled = wait_for_status(client, "priced", {OrderStatus.FILLED})
    minute = filled.filled_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:00Z")
    [bar] = wait_until(lambda: requests.get(
        f"{paper_exchange.base_url}/v2/stocks/TSLA/bars", headers=paper_exchange.headers, timeout=30,
        params={"timeframe": "1Min", "start": minute, "end": minute}).json()["bars"], message="the fill's bar")
    assert Decimal(str(bar["l"])) <= Decimal(filled.filled_avg_price) <= Decimal(str(bar["h"]))
