"""The simulated market: a fixed universe of assets and reproducible minute bars.

Every price is a pure function of (seed, symbol, minute), so REST history and the stream
agree exactly and a run can be replayed. Daily closes follow a seeded random walk anchored
so each symbol trades near a realistic level in 2026; each session's minutes are a Brownian
bridge from that day's open (previous close plus a small gap) to its close.
"""
from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Optional

import numpy as np
import pandas as pd

from .clock import MarketCalendar

ANCHOR_DAY = "2026-01-02"  # the walk is pinned so that this session closes at the base price
ASSET_NAMESPACE = uuid.UUID("5b1f7c5e-3c59-4d38-9e53-0d6b8c2a7a10")


@dataclass(frozen=True)
class Asset:
    symbol: str
    name: str
    exchange: str
    base_price: float
    daily_volatility: float
    base_volume: int
    active: bool = True

    @property
    def id(self) -> str:
        return str(uuid.uuid5(ASSET_NAMESPACE, self.symbol))


UNIVERSE: tuple[Asset, ...] = (
    Asset("AAPL", "Apple Inc. Common Stock", "NASDAQ", 230.0, 0.016, 60_000),
    Asset("MSFT", "Microsoft Corporation Common Stock", "NASDAQ", 420.0, 0.015, 25_000),
    Asset("NVDA", "NVIDIA Corporation Common Stock", "NASDAQ", 140.0, 0.030, 250_000),
    Asset("TSLA", "Tesla, Inc. Common Stock", "NASDAQ", 250.0, 0.035, 110_000),
    Asset("AMZN", "Amazon.com, Inc. Common Stock", "NASDAQ", 190.0, 0.019, 50_000),
    Asset("GOOGL", "Alphabet Inc. Class A Common Stock", "NASDAQ", 170.0, 0.018, 30_000),
    Asset("META", "Meta Platforms, Inc. Class A Common Stock", "NASDAQ", 560.0, 0.022, 15_000),
    Asset("SPY", "SPDR S&P 500 ETF Trust", "ARCA", 590.0, 0.010, 70_000),
    Asset("QQQ", "Invesco QQQ Trust, Series 1", "NASDAQ", 500.0, 0.012, 40_000),
    Asset("AMD", "Advanced Micro Devices, Inc. Common Stock", "NASDAQ", 150.0, 0.030, 45_000),
    Asset("JPM", "JPMorgan Chase & Co. Common Stock", "NYSE", 220.0, 0.014, 9_000),
    Asset("KO", "Coca-Cola Company (The) Common Stock", "NYSE", 62.0, 0.009, 13_000),
    Asset("F", "Ford Motor Company Common Stock", "NYSE", 11.0, 0.020, 50_000),
    Asset("IWM", "iShares Russell 2000 ETF", "ARCA", 220.0, 0.014, 30_000),
    Asset("NFLX", "Netflix, Inc. Common Stock", "NASDAQ", 880.0, 0.022, 8_000),
    Asset("INTC", "Intel Corporation Common Stock", "NASDAQ", 22.0, 0.028, 90_000),
    Asset("CSCO", "Cisco Systems, Inc. Common Stock", "NASDAQ", 58.0, 0.012, 30_000),
    Asset("PEP", "PepsiCo, Inc. Common Stock", "NASDAQ", 150.0, 0.010, 9_000),
    Asset("WMT", "Walmart Inc. Common Stock", "NYSE", 90.0, 0.011, 25_000),
    Asset("DIS", "Walt Disney Company (The) Common Stock", "NYSE", 110.0, 0.015, 15_000),
    Asset("BAC", "Bank of America Corporation Common Stock", "NYSE", 45.0, 0.016, 60_000),
    Asset("XOM", "Exxon Mobil Corporation Common Stock", "NYSE", 115.0, 0.013, 25_000),
    Asset("CVX", "Chevron Corporation Common Stock", "NYSE", 155.0, 0.013, 12_000),
    Asset("PFE", "Pfizer, Inc. Common Stock", "NYSE", 26.0, 0.014, 50_000),
    Asset("ORCL", "Oracle Corporation Common Stock", "NYSE", 170.0, 0.018, 15_000),
    # Known to Alpaca but delisted: the asset exists, is inactive and cannot be traded.
    Asset("TWTR", "Twitter, Inc. Common Stock", "NYSE", 53.7, 0.0, 0, active=False),
)

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute bar; ``timestamp`` is the bar's start (UTC)."""

    symbol: str
    timestamp: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    trade_count: int
    vwap: float


