"""The calendar's answers from session opens and closes equal exchange-calendars' own, minute for minute."""
from __future__ import annotations

import random

import pandas as pd
import pytest

from database import market_calendar


def test_open_next_open_and_next_close_agree_with_exchange_calendars_over_random_times():
    calendar = market_calendar.nyse()
    rng = random.Random(7)
    start = pd.Timestamp("2018-01-02T00:00:00Z")
    for _ in range(2000):
        at = start + pd.Timedelta(seconds=rng.randrange(0, 12 * 365 * 86400))
        minute = at.floor("min")
        assert market_calendar.is_open(at) is calendar.is_trading_minute(minute), at  # a plain bool (JSON)
        assert market_calendar.next_open(at) == calendar.next_open(minute), at
        assert market_calendar.next_close(at) == calendar.next_close(minute), at


@pytest.mark.parametrize("start, end, count", [
    ("2026-11-23T14:30:00Z", "2026-11-23T14:30:00Z", 1),      # the open itself
    ("2026-11-23T14:29:59Z", "2026-11-23T14:31:01Z", 2),      # whole minutes inside the bounds only
    ("2026-11-23T20:59:00Z", "2026-11-24T14:30:00Z", 2),      # the last bar of a day, the first of the next
    ("2026-11-26T00:00:00Z", "2026-11-26T23:59:00Z", 0),      # Thanksgiving
    ("2026-11-27T00:00:00Z", "2026-11-27T23:59:00Z", 210),    # the early close at 13:00 New York
    ("2026-11-20T00:00:30Z", "2026-12-02T15:00:00Z", 2581),
])
def test_minutes_between_equals_the_calendars_minute_index(start, end, count):
    minutes = market_calendar.all_minutes()
    expected = minutes[(minutes >= pd.Timestamp(start)) & (minutes <= pd.Timestamp(end))]

    found = market_calendar.minutes_index(start, end)

    assert found.equals(expected) and len(found) == count
    assert market_calendar.minutes_between(start, end) == list(expected.strftime("%Y-%m-%dT%H:%M:%SZ"))
