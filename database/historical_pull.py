"""Minute bars from the broker's market-data REST API into stocks.db, and gap backfills.

Run from the repository root:
    python -m database.historical_pull AAPL NVDA --start 2026-11-02 --end 2026-11-20
    python -m database.historical_pull AAPL --backfill [--now 2026-11-23T15:00:00Z]

"Now" (the last complete minute, today's splits) is the trading clock's, always passed in by the
caller (the daemon passes its clock's; the command line ``--now``, else the computer's clock).

Bars are asked for a few sessions at a time (alpaca-py follows ``next_page_token`` within each
request), so memory stays small and a progress bar can move. Only regular-session minutes are
stored, through ``db_manager.upsert_bars``: re-running a pull never duplicates a row.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sqlite3
import sys
from typing import Callable, Iterable, Iterator, Optional

import pandas as pd
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from pydantic import ValidationError
from requests.exceptions import RequestException
from tqdm import tqdm

from database import db_manager, market_calendar
from shared.broker_sdk import configure_rest_client
from shared.clock import computer_stamp
from shared.config import AlpacaSettings, ConfigError, Settings, load_env

logger = logging.getLogger(__name__)

NEW_YORK = "America/New_York"
SESSIONS_PER_REQUEST = 5
REQUEST_TIMEOUT = 30.0
_TICKER = re.compile(r"[A-Z][A-Z0-9.\-]{0,11}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class PullError(Exception):
    """A pull that cannot be done as asked: bad ticker or range, or the data API refused it."""


class DataUnavailable(PullError):
    """The data API could not be reached or failed (timeout, 5xx): try again later."""


def data_client(settings: AlpacaSettings, budget=None) -> StockHistoricalDataClient:
    """The SDK's historical client at ``ALPACA_DATA_URL`` (or Alpaca's own), with timeouts; its
    requests count against ``budget`` (the daemon's one request budget) when given."""
    client = StockHistoricalDataClient(settings.api_key, settings.secret, url_override=settings.data_url)
    return configure_rest_client(client, timeout=REQUEST_TIMEOUT, sdk_retries=3, budget=budget)


def _bound(value: str, *, end: bool, name: str = "") -> pd.Timestamp:
    """A UTC bound from a date (the whole New York day) or a UTC timestamp ("...Z")."""
    text = str(value).strip()
    try:
        if _DATE.fullmatch(text):
            day = pd.Timestamp(text).tz_localize(NEW_YORK)
            bound = day + pd.Timedelta(days=1) - pd.Timedelta(minutes=1) if end else day
            return bound.tz_convert("UTC")
        return market_calendar.parse_utc(text)
    except (ValueError, TypeError) as exc:
        raise PullError(f"{name or ('end' if end else 'start')} {value!r} is not a date (YYYY-MM-DD) "
                        f"or a UTC time (YYYY-MM-DDTHH:MM:SSZ)") from exc


def _tickers(tickers: Iterable[str]) -> list[str]:
    if isinstance(tickers, str):
        tickers = [tickers]
    cleaned = sorted({str(t).strip().upper() for t in tickers})
    bad = [t for t in cleaned if not _TICKER.fullmatch(t)]
    if not cleaned or bad:
        raise PullError(f"not a stock symbol: {', '.join(bad) or '(none given)'}")
    return cleaned


def market_minutes(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Regular-session minutes with start <= minute <= end."""
    return market_calendar.minutes_index(start, end)


def _chunks(minutes: pd.DatetimeIndex, sessions: int) -> Iterator[pd.DatetimeIndex]:
    """``minutes`` cut into runs of at most ``sessions`` New York trading days."""
    days = minutes.tz_convert(NEW_YORK).normalize()
    unique_days = days.unique()
    for i in range(0, len(unique_days), sessions):
        yield minutes[days.isin(unique_days[i:i + sessions])]


def _fetch(client: StockHistoricalDataClient, feed: str, tickers: list[str],
           start: pd.Timestamp, end: pd.Timestamp, limit: Optional[int] = None) -> dict:
    """``{symbol: [Bar, ...]}`` for one request (all pages); broker failures become PullError."""
    request = StockBarsRequest(symbol_or_symbols=tickers, timeframe=TimeFrame.Minute, start=start.to_pydatetime(),
                               end=end.to_pydatetime(), limit=limit, feed=DataFeed(feed),
                               adjustment=Adjustment.SPLIT)  # split-adjusted: a split is never a price move
    try:
        return client.get_stock_bars(request).data
    except APIError as exc:
        failure = DataUnavailable if (exc.status_code or 500) >= 500 or exc.status_code == 429 else PullError
        raise failure(f"data API answered {exc.status_code} for {', '.join(tickers)}: {str(exc)[:200]}") from None
    except RequestException as exc:
        raise DataUnavailable(f"data API unreachable ({type(exc).__name__}): {str(exc)[:200]}") from None
    except ValidationError as exc:
        raise PullError(f"data API sent bars that do not parse: {str(exc)[:200]}") from None


def _rows(bars_by_symbol: dict, keep: Callable[[str, str], bool]) -> list[dict]:
    rows = []
    for symbol, bars in bars_by_symbol.items():
        for bar in bars:
            stamp = market_calendar.to_utc_string(bar.timestamp)
            if keep(symbol, stamp):
                rows.append({"ticker": symbol, "timestamp": stamp, "open": bar.open, "high": bar.high,
                             "low": bar.low, "close": bar.close, "volume": bar.volume,
                             "vwap": bar.vwap, "trade_count": bar.trade_count})
    return rows


def _store(conn: sqlite3.Connection, client, feed: str, tickers: list[str], minutes: pd.DatetimeIndex,
           keep: Callable[[str, str], bool], *, progress: bool, sessions_per_request: int) -> int:
    """Fetch ``minutes`` for ``tickers`` chunk by chunk, storing the bars ``keep`` accepts."""
    chunks = list(_chunks(minutes, sessions_per_request))
    days = len(minutes.tz_convert(NEW_YORK).normalize().unique())
    written = 0
    with tqdm(total=days, unit="day", desc=" ".join(tickers)[:30], disable=not progress, leave=True) as bar:
        for chunk in chunks:
            stamps = set(chunk.strftime(market_calendar.TIMESTAMP_FORMAT))
            fetched = _fetch(client, feed, tickers, chunk[0], chunk[-1])
            written += db_manager.upsert_bars(conn, _rows(fetched, lambda s, t: t in stamps and keep(s, t)))
            bar.update(len(chunk.tz_convert(NEW_YORK).normalize().unique()))
            bar.set_postfix(bars=written)
    return written


def _require_data(client, feed: str, tickers: list[str], start: pd.Timestamp, end: pd.Timestamp) -> None:
    """Refuse the whole pull, before writing anything, if a ticker has no bar in the range."""
    for ticker in tickers:
        if not _fetch(client, feed, [ticker], start, end, limit=1).get(ticker):
            raise PullError(f"no bars for {ticker} between {market_calendar.to_utc_string(start)} and "
                            f"{market_calendar.to_utc_string(end)}: unknown ticker, or nothing traded")


def pull_bars(conn: sqlite3.Connection, tickers: list[str], start: str, end: str, *, now: str,
              settings: AlpacaSettings, progress: bool = False,
              sessions_per_request: int = SESSIONS_PER_REQUEST) -> int:
    """Store every regular-session minute bar of ``tickers`` in [start, end]; returns bars written.

    ``start``/``end`` are dates (whole New York days) or UTC times; ``now`` (UTC, the trading clock's)
    dates the splits the bars are adjusted for. Raises PullError, before
    writing anything, for a malformed ticker, an empty or inverted range, or a ticker the data
    API has no bars for.
    """
    symbols = _tickers(tickers)
    lo, hi, at = _bound(start, end=False), _bound(end, end=True), _bound(now, end=False, name="now")
    if lo > hi:
        raise PullError(f"start {start} is after end {end}")
    minutes = market_minutes(lo, hi)
    if minutes.empty:
        raise PullError(f"no market minutes between {start} and {end}")
    client = data_client(settings)
    _require_data(client, settings.feed, symbols, minutes[0], minutes[-1])
    written = _store(conn, client, settings.feed, symbols, minutes, lambda s, t: True,
                     progress=progress, sessions_per_request=max(1, sessions_per_request))
    _note_splits_reflected(conn, settings, symbols, minutes[0], at)
    logger.info("pulled %d bars of %s from %s to %s", written, ",".join(symbols), start, end)
    return written


def _note_splits_reflected(conn: sqlite3.Connection, settings: AlpacaSettings, symbols: list[str],
                           start: pd.Timestamp, now: pd.Timestamp) -> None:
    """The bars just pulled are adjusted for every split up to today: note those splits as applied,
    so the orchestrator does not scale these bars a second time."""
    from database import corporate_actions_pull

    today = now.tz_convert(NEW_YORK).date()
    client = corporate_actions_pull.actions_client(settings)
    first = start.tz_convert(NEW_YORK).date()
    for action in corporate_actions_pull.fetch_corporate_actions(client, symbols, first, today):
        if action["kind"] != "cash_dividend":
            db_manager.note_split_reflected(conn, action["id"], action["symbol"], action["ex_date"],
                                            action["old_rate"] / action["new_rate"], market_calendar.to_utc_string(now))


def _sessions_back(at: pd.Timestamp, sessions: int) -> pd.Timestamp:
    """The open of the ``sessions``-th session counting back from ``at`` (today's counts once open)."""
    first = market_calendar.session_open_back(at, sessions)
    return at if first > at else first


def _search_start(conn: sqlite3.Connection, symbol: str, window_start: pd.Timestamp) -> pd.Timestamp:
    """Where a backfill starts looking: the window's start, or the last stored bar if that is older.

    Stored bars inside the window do not move the start: when the stream wrote a ticker's first
    bars before its back-fill ran, the minutes before them must still be fetched.
    """
    last = db_manager.get_last_timestamp(conn, symbol)
    if last is None:
        return window_start
    return min(window_start, market_calendar.parse_utc(last))


def backfill(conn: sqlite3.Connection, ticker: str, *, now: str,
             settings: AlpacaSettings, new_ticker_days: int = 5,
             progress: bool = False, budget=None) -> int:
    """Fetch exactly the market minutes ``ticker`` is missing, up to the last complete minute.

    Searched: everything since the last stored bar, and the holes of the last ``new_ticker_days``
    sessions (a stream that reconnected quickly leaves a hole *before* its newest bar, and one
    that started before the back-fill leaves the session's start); a new ticker gets those
    sessions whole. Minutes up to the ticker's checked-through watermark are never asked for again
    (on a thin ticker an empty minute is a minute without a trade); a backfill that completes moves
    the watermark to its end. Stored bars are never rewritten. ``now`` is the trading clock's UTC
    time (the daemon's clock: the broker's in a simulation). Returns the number of bars written.
    """
    symbol = _tickers([ticker])[0]
    at = _bound(now, end=False, name="now")
    end = at.floor("min") - pd.Timedelta(minutes=1)
    start = _search_start(conn, symbol, _sessions_back(at, new_ticker_days))
    checked = db_manager.get_checked_through(conn, symbol)
    if checked is not None:  # minutes up to it were asked for already: an empty one had no trade
        start = max(start, market_calendar.parse_utc(checked) + pd.Timedelta(minutes=1))
    if start > end:
        return 0
    gaps = db_manager.find_gaps(conn, symbol, market_calendar.to_utc_string(start),
                                market_calendar.to_utc_string(end))
    if not gaps:
        db_manager.set_checked_through(conn, symbol, market_calendar.to_utc_string(end))
        return 0
    missing = set(gaps)
    minutes = market_minutes(market_calendar.parse_utc(gaps[0]), market_calendar.parse_utc(gaps[-1]))
    written = _store(conn, data_client(settings, budget), settings.feed, [symbol], minutes,
                     lambda s, t: t in missing, progress=progress, sessions_per_request=SESSIONS_PER_REQUEST)
    db_manager.set_checked_through(conn, symbol, market_calendar.to_utc_string(end))
    logger.info("backfill %s: %d of %d missing minutes filled (%s to %s)", symbol, written, len(gaps),
                gaps[0], gaps[-1])
    return written


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m database.historical_pull",
                                     description="Pull 1-minute bars into stocks.db, or backfill missing minutes.")
    parser.add_argument("tickers", nargs="+", help="symbols, e.g. AAPL NVDA")
    parser.add_argument("--start", help="first day (YYYY-MM-DD, New York) or UTC time (...Z)")
    parser.add_argument("--end", help="last day (YYYY-MM-DD, New York) or UTC time (...Z)")
    parser.add_argument("--backfill", action="store_true", help="fill the minutes missing up to now instead")
    parser.add_argument("--now", help="the current UTC time, the trading clock's: the last complete minute of a "
                                      "backfill, the day splits are looked up to (default: this computer's clock)")
    parser.add_argument("--days", type=int, default=5, help="with --backfill: sessions to look back (default 5)")
    parser.add_argument("--db", help="stocks.db path (default: AUTOTRADER_STOCKS_DB or database/stocks.db)")
    return parser


def _run(conn: sqlite3.Connection, args: argparse.Namespace, settings: AlpacaSettings) -> None:
    now = args.now or computer_stamp()  # a person's shell: AUTOTRADER_CLOCK=system's trading clock
    if args.backfill:
        for ticker in _tickers(args.tickers):
            filled = backfill(conn, ticker, now=now, settings=settings, new_ticker_days=args.days, progress=True)
            print(f"{ticker}: {filled} missing bars filled")
        return
    written = pull_bars(conn, args.tickers, args.start, args.end, now=now, settings=settings, progress=True)
    print(f"{written} bars stored for {' '.join(_tickers(args.tickers))} ({args.start} to {args.end})")


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.backfill == bool(args.start or args.end) or (not args.backfill and not (args.start and args.end)):
        print("error: give --start and --end, or --backfill (not both)", file=sys.stderr)
        return 2
    if args.days < 1:
        print("error: --days must be at least 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    load_env()
    try:
        settings = Settings.from_env(os.environ)
        broker = settings.broker
        conn = db_manager.get_connection(args.db or settings.databases.stocks_db)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        _run(conn, args, broker)
    except DataUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except PullError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(f"error: stocks.db: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
