"""AlpacaWrapper against the project's paper exchange over 127.0.0.1 (the real alpaca-py code path)."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from orchestra.alpaca_wrapper import (
    AlpacaWrapper, BrokerAuthError, BrokerError, BrokerUnavailable, OrderNotFound, OrderRejected,
    PartialFill, UnknownOrderOutcome, new_client_order_id,
)
from shared.config import AlpacaSettings, ConfigError, Settings

pytestmark = pytest.mark.slow(40)

MONDAY_MORNING = "2026-11-23T14:35:00Z"  # 09:35 New York, a regular session


@pytest.fixture
def exchange(paper_exchange_factory):
    """A fresh exchange for a story that trades on it or changes its behaviour."""
    return paper_exchange_factory(start=MONDAY_MORNING, speed=1)


def make_wrapper(env: dict, fill_timeout: float = 20, **overrides) -> AlpacaWrapper:
    return AlpacaWrapper(AlpacaSettings.from_env({**env, **overrides}), fill_timeout=fill_timeout)


@pytest.fixture
def wrapper(exchange):
    return make_wrapper(exchange.env)


@pytest.fixture
def untraded_wrapper(untraded_exchange):
    """On the module's shared exchange: for the stories that never place an order."""
    return make_wrapper(untraded_exchange.env)


def orders_with_id(exchange, client_order_id: str) -> list[dict]:
    return [o for o in exchange.state()["orders"] if o["client_order_id"] == client_order_id]


# --------------------------------------------------------------------- start-up and settings
def test_start_prints_the_mode_line(untraded_exchange, capsys):
    make_wrapper(untraded_exchange.env)
    assert "✅ Alpaca client initialized in PAPER mode with iex feed" in capsys.readouterr().out


def test_live_mode_and_sip_feed_are_announced(untraded_exchange, capsys):
    make_wrapper(untraded_exchange.env, ALPACA_PAPER="False", ALPACA_FEED="sip")
    assert "✅ Alpaca client initialized in LIVE mode with sip feed" in capsys.readouterr().out


@pytest.mark.parametrize("key, value", [
    ("ALPACA_API_KEY", ""),
    ("ALPACA_SECRET", ""),
    ("ALPACA_API_KEY", "your_api_key"),
    ("ALPACA_PAPER", "maybe"),
    ("ALPACA_FEED", "nasdaq"),
    ("ALPACA_TRADING_URL", "127.0.0.1:18080"),
    ("ALPACA_TRADING_URL", "http://127.0.0.1:18080/v2"),
])
def test_bad_settings_name_the_key_and_never_the_secret(untraded_exchange, key, value):
    env = {**untraded_exchange.env, "ALPACA_SECRET": "s3cret-value-123", key: value}
    with pytest.raises(ConfigError) as raised:
        AlpacaWrapper(Settings.from_env(env).broker)  # the settings the API and orchestrator build
    assert key in str(raised.value)
    assert "s3cret-value-123" not in str(raised.value)


def test_wrong_keys_give_a_typed_error_without_the_secret(untraded_exchange):
    bad = make_wrapper(untraded_exchange.env, ALPACA_SECRET="wrong-secret-999")
    for call in (bad.get_account_cash, bad.get_clock, bad.get_positions, lambda: bad.validate_ticker("AAPL")):
        with pytest.raises(BrokerAuthError) as raised:
            call()
        assert "ALPACA_SECRET" in str(raised.value) and "wrong-secret-999" not in str(raised.value)
    with pytest.raises(BrokerAuthError):
        bad.submit_market_order("AAPL", "buy", 1, new_client_order_id())
    assert untraded_exchange.state()["orders"] == []


# ------------------------------------------------------------------------------ reads
def test_cash_positions_and_a_buy_agree_with_the_exchange(exchange, wrapper):
    assert wrapper.get_account_cash() == pytest.approx(100000.0)
    assert wrapper.get_positions() == {}

    price = wrapper.place_market_buy("AAPL", 10)

    assert wrapper.get_positions() == {"AAPL": 10}
    assert wrapper.get_account_cash() == pytest.approx(100000.0 - 10 * price, abs=0.01)
    assert float(exchange.state()["cash"]) == pytest.approx(wrapper.get_account_cash())


def test_validate_ticker(untraded_wrapper):
    assert untraded_wrapper.validate_ticker("AAPL") is True
    assert untraded_wrapper.validate_ticker("nvda") is True
    assert untraded_wrapper.validate_ticker("ZZZZ") is False
    assert untraded_wrapper.validate_ticker("TWTR") is False  # known to the broker but inactive
    assert untraded_wrapper.validate_ticker("") is False
    assert untraded_wrapper.validate_ticker("BRK/B") is False
    assert untraded_wrapper.validate_ticker("../account") is False


