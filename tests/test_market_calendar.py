"""The calendar's answers from session opens and closes equal exchange-calendars' own, minute for minute."""
from __future__ import annotations

import json
from datetime import datetime
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from database import market_calendar

REPO_ROOT = Path(__file__).resolve().parents[1]


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


def test_the_stored_sessions_are_exactly_those_of_the_installed_exchange_calendars():
    stored = json.loads(market_calendar.SESSIONS_FILE.read_text())["sessions"]

    assert stored == market_calendar.calendar_sessions()  # else: python -m database.market_calendar --write-sessions
    assert stored[0] == ["2018-01-02", 1514903400, 1514926800]


def test_sessions_in_range_skip_weekends_and_holidays():
    days = market_calendar.sessions_in_range("2026-11-21", "2026-11-30")

    assert days == ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27", "2026-11-30"]
    calendar = market_calendar.nyse()
    expected = calendar.sessions_in_range(pd.Timestamp("2024-01-01"), pd.Timestamp("2026-12-31")).strftime("%Y-%m-%d")
    assert market_calendar.sessions_in_range("2024-01-01", "2026-12-31") == list(expected)


def test_answering_whether_the_market_is_open_loads_neither_pandas_nor_the_calendar_library():
    code = ("import sys; from database import market_calendar as m;"
            "print(m.is_open('2026-11-23T15:00:00Z'), m.sessions_in_range('2026-11-26', '2026-11-27'),"
            " m.to_utc_string('2026-11-23T15:00:00Z'), sorted({'pandas', 'numpy', 'exchange_calendars'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout

    assert out.strip() == "True ['2026-11-27'] 2026-11-23T15:00:00Z []"


def test_session_bounds_and_sessions_back_agree_with_the_calendar():
    calendar = market_calendar.nyse()
    for day in ("2026-11-23", "2026-11-27", "2026-11-26", "2026-11-28", "2018-01-02"):
        expected = (calendar.session_open(day), calendar.session_close(day)) if calendar.is_session(day) else None
        assert market_calendar.session_bounds(day) == expected, day
    assert market_calendar.session_open_back("2026-11-24T02:00:00Z", 3) == pd.Timestamp("2026-11-19T14:30:00Z")


def test_next_open_and_close_as_plain_datetimes_match_the_timestamps():
    for at in ("2026-11-23T15:00:00Z", "2026-11-25T22:00:00Z", "2026-11-27T18:00:00Z"):
        opens, closes = market_calendar.next_open_and_close(at)
        assert (opens, closes) == (market_calendar.next_open(at).to_pydatetime(),
                                   market_calendar.next_close(at).to_pydatetime())
        assert type(opens) is datetime and opens.tzinfo is not None
