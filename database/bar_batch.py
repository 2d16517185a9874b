"""Groups the stream's bars so that one minute of the stream is one stocks.db commit.

Every commit of a WAL database writes the changed pages plus a frame header to the SD card,
so ten tickers' bars stored one by one cost ten page writes a minute where one would do. The
stream hands each bar to ``MinuteBatch.add``; the batch says when its rows are due:

* at once, when every wanted ticker's bar of the batch's minute is in (the usual case: the
  exchange sends a minute's bars together, right after the minute closes);
* when a bar of a newer minute arrives (the previous minute is over, complete or not);
* ``max_wait`` seconds of the trading clock after its first bar, for tickers with no bar that
  minute (IEX sends none for a minute without trades).

An updated bar (a late correction of an earlier minute) rides along with the next minute's
bars instead of costing a commit of its own; it is held at most ``max_hold`` clock seconds.

The waits are measured on the trading clock (``shared.clock``), so an exchange simulating 20
minutes a minute holds a batch 1/20 as long in real time: in real seconds, a thin ticker's
empty minute held the liquid tickers' bars 20 simulated seconds, past the daemon's own wait for
them. The same number of real seconds bounds each wait too, for a clock that stands still (a
simulation at speed 0); at any speed of 1 or more the clock's deadline comes first. Without a
clock, real time is the clock. Pure bookkeeping: the owner writes what ``take`` returns, in one
transaction.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

DEFAULT_MAX_WAIT = 1.0   # clock seconds a minute's batch waits for tickers that sent nothing
DEFAULT_MAX_HOLD = 65.0  # clock seconds a lone correction waits for the next minute's bars


class MinuteBatch:
    """Bars waiting to be written; keyed by (ticker, minute) so a re-sent bar replaces the first."""

    def __init__(self, *, max_wait: float = DEFAULT_MAX_WAIT, max_hold: float = DEFAULT_MAX_HOLD,
                 clock: Any = None, monotonic: Callable[[], float] = time.monotonic):
        self.max_wait = float(max_wait)
        self.max_hold = float(max_hold)
        self._clock = clock                      # the trading clock (peek, rate), or None: real time
        self._monotonic = monotonic
        self._rows: Dict[Tuple[str, str], Mapping[str, Any]] = {}
        self._minute: Optional[str] = None       # the minute of the regular bars held
        self._tickers: set[str] = set()          # tickers with a regular bar of that minute
        self._due_at: Optional[float] = None     # clock seconds (epoch) when the held rows are due
        self._bound_at: Optional[float] = None   # real seconds (monotonic): the same wait, for a frozen clock

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: Mapping[str, Any], wanted: Iterable[str], *, updated: bool = False) -> List[Mapping[str, Any]]:
        """Hold ``row``; returns rows that are due now (a finished earlier minute, or this one)."""
        ready: List[Mapping[str, Any]] = []
        minute, ticker = row["timestamp"], str(row["ticker"]).upper()
        if not updated and self._minute is not None and minute > self._minute:
            ready = self.take()
        self._rows[(ticker, minute)] = row
        if updated:
            self._hold(self.max_hold)
            return ready
        if self._minute is None or minute > self._minute:
            self._minute, self._tickers = minute, set()
            self._hold(self.max_wait)
        if minute == self._minute:
            self._tickers.add(ticker)
            if self._tickers >= {t.upper() for t in wanted}:
                ready.extend(self.take())
        return ready

    def _hold(self, seconds: float) -> None:
        """The held rows are due ``seconds`` from now at the latest (on the clock, and in real time)."""
        now, real = self._clock_seconds(), self._monotonic()
        if now is not None:
            self._due_at = min(self._due_at, now + seconds) if self._due_at is not None else now + seconds
        self._bound_at = min(self._bound_at, real + seconds) if self._bound_at is not None else real + seconds

    def _clock_seconds(self) -> Optional[float]:
        if self._clock is None:
            return self._monotonic()
        try:
            return self._clock.peek().timestamp()
        except Exception:  # the broker's clock never read and unreachable: the real bound decides
            return None

    def seconds_left(self) -> Optional[float]:
        """Real seconds until the held rows are due (0 when overdue), None when nothing is held."""
        if self._bound_at is None:
            return None
        real_left = max(0.0, self._bound_at - self._monotonic())
        now = self._clock_seconds()
        if self._due_at is None or now is None:
            return real_left
        rate = self._clock.rate() if self._clock is not None else 1.0
        clock_left = max(0.0, self._due_at - now)
        return min(real_left, clock_left / rate) if rate > 0 else real_left

    def due(self) -> List[Mapping[str, Any]]:
        """The held rows if their wait is over, else nothing."""
        left = self.seconds_left()
        return self.take() if left is not None and left <= 0 else []

    def take(self) -> List[Mapping[str, Any]]:
        """Every held row, oldest minute first; the batch is empty afterwards."""
        rows = [self._rows[key] for key in sorted(self._rows, key=lambda k: (k[1], k[0]))]
        self._rows.clear()
        self._minute, self._tickers, self._due_at, self._bound_at = None, set(), None, None
        return rows