def test_clock_follows_the_exchange(exchange, wrapper):
    clock = wrapper.get_clock()
    assert clock.is_open is True
    assert clock.timestamp.tzinfo is not None and clock.timestamp.utcoffset().total_seconds() == 0
    assert clock.next_close == datetime(2026, 11, 23, 21, 0, tzinfo=timezone.utc)

    exchange.set_clock("2026-11-28T15:00:00Z")  # a Saturday
    clock = wrapper.get_clock()
    assert clock.is_open is False
    assert clock.next_open == datetime(2026, 11, 30, 14, 30, tzinfo=timezone.utc)


def test_reads_survive_one_5xx_but_report_a_down_broker(exchange, wrapper):
    exchange.control(fail_requests=1)
    assert wrapper.get_account_cash() == pytest.approx(100000.0)
    exchange.control(fail_requests=20)
    with pytest.raises(BrokerUnavailable):
        wrapper.get_positions()


def test_a_shutting_down_daemon_does_not_retry_a_failed_read(exchange):
    """After SIGTERM a read that fails is given up at once: with the broker unreachable each retry
    held the shutdown another request timeout."""
    stopping = AlpacaWrapper(AlpacaSettings.from_env(exchange.env), stopping=lambda: True)
    exchange.control(fail_requests=1)
    with pytest.raises(BrokerUnavailable):
        stopping.get_account_cash()
    assert stopping.get_account_cash() == pytest.approx(100000.0)  # the next read finds the broker back


def test_a_stopped_broker_is_unavailable_not_unknown(exchange, wrapper):
    exchange.stop()
    with pytest.raises(BrokerUnavailable):
        wrapper.validate_ticker("AAPL")
    with pytest.raises(BrokerUnavailable):
        wrapper.get_clock()


# ------------------------------------------------------------------------------ orders
def test_submit_then_wait_reports_the_fill(exchange, wrapper):
    cid = new_client_order_id()
    submitted = wrapper.submit_market_order("MSFT", "buy", 7, cid)
    assert (submitted.client_order_id, submitted.symbol, submitted.side, submitted.requested_shares) == (
        cid, "MSFT", "buy", 7)

    done = wrapper.wait_for_terminal(cid, timeout=20)

    assert done.is_terminal and done.status == "filled"
    assert done.filled_shares == 7
    [order] = orders_with_id(exchange, cid)
    assert done.filled_avg_price == pytest.approx(float(order["filled_avg_price"]))
    assert done.broker_order_id == order["id"]
    assert done.filled_at is not None and done.filled_at.endswith("Z") and len(done.filled_at) == 20
    assert wrapper.get_order_by_client_id(cid) == done


def test_sell_returns_the_average_price(exchange, wrapper):
    wrapper.place_market_buy("NVDA", 4)
    cash_before_sell = wrapper.get_account_cash()
    price = wrapper.place_market_sell("NVDA", 4)
    assert price > 0
    [sell] = [o for o in exchange.state()["orders"] if o["side"] == "sell"]
    assert sell["status"] == "filled" and int(float(sell["filled_qty"])) == 4
    assert price == pytest.approx(float(sell["filled_avg_price"]))
    assert wrapper.get_account_cash() == pytest.approx(cash_before_sell + 4 * price, abs=0.01)
    assert wrapper.get_positions() == {}


def test_same_client_order_id_twice_places_one_order(exchange, wrapper):
    cid = new_client_order_id()
    first = wrapper.submit_market_order("AAPL", "buy", 3, cid)
    second = wrapper.submit_market_order("AAPL", "buy", 3, cid)

    assert second.broker_order_id == first.broker_order_id
    assert len(orders_with_id(exchange, cid)) == 1
    wrapper.wait_for_terminal(cid, timeout=20)
    assert wrapper.get_positions() == {"AAPL": 3}


def test_a_reused_id_for_a_different_order_is_refused(exchange, wrapper):
    cid = new_client_order_id()
    wrapper.submit_market_order("AAPL", "buy", 3, cid)
    with pytest.raises(BrokerError, match="different order"):
        wrapper.submit_market_order("TSLA", "buy", 3, cid)
    assert len(exchange.state()["orders"]) == 1


def test_partial_fill_is_a_fill_of_what_filled(exchange, wrapper):
    exchange.control(partial_fill_ratio=0.5)
    cid = new_client_order_id()
    wrapper.submit_market_order("AMD", "buy", 10, cid)

    done = wrapper.wait_for_terminal(cid, timeout=20)

    assert done.filled_shares == 5 and done.filled_avg_price > 0
    assert done.status in ("canceled", "partially_filled")
    assert wrapper.get_positions() == {"AMD": 5}


def test_place_market_buy_reports_a_partial_fill_and_leaves_nothing_open(exchange):
    exchange.control(partial_fill_ratio=0.4, partial_fill_hold_seconds=120)
    wrapper = make_wrapper(exchange.env, fill_timeout=3)  # the rest would fill in 120 s: give up before
    with pytest.raises(PartialFill) as raised:
        wrapper.place_market_buy("AMD", 10)
    result = raised.value.result
    assert result.filled_shares == 4 and result.is_terminal
    assert wrapper.get_positions() == {"AMD": 4}
    [order] = exchange.state()["orders"]
    assert order["status"] == "canceled"


