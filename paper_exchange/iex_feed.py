"""What Alpaca's free IEX feed really sends for thin symbols: missing minutes and late corrections.

IEX prints a few percent of US volume, so a minute bar exists only when a trade printed on IEX in
that minute: thin symbols skip many minutes, in the stream and in REST history alike. About 30 s
after a minute closes a late trade can still revise its bar; Alpaca then sends an
``updatedBars`` message (``"T":"u"``, same timestamp, new values) and REST serves the revised bar
from then on.

Both are pure functions of (seed, symbol, minute), so the stream and REST always agree and a run
can be replayed. Each symbol has a profile (share of empty minutes, share of corrected minutes);
symbols without one are sent whole and never corrected, as a liquid symbol looks on IEX.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Iterable, Optional

from .market import Bar

DEFAULT_PROFILES = "KO:0.4:0.1,JPM:0.25:0.1,F:0.1:0.05"  # a few thin symbols; the rest are liquid
CORRECTION_DELAY = timedelta(seconds=30)  # after the minute closes
BAR_LENGTH = timedelta(minutes=1)


@dataclass(frozen=True)
class Profile:
    """How thin a symbol is on IEX: share of minutes with no bar, share of bars corrected later."""

    empty_share: float
    correction_share: float = 0.0


def parse_profiles(text: Optional[str]) -> dict[str, Profile]:
    """``"KO:0.4:0.1,JPM:0.25"`` (symbol:empty share[:correction share]); ``""``/``none``: no thin symbol."""
    if text is None or text.strip().lower() in ("", "none"):
        return {}
    profiles = {}
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) not in (2, 3) or not parts[0].strip():
            raise ValueError(f"thin symbol {item.strip()!r} is not SYMBOL:EMPTY_SHARE[:CORRECTION_SHARE]")
        try:
            shares = [float(p) for p in parts[1:]]
        except ValueError:
            raise ValueError(f"thin symbol {item.strip()!r}: shares must be numbers") from None
        if not all(0.0 <= s < 1.0 for s in shares):
            raise ValueError(f"thin symbol {item.strip()!r}: shares must be at least 0 and below 1")
        profiles[parts[0].strip().upper()] = Profile(*shares)
    return profiles


class IexFeed:
    """Decides which bars the feed publishes and which it corrects; thread-safe (pure)."""

    def __init__(self, seed: int, profiles: dict[str, Profile]) -> None:
        self.seed = int(seed)
        self.profiles = dict(profiles)

    def snapshot(self) -> dict:
        return {s: {"empty_share": p.empty_share, "correction_share": p.correction_share}
                for s, p in sorted(self.profiles.items())}

    def _draw(self, symbol: str, minute: datetime, salt: str) -> float:
        """A uniform number in [0, 1) fixed by (seed, symbol, minute, salt)."""
        key = f"{self.seed}|{symbol}|{int(minute.timestamp())}|{salt}".encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2.0 ** 64

    def is_empty(self, symbol: str, minute: datetime) -> bool:
        """True when no trade printed on IEX in ``minute``: the feed has no bar for it."""
        profile = self.profiles.get(symbol)
        return bool(profile and profile.empty_share and self._draw(symbol, minute, "empty") < profile.empty_share)

    def correction_at(self, symbol: str, minute: datetime) -> Optional[datetime]:
        """When the bar of ``minute`` gets its correction (None: never, or no bar at all)."""
        profile = self.profiles.get(symbol)
        if not profile or not profile.correction_share or self.is_empty(symbol, minute):
            return None
        if self._draw(symbol, minute, "correction") >= profile.correction_share:
            return None
        return minute + BAR_LENGTH + CORRECTION_DELAY

    def corrected(self, bar: Bar) -> Bar:
        """The bar after one late trade a cent away from its close."""
        draw = self._draw(bar.symbol, bar.timestamp, "late-trade")
        price = round(bar.close + (0.01 if draw < 0.5 else -0.01), 2)
        size = 100 * (1 + int(draw * 1000) % 5)
        volume = bar.volume + size
        high, low = max(bar.high, price), min(bar.low, price)
        vwap = min(max(round((bar.vwap * bar.volume + price * size) / volume, 4), low), high)
        return replace(bar, high=high, low=low, close=price, volume=volume, trade_count=bar.trade_count + 1, vwap=vwap)

    def as_of(self, bar: Bar, now: datetime) -> Optional[Bar]:
        """The bar as the feed shows it at ``now``: None for an empty minute, corrected once due."""
        if self.is_empty(bar.symbol, bar.timestamp):
            return None
        due = self.correction_at(bar.symbol, bar.timestamp)
        return self.corrected(bar) if due is not None and due <= now else bar

    def visible(self, bars: Iterable[Bar], now: datetime) -> list[Bar]:
        """``bars`` as REST serves them at ``now``: empty minutes left out, due corrections applied."""
        if not self.profiles:
            return list(bars)
        shown = (self.as_of(bar, now) for bar in bars)
        return [bar for bar in shown if bar is not None]
