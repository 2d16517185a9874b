"""Alpaca's historical stock bars: ``/v2/stocks/bars`` and ``/v2/stocks/{symbol}/bars``.

Only complete minute bars up to the simulated now are served (no peeking into the future).
Results are sorted by symbol, then time; ``limit`` counts bars across symbols and a
``next_page_token`` continues where a page stopped, as Alpaca's pagination does.
"""
from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Optional

import pandas as pd
from flask import Flask, jsonify, request

from .broker import ApiError
from .clock import NEW_YORK, parse_utc
from .market import Bar

if TYPE_CHECKING:
    from .server import Exchange

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
FEEDS = ("iex", "sip")
TIMEFRAMES = ("1Min", "1T", "1min")
SYMBOL_PATTERN = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")


def register(app: Flask, exchange: "Exchange") -> None:
    @app.get("/v2/stocks/bars")
    def multi_bars():
        symbols = [s.strip() for s in request.args.get("symbols", "").split(",") if s.strip()]
        if not symbols:
            raise ApiError(400, "missing symbols")
        page, token = _page(exchange, symbols)
        grouped: dict[str, list] = {}
        for bar in page:
            grouped.setdefault(bar.symbol, []).append(bar_json(bar))
        return jsonify({"bars": grouped, "next_page_token": token, "currency": "USD"})

    @app.get("/v2/stocks/<symbol>/bars")
    def single_bars(symbol: str):
        page, token = _page(exchange, [symbol])
        return jsonify({"bars": [bar_json(b) for b in page], "symbol": symbol,
                        "next_page_token": token, "currency": "USD"})


def bar_json(bar: Bar) -> dict:
    return {"t": bar.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"), "o": bar.open, "h": bar.high,
            "l": bar.low, "c": bar.close, "v": bar.volume, "n": bar.trade_count, "vw": bar.vwap}


def _page(exchange: "Exchange", symbols: list[str]) -> tuple[list[Bar], Optional[str]]:
    for symbol in symbols:
        if not SYMBOL_PATTERN.match(symbol):
            raise ApiError(400, f"invalid symbol: {symbol}")
    args = request.args
    if not args.get("timeframe"):
        raise ApiError(400, "missing timeframe")
    if args["timeframe"] not in TIMEFRAMES:
        raise ApiError(400, f"invalid timeframe: {args['timeframe']} (the paper exchange serves 1Min bars only)")
    if args.get("feed", "iex") not in FEEDS:
        raise ApiError(400, f"invalid feed: {args.get('feed')}")
    if args.get("sort", "asc") not in ("asc", "desc"):
        raise ApiError(400, f"invalid sort: {args.get('sort')}")
    limit = _limit(args.get("limit"))
    now = exchange.clock.now()
    start = _moment(args.get("start"), "start", end_of_day=False) or _start_of_day(now)
    end = _moment(args.get("end"), "end", end_of_day=True) or now
    if end < start:
        raise ApiError(422, "end should not be before start")
    complete_until = now.replace(second=0, microsecond=0)  # bars with t + 1min <= now
    stop = min(end + timedelta(microseconds=1), complete_until)  # end is inclusive
    adjustment = args.get("adjustment", "raw")
    descending = args.get("sort") == "desc"
    after = _decode_token(args.get("page_token"))
    page: list[Bar] = []
    for symbol in sorted(set(symbols)):
        bars = exchange.market.bars_between(symbol, start, stop)
        if args.get("feed", "iex") == "iex":  # SIP sees every trade: whole minutes, no late corrections
            bars = exchange.feed.visible(bars, now)
        bars = exchange.corporate_actions.adjusted(bars, adjustment, now)
        if descending:
            bars.reverse()
        for bar in bars:
            key = (bar.symbol, bar.timestamp)
            if after and not _beyond(key, after, descending):
                continue
            if len(page) == limit:
                return page, _encode_token(page[-1])
            page.append(bar)
    return page, None


def _beyond(key, after, descending: bool) -> bool:
    symbol, stamp = key
    if symbol != after[0]:
        return symbol > after[0]
    return stamp < after[1] if descending else stamp > after[1]


def _limit(raw: Optional[str]) -> int:
    if raw in (None, ""):
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"invalid limit: {raw}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise ApiError(400, f"invalid limit: {raw} (1 to {MAX_LIMIT})")
    return value


def _moment(raw: Optional[str], name: str, end_of_day: bool) -> Optional[datetime]:
    """RFC-3339 time, or a YYYY-MM-DD date meaning that New York day (its start, or for end its end)."""
    if not raw:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            day = pd.Timestamp(raw).tz_localize(NEW_YORK)
            if end_of_day:
                day += pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
            return day.tz_convert("UTC").to_pydatetime()
        return parse_utc(raw)
    except ValueError:
        raise ApiError(400, f"invalid {name}: {raw}") from None


def _start_of_day(now: datetime) -> datetime:
    local = pd.Timestamp(now).tz_convert(NEW_YORK).normalize()
    return local.tz_convert("UTC").to_pydatetime()


def _encode_token(bar: Bar) -> str:
    raw = f"{bar.symbol}|{bar.timestamp.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: Optional[str]):
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        symbol, stamp = raw.split("|")
        return symbol, datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid page token") from None
