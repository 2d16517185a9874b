"""Simulated clock and NYSE calendar as alpaca-py's TradingClient sees them."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import requests
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import GetCalendarRequest

from tests.fixtures.exchange import wait_until

UTC = timezone.utc


@pytest.fixture
def exchange(paper_exchange_factory):
    return paper_exchange_factory(start="2026-11-23T14:25:00Z", speed=0)  # frozen: exact answers


@pytest.fixture
def client(exchange):
    return TradingClient(exchange.key, exchange.secret, paper=True, url_override=exchange.base_url)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_before_the_open_the_market_is_closed_and_opens_at_0930_new_york(client):
    clock = client.get_clock()
    assert clock.timestamp == utc("2026-11-23T14:25:00Z")
    assert clock.is_open is False
    assert clock.next_open == utc("2026-11-23T14:30:00Z")
    assert clock.next_close == utc("2026-11-23T21:00:00Z")
    assert clock.timestamp.utcoffset() == timedelta(hours=-5)  # Alpaca answers in New York time


def test_during_the_session_the_market_is_open_until_1600(client, exchange):
    exchange.set_clock("2026-11-24T15:00:00Z")
    clock = client.get_clock()
    assert clock.is_open is True
    assert clock.next_close == utc("2026-11-24T21:00:00Z")
    assert clock.next_open == utc("2026-11-25T14:30:00Z")


def test_thanksgiving_is_closed_and_the_next_day_closes_early_at_1300(client, exchange):
    exchange.set_clock("2026-11-26T16:00:00Z")  # Thursday 11:00 New York, a holiday
    clock = client.get_clock()
    assert clock.is_open is False
    assert clock.next_open == utc("2026-11-27T14:30:00Z")
    assert clock.next_close == utc("2026-11-27T18:00:00Z")  # 13:00 New York

    exchange.set_clock("2026-11-27T17:59:30Z")
    assert client.get_clock().is_open is True
    exchange.set_clock("2026-11-27T18:00:30Z")
    after = client.get_clock()
    assert after.is_open is False
    assert after.next_open == utc("2026-11-30T14:30:00Z")


def test_calendar_lists_sessions_skipping_the_holiday_with_the_early_close(client):
    days = client.get_calendar(GetCalendarRequest(start=date(2026, 11, 24), end=date(2026, 11, 30)))
    assert [d.date for d in days] == [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 27), date(2026, 11, 30)]
    hours = {d.date: (d.open.strftime("%H:%M"), d.close.strftime("%H:%M")) for d in days}
    assert hours[date(2026, 11, 27)] == ("09:30", "13:00")
    assert hours[date(2026, 11, 25)] == ("09:30", "16:00")


def test_calendar_raw_shape_matches_alpaca(exchange):
    response = requests.get(f"{exchange.base_url}/v2/calendar", params={"start": "2026-11-27", "end": "2026-11-27"},
                            headers=exchange.headers, timeout=30)
    assert response.json() == [{"date": "2026-11-27", "open": "09:30", "close": "13:00", "session_open": "0400",
                                "session_close": "1700", "settlement_date": "2026-11-30"}]


def test_the_clock_runs_at_the_chosen_speed(paper_exchange_factory):
    exchange = paper_exchange_factory(start="2026-11-23T14:25:00Z", speed=600)
    client = TradingClient(exchange.key, exchange.secret, paper=True, url_override=exchange.base_url)
    assert exchange.state()["clock"]["speed"] == 600.0
    # 5 simulated minutes to the open: half a second at speed 600
    wait_until(lambda: client.get_clock().is_open, timeout=60, interval=0.1, message="the simulated open")
    assert client.get_clock().timestamp >= utc("2026-11-23T14:30:00Z")
    clock = exchange.state()["clock"]
    assert clock["speed"] == 600.0
    assert utc(clock["now"]) >= utc("2026-11-23T14:30:00Z")  # advanced at least 5 minutes from 14:25


def test_clock_control_changes_speed_and_refuses_bad_input(exchange):
    done = exchange.set_clock("2026-11-25T15:00:00Z", speed=0)
    assert done["clock"] == {"now": "2026-11-25T15:00:00.000000Z", "speed": 0.0}
    bad = requests.post(f"{exchange.base_url}/_sim/control", json={"clock": {"set": "tomorrow"}}, timeout=30)
    assert bad.status_code == 400
    assert "clock.set" in bad.json()["error"]
    assert exchange.state()["clock"]["now"] == "2026-11-25T15:00:00.000000Z"