def test_rejected_order_is_no_fill(exchange, wrapper):
    exchange.control(reject_orders=1)
    cid = new_client_order_id()
    # The paper exchange accepts the order, then it ends rejected (as in test_orchestrator_trading).
    wrapper.submit_market_order("AAPL", "buy", 5, cid)
    done = wrapper.wait_for_terminal(cid, timeout=20)
    assert done.status == "rejected"
    assert done.filled_shares == 0 and done.filled_avg_price is None
    assert orders_with_id(exchange, cid)[0]["status"] == "rejected"
    assert wrapper.get_positions() == {}
    exchange.control(reject_orders=1)
    with pytest.raises(OrderRejected):
        wrapper.place_market_buy("AAPL", 5)
    assert wrapper.get_account_cash() == pytest.approx(100000.0)


@pytest.mark.parametrize("symbol, shares", [("ZZZZ", 1), ("AAPL", 1_000_000)])
def test_unknown_symbol_or_too_little_cash_is_rejected(untraded_exchange, untraded_wrapper, symbol, shares):
    with pytest.raises(OrderRejected):
        untraded_wrapper.submit_market_order(symbol, "buy", shares, new_client_order_id())
    assert untraded_exchange.state()["orders"] == []


@pytest.mark.parametrize("args", [("AAPL", "hold", 1), ("AAPL", "buy", 0), ("AAPL", "buy", 1.0000000001),
                                  ("", "buy", 1), ("AAPL", "buy", True)])
def test_malformed_orders_never_reach_the_broker(untraded_exchange, untraded_wrapper, args):
    with pytest.raises(ValueError):
        untraded_wrapper.submit_market_order(*args, new_client_order_id())
    assert untraded_exchange.state()["orders"] == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_lost_answer_after_the_order_was_placed_is_settled_by_look_up(exchange, wrapper, status, caplog):
    caplog.set_level(logging.INFO, logger="orchestra.alpaca_wrapper")
    cid = new_client_order_id()
    exchange.control(fail_requests=1, fail_status=status, fail_after_processing=True)

    result = wrapper.submit_market_order("AAPL", "buy", 2, cid)

    assert result.client_order_id == cid
    assert len(orders_with_id(exchange, cid)) == 1
    assert f"answer to order {cid} lost" in caplog.text
    # Settled by the look-up alone: the POST was never re-sent (not even by the SDK's own
    # 504 retry), so the broker never had to refuse a duplicate.
    assert "already placed" not in caplog.text
    assert wrapper.wait_for_terminal(cid, timeout=20).filled_shares == 2
    assert wrapper.get_positions() == {"AAPL": 2}


def test_5xx_before_the_order_was_placed_is_looked_up_then_sent_again(exchange, wrapper):
    cid = new_client_order_id()
    exchange.control(fail_requests=1, fail_status=503)

    wrapper.submit_market_order("AAPL", "buy", 2, cid)

    assert len(orders_with_id(exchange, cid)) == 1
    assert wrapper.wait_for_terminal(cid, timeout=20).filled_shares == 2


def test_answer_and_look_up_both_lost_is_an_unknown_outcome(exchange, wrapper):
    cid = new_client_order_id()
    exchange.control(fail_requests=50, fail_status=502, fail_after_processing=True)

    with pytest.raises(UnknownOrderOutcome):
        wrapper.submit_market_order("AAPL", "buy", 2, cid)

    exchange.control(fail_requests=0)
    found = wrapper.get_order_by_client_id(cid)  # the reconciliation the orchestrator does later
    assert found is not None and len(orders_with_id(exchange, cid)) == 1


def test_wait_is_bounded_and_cancel_keeps_what_filled(exchange, wrapper):
    exchange.control(fill_delay_seconds=600)
    cid = new_client_order_id()
    wrapper.submit_market_order("SPY", "buy", 1, cid)

    waited = wrapper.wait_for_terminal(cid, timeout=1.0)
    assert not waited.is_terminal and waited.filled_shares == 0

    canceled = wrapper.cancel_order(cid)
    assert canceled.status == "canceled" and canceled.filled_shares == 0
    assert wrapper.get_positions() == {}


def test_unknown_order_ids(untraded_wrapper):
    assert untraded_wrapper.get_order_by_client_id("never-sent") is None
    with pytest.raises(OrderNotFound):
        untraded_wrapper.wait_for_terminal("never-sent", timeout=1)


def test_keys_never_reach_the_logs(exchange, caplog):
    caplog.set_level(logging.DEBUG)
    secret = exchange.env["ALPACA_SECRET"]
    wrapper = make_wrapper(exchange.env)
    exchange.control(fail_requests=1, fail_status=503, fail_after_processing=True)
    wrapper.place_market_buy("AAPL", 1)
    bad = make_wrapper(exchange.env, ALPACA_SECRET="wrong-secret-999")
    with pytest.raises(BrokerAuthError):
        bad.get_account_cash()
    text = caplog.text
    assert "lost" in text  # the failure was logged ...
    assert secret not in text and "wrong-secret-999" not in text  # ... without a key
    assert exchange.env["ALPACA_API_KEY"] not in text
