"""NYSE trading minutes, opens and closes from ``exchange-calendars`` (holidays, early closes).

All inputs and outputs are UTC; a minute is named by its bar start ("...T14:30:00Z" is the
09:30 ET bar in winter). No hand-written holiday rules live in this project.

The daemons' questions (open now? next open/close? the minutes between two times?) are answered
from the sessions' opens and closes by binary search. Those come from ``nyse_sessions.json``, which
``python -m database.market_calendar --write-sessions`` generates from exchange-calendars (a test
checks that they still agree), so no process needs the calendar library to ask. The calendar's own
minute index (1.27 million timestamps, ~20 MB resident once built) is only built for the few
callers of ``all_minutes`` (creating stocks.db, benchmarks). exchange-calendars is imported only
by those and ``nyse()``, pandas only where a ``pd.Timestamp`` is returned: the API converts "...Z"
strings and asks whether the market is open without loading either.
"""
from __future__ import annotations

import json
import re
import sys
from bisect import bisect_left, bisect_right
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import exchange_calendars
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
CALENDAR_START = "2018-01-01"
CALENDAR_END = "2030-12-31"
NEW_YORK = "America/New_York"


@lru_cache(maxsize=4)
def nyse(start: str = CALENDAR_START, end: str = CALENDAR_END) -> exchange_calendars.ExchangeCalendar:
    import exchange_calendars

    return exchange_calendars.get_calendar("XNYS", start=start, end=end)


def parse_utc(value: str | datetime | pd.Timestamp) -> pd.Timestamp:
    """A UTC timestamp from a "...Z" string or a tz-aware datetime (naive input is refused)."""
    import pandas as pd

    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone; use UTC ('...Z')")
    return stamp.tz_convert("UTC")


def utc_datetime(value: str | datetime) -> datetime:
    """Like ``parse_utc`` but a plain ``datetime``, without pandas for "...Z" strings and aware datetimes."""
    if isinstance(value, str) and _CANONICAL.fullmatch(value):
        return datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)
    if isinstance(value, datetime) and type(value) is datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamp {value!r} has no time zone; use UTC ('...Z')")
        return value.astimezone(timezone.utc)
    return parse_utc(value).to_pydatetime()


def to_utc_string(value: str | datetime | pd.Timestamp) -> str:
    if isinstance(value, str) and _CANONICAL.fullmatch(value):
        datetime.strptime(value, TIMESTAMP_FORMAT)  # a real date and time, or ValueError
        return value
    if type(value) is datetime:
        return utc_datetime(value).strftime(TIMESTAMP_FORMAT)
    return parse_utc(value).strftime(TIMESTAMP_FORMAT)


SESSIONS_FILE = Path(__file__).resolve().parent / "nyse_sessions.json"


def calendar_sessions() -> list[list]:
    """``[[day, open, close], ...]`` (epoch seconds, UTC) of every session, from exchange-calendars."""
    import pandas as pd

    cal = nyse()
    days = cal.sessions.strftime("%Y-%m-%d")
    opens, closes = pd.DatetimeIndex(cal.opens).asi8 // 10**9, pd.DatetimeIndex(cal.closes).asi8 // 10**9
    return [[day, int(o), int(c)] for day, o, c in zip(days, opens, closes)]


def write_sessions_file(path: Path = SESSIONS_FILE) -> int:
    """Regenerate ``nyse_sessions.json`` from exchange-calendars (after upgrading it); returns sessions."""
    import exchange_calendars

    sessions = calendar_sessions()
    path.write_text(json.dumps({"calendar": "XNYS", "start": CALENDAR_START, "end": CALENDAR_END,
                                "exchange_calendars": exchange_calendars.__version__,
                                "sessions": sessions}, separators=(",", ":")) + "\n")
    return len(sessions)