class Market:
    """Assets and their prices for one seed; thread-safe (pure functions plus an LRU cache)."""

    def __init__(self, seed: int, calendar: MarketCalendar) -> None:
        self.seed = int(seed)
        self.calendar = calendar
        self._assets = {asset.symbol: asset for asset in UNIVERSE}
        self._by_id = {asset.id: asset for asset in UNIVERSE}
        self._sessions = calendar.sessions_between(calendar.first_day, calendar.last_day)
        self._session_index = {day: i for i, day in enumerate(self._sessions)}
        self._daily = {}  # symbol -> (log opens, log closes) per session, built on first use
        self._session = lru_cache(maxsize=256)(self._build_session)  # ~25 kB per symbol-day
        self.price_factor = lambda symbol, day: 1.0  # raw price scale from corporate actions (splits)
        self.price_paths: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # scripted prices (controls' price_path)

    def forget_sessions(self) -> None:
        """Drop cached sessions: a newly scheduled split changes raw prices from its ex-date on."""
        self._session.cache_clear()

    def set_price_path(self, symbol: str, points) -> None:
        """From the first point's moment on, ``symbol`` closes at the path's price (interpolated
        between points, flat after the last); no points: the model's prices again."""
        if points:
            self.price_paths[symbol] = (np.array([m.timestamp() for m, _ in points]),
                                        np.array([float(p) for _, p in points]))
        else:
            self.price_paths.pop(symbol, None)
        self.forget_sessions()

    # ---- assets -------------------------------------------------------------------------
    def asset(self, symbol_or_id: str) -> Optional[Asset]:
        return self._assets.get(symbol_or_id.upper()) or self._by_id.get(symbol_or_id.lower())

    def assets(self) -> list[Asset]:
        return list(UNIVERSE)

    def tradable_symbols(self) -> list[str]:
        return [a.symbol for a in UNIVERSE if a.active]

    def has_bars(self, symbol: str) -> bool:
        asset = self._assets.get(symbol)
        return bool(asset and asset.active)

    # ---- bars -----------------------------------------------------------------------------
    def bars_between(self, symbol: str, start: datetime, end: datetime) -> list[Bar]:
        """Minute bars of ``symbol`` with start <= timestamp < end, oldest first."""
        if not self.has_bars(symbol) or end <= start:
            return []
        lo, hi = start.timestamp(), end.timestamp()
        bars: list[Bar] = []
        for day in self.calendar.sessions_between(_ny_day(start), _ny_day(end)):
            session = self._session(symbol, day)
            first, last = np.searchsorted(session.starts, [lo, hi], side="left")
            bars.extend(session.bar(symbol, i) for i in range(first, last))
        return bars

    def bar_at(self, symbol: str, minute: datetime) -> Optional[Bar]:
        """The bar starting at ``minute`` (a market minute), or None."""
        found = self.bars_between(symbol, minute, minute + timedelta(minutes=1))
        return found[0] if found else None

    def price_at(self, symbol: str, moment: datetime) -> Decimal:
        """The traded price at ``moment``: inside a minute, between its open and close; outside
        market hours, the last close."""
        minute = moment.replace(second=0, microsecond=0)
        bar = self.bar_at(symbol, minute)
        if bar is None:
            return self.last_close(symbol, moment)
        fraction = (moment - minute).total_seconds() / 60.0
        return Decimal(str(bar.open + (bar.close - bar.open) * fraction)).quantize(CENT)

    def last_close(self, symbol: str, moment: datetime) -> Decimal:
        """Close of the last complete minute at or before ``moment``."""
        asset = self._assets[symbol]
        if not asset.active:
            return Decimal(str(asset.base_price)).quantize(CENT)
        day = self._last_session_started(moment)
        session = self._session(symbol, day)
        complete = int(np.searchsorted(session.starts, moment.timestamp() - 60, side="right"))
        if complete:
            return Decimal(str(session.closes[complete - 1])).quantize(CENT)
        previous = self._sessions[max(self._session_index[day] - 1, 0)]
        return Decimal(str(self._session(symbol, previous).closes[-1])).quantize(CENT)

    def previous_close(self, symbol: str, moment: datetime) -> Decimal:
        """Close of the last session that ended before ``moment``."""
        asset = self._assets[symbol]
        if not asset.active:
            return Decimal(str(asset.base_price)).quantize(CENT)
        day = self._last_session_started(moment)
        _, close = self.calendar.session_bounds(day)
        if close > moment:
            day = self._sessions[max(self._session_index[day] - 1, 0)]
        return Decimal(str(self._session(symbol, day).closes[-1])).quantize(CENT)

    def _last_session_started(self, moment: datetime) -> str:
        day = _ny_day(moment)
        index = int(np.searchsorted(self._sessions, day, side="right")) - 1
        index = min(max(index, 0), len(self._sessions) - 1)
        opening, _ = self.calendar.session_bounds(self._sessions[index])
        if opening > moment and index > 0:
            index -= 1
        return self._sessions[index]

    # ---- the model ------------------------------------------------------------------------
    def _rng(self, symbol: str, *parts: int) -> np.random.Generator:
        return np.random.default_rng([self.seed & 0xFFFFFFFF, zlib.crc32(symbol.encode()), *parts])

    def _daily_path(self, symbol: str) -> tuple[np.ndarray, np.ndarray]:
        if symbol not in self._daily:
            asset = self._assets[symbol]
            rng = self._rng(symbol, 0)
            count = len(self._sessions)
            returns = rng.normal(0.0002, asset.daily_volatility, count)
            log_close = np.cumsum(returns)
            anchor = self._session_index.get(ANCHOR_DAY, 0)
            log_close += np.log(asset.base_price) - log_close[anchor]
            gaps = rng.normal(0.0, asset.daily_volatility / 4, count)
            log_open = np.concatenate(([log_close[0] - returns[0]], log_close[:-1])) + gaps
            self._daily[symbol] = (log_open, log_close)
        return self._daily[symbol]

    def _build_session(self, symbol: str, day: str) -> "SessionBars":
        asset = self._assets[symbol]
        opening, closing = self.calendar.session_bounds(day)
        count = int((closing - opening).total_seconds() // 60)
        log_open, log_close = (path[self._session_index[day]] for path in self._daily_path(symbol))
        rng = self._rng(symbol, int(day.replace("-", "")))
        sigma = asset.daily_volatility / np.sqrt(390) * 1.2
        steps = np.cumsum(rng.normal(0.0, sigma, count))
        share = np.arange(1, count + 1) / count
        log_path = log_open + share * (log_close - log_open) + steps - share * steps[-1]
        closes = np.round(np.exp(log_path), 2)
        opens = np.concatenate(([round(float(np.exp(log_open)), 2)], closes[:-1]))
        wick = np.abs(rng.normal(0.0, sigma / 2, (2, count)))
        highs = np.maximum(np.round(np.maximum(opens, closes) * np.exp(wick[0]), 2), np.maximum(opens, closes))
        lows = np.minimum(np.round(np.minimum(opens, closes) * np.exp(-wick[1]), 2), np.minimum(opens, closes))
        u_shape = 1.0 + 2.0 * ((np.linspace(-1, 1, count)) ** 2)
        volumes = np.maximum(1, (asset.base_volume * u_shape * rng.lognormal(0, 0.4, count)).astype(np.int64))
        trades = np.maximum(1, (volumes / rng.uniform(60, 140, count)).astype(np.int64))
        vwaps = np.clip(np.round((highs + lows + closes) / 3, 4), lows, highs)
        starts = opening.timestamp() + 60.0 * np.arange(count)
        bars = SessionBars(starts, opens, highs, lows, closes, volumes, trades, vwaps).scaled(
            self.price_factor(symbol, day))
        path = self.price_paths.get(symbol)
        return bars.scripted(*path) if path else bars


@dataclass(frozen=True)
class SessionBars:
    """One symbol's minute bars of one session, column-wise (compact enough to cache)."""

    starts: np.ndarray  # bar start, epoch seconds
    opens: np.ndarray
    highs: np.ndarray
    lows: np.ndarray
    closes: np.ndarray
    volumes: np.ndarray
    trades: np.ndarray
    vwaps: np.ndarray

    def scaled(self, factor: float) -> "SessionBars":
        """Prices times ``factor`` (a split's old/new ratio) and volumes divided by it."""
        if factor == 1.0:
            return self
        price = lambda values: np.round(values * factor, 2)
        return SessionBars(self.starts, price(self.opens), price(self.highs), price(self.lows), price(self.closes),
                           np.maximum(1, np.round(self.volumes / factor)).astype(np.int64), self.trades,
                           np.round(self.vwaps * factor, 4))

    def scripted(self, times: np.ndarray, prices: np.ndarray) -> "SessionBars":
        """Bars from ``times[0]`` on follow the path: each closes at the path's price at its start,
        opens at the path's price a minute earlier, with no wick beyond the two."""
        scripted = self.starts >= times[0]
        if not scripted.any():
            return self
        closes, opens = self.closes.copy(), self.opens.copy()
        closes[scripted] = np.round(np.interp(self.starts[scripted], times, prices), 2)
        opens[scripted] = np.round(np.interp(self.starts[scripted] - 60, times, prices), 2)
        highs = np.where(scripted, np.maximum(opens, closes), self.highs)
        lows = np.where(scripted, np.minimum(opens, closes), self.lows)
        vwaps = np.where(scripted, np.round((highs + lows + closes) / 3, 4), self.vwaps)
        return SessionBars(self.starts, opens, highs, lows, closes, self.volumes, self.trades, vwaps)

    def bar(self, symbol: str, i: int) -> Bar:
        return Bar(symbol, datetime.fromtimestamp(self.starts[i], timezone.utc), float(self.opens[i]),
                   float(self.highs[i]), float(self.lows[i]), float(self.closes[i]), int(self.volumes[i]),
                   int(self.trades[i]), float(self.vwaps[i]))


def _ny_day(moment: datetime) -> str:
    return pd.Timestamp(moment).tz_convert("America/New_York").strftime("%Y-%m-%d")