@lru_cache(maxsize=1)
def _sessions() -> tuple[list[str], list[int], list[int]]:
    """(days, opens, closes) of every session, sorted; opens[i] < closes[i] <= opens[i+1].

    Read from ``nyse_sessions.json`` (exchange-calendars' sessions, written by
    ``write_sessions_file``; a test keeps the two equal), so answering needs no pandas.
    """
    rows = json.loads(SESSIONS_FILE.read_text())["sessions"]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def _seconds(at: str | datetime | pd.Timestamp) -> int:
    """Epoch seconds of ``at`` floored to its minute."""
    if isinstance(at, str) or type(at) is datetime:
        return int(utc_datetime(at).timestamp()) // 60 * 60
    return int(parse_utc(at).value // 10**9) // 60 * 60


def _stamp(seconds: int) -> pd.Timestamp:
    import pandas as pd

    return pd.Timestamp(int(seconds), unit="s", tz="UTC")


def _minute_seconds(start: str | datetime, end: str | datetime) -> np.ndarray:
    """Epoch seconds of the session minutes with start <= minute <= end."""
    import numpy as np

    lo_exact, hi = parse_utc(start).value / 10**9, _seconds(end)
    lo = -(-int(np.ceil(lo_exact)) // 60) * 60  # the first whole minute at or after start
    _, opens, closes = _sessions()
    first, last = bisect_right(closes, lo), bisect_right(opens, hi)
    parts = [np.arange(max(opens[i], lo), min(closes[i], hi + 60), 60, dtype="int64") for i in range(first, last)]
    return np.concatenate(parts) if parts else np.empty(0, dtype="int64")


def minutes_between(start: str | datetime, end: str | datetime) -> list[str]:
    """Bar-start minutes of regular sessions with start <= minute <= end."""
    return list(minutes_index(start, end).strftime(TIMESTAMP_FORMAT))


def minutes_index(start: str | datetime, end: str | datetime) -> pd.DatetimeIndex:
    """``minutes_between`` as a UTC DatetimeIndex."""
    import pandas as pd

    return pd.DatetimeIndex((_minute_seconds(start, end) * 10**9).astype("datetime64[ns]"), tz="UTC")


def all_minutes() -> pd.DatetimeIndex:
    return nyse().minutes


def is_open(at: str | datetime) -> bool:
    """True while a regular session is trading at ``at`` (open <= minute < close)."""
    minute = _seconds(at)
    _, opens, closes = _sessions()
    i = bisect_right(opens, minute) - 1
    return i >= 0 and minute < closes[i]


def next_open(at: str | datetime) -> pd.Timestamp:
    """The first open strictly after ``at``."""
    _, opens, _ = _sessions()
    return _stamp(opens[bisect_right(opens, _seconds(at))])


def next_open_and_close(at: str | datetime) -> tuple[datetime, datetime]:
    """``(next_open(at), next_close(at))`` as plain UTC datetimes, without loading pandas."""
    _, opens, closes = _sessions()
    minute = _seconds(at)
    return tuple(datetime.fromtimestamp(times[bisect_right(times, minute)], timezone.utc) for times in (opens, closes))


def next_close(at: str | datetime) -> pd.Timestamp:
    """The first close strictly after ``at``."""
    _, _, closes = _sessions()
    return _stamp(closes[bisect_right(closes, _seconds(at))])


def session_open_back(at: str | datetime, sessions: int) -> pd.Timestamp:
    """The open of the ``sessions``-th session counting back from ``at`` (one already open counts);
    the calendar's first open when there are fewer."""
    _, opens, _ = _sessions()
    started = bisect_right(opens, _seconds(at))
    return _stamp(opens[max(0, started - max(1, int(sessions)))])


def sessions_in_range(first_day: str, last_day: str) -> list[str]:
    """Trading days ("YYYY-MM-DD") with first_day <= day <= last_day."""
    days, _, _ = _sessions()
    return days[bisect_left(days, first_day):bisect_right(days, last_day)]


def session_bounds(day: str) -> Optional[tuple[pd.Timestamp, pd.Timestamp]]:
    """(open, close) in UTC of the session on ``day`` (YYYY-MM-DD), or None on a closed day."""
    days, opens, closes = _sessions()
    i = bisect_left(days, day)
    if i == len(days) or days[i] != day:
        return None
    return _stamp(opens[i]), _stamp(closes[i])


def latest_session(at: str | datetime) -> Optional[tuple[datetime, datetime]]:
    """(open, close) as UTC datetimes of the latest session opened at or before ``at`` (no pandas)."""
    _, opens, closes = _sessions()
    i = bisect_right(opens, _seconds(at)) - 1
    if i < 0:
        return None
    return (datetime.fromtimestamp(opens[i], timezone.utc), datetime.fromtimestamp(closes[i], timezone.utc))


@lru_cache(maxsize=1)
def _minutes_before_session() -> list[int]:
    """For each session, how many market minutes all earlier sessions have."""
    _, opens, closes = _sessions()
    counts, total = [], 0
    for start, end in zip(opens, closes):
        counts.append(total)
        total += (end - start) // 60
    return counts


def _minutes_before(seconds: int) -> int:
    """Market minutes that start before the minute ``seconds`` (epoch)."""
    _, opens, closes = _sessions()
    i = bisect_right(opens, seconds) - 1
    if i < 0:
        return 0
    return _minutes_before_session()[i] + (min(seconds, closes[i]) - opens[i]) // 60


def market_minutes_between(earlier: str | datetime, later: str | datetime) -> int:
    """Market minutes from the minute ``earlier`` to the minute ``later`` (0: the same minute)."""
    return _minutes_before(_seconds(later)) - _minutes_before(_seconds(earlier))


def same_session(first: str | datetime, second: str | datetime) -> bool:
    """Whether two moments belong to the same session (the latest one opened by each)."""
    _, opens, _ = _sessions()
    return bisect_right(opens, _seconds(first)) == bisect_right(opens, _seconds(second))


def main(argv: list[str] | None = None) -> int:
    """``--write-sessions``: regenerate nyse_sessions.json from the installed exchange-calendars."""
    if (argv if argv is not None else sys.argv[1:]) != ["--write-sessions"]:
        print("usage: python -m database.market_calendar --write-sessions", file=sys.stderr)
        return 2
    print(f"{write_sessions_file()} sessions written to {SESSIONS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
