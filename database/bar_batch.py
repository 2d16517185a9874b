"""Groups the stream's bars so that one minute of the stream is one stocks.db commit.

Every commit of a WAL database writes the changed pages plus a frame header to the SD card,
so ten tickers' bars stored one by one cost ten page writes a minute where one would do. The
stream hands each bar to ``MinuteBatch.add``; the batch says when its rows are due:

* at once, when every wanted ticker's bar of the batch's minute is in (the usual case: the
  exchange sends a minute's bars together, right after the minute closes);
* when a bar of a newer minute arrives (the previous minute is over, complete or not);
* ``max_wait`` real seconds after its first bar, for tickers with no bar that minute
  (IEX sends none for a minute without trades).

An updated bar (a late correction of an earlier minute) rides along with the next minute's
bars instead of costing a commit of its own; it is held at most ``max_hold`` seconds.
Pure bookkeeping: the owner writes what ``take`` returns, in one transaction.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

DEFAULT_MAX_WAIT = 1.0   # real seconds a minute's batch waits for tickers that sent nothing
DEFAULT_MAX_HOLD = 65.0  # real seconds a lone correction waits for the next minute's bars


class MinuteBatch:
    """Bars waiting to be written; keyed by (ticker, minute) so a re-sent bar replaces the first."""

    def __init__(self, *, max_wait: float = DEFAULT_MAX_WAIT, max_hold: float = DEFAULT_MAX_HOLD,
                 monotonic: Callable[[], float] = time.monotonic):
        self.max_wait = float(max_wait)
        self.max_hold = float(max_hold)
        self._monotonic = monotonic
        self._rows: Dict[Tuple[str, str], Mapping[str, Any]] = {}
        self._minute: Optional[str] = None       # the minute of the regular bars held
        self._tickers: set[str] = set()          # tickers with a regular bar of that minute
        self._due_at: Optional[float] = None

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: Mapping[str, Any], wanted: Iterable[str], *, updated: bool = False) -> List[Mapping[str, Any]]:
        """Hold ``row``; returns rows that are due now (a finished earlier minute, or this one)."""
        ready: List[Mapping[str, Any]] = []
        minute, ticker = row["timestamp"], str(row["ticker"]).upper()
        if not updated and self._minute is not None and minute > self._minute:
            ready = self.take()
        self._rows[(ticker, minute)] = row
        now = self._monotonic()
        if updated:
            self._due_at = min(self._due_at, now + self.max_hold) if self._due_at else now + self.max_hold
            return ready
        if self._minute is None or minute > self._minute:
            self._minute, self._tickers = minute, set()
            self._due_at = min(self._due_at, now + self.max_wait) if self._due_at else now + self.max_wait
        if minute == self._minute:
            self._tickers.add(ticker)
            if self._tickers >= {t.upper() for t in wanted}:
                ready.extend(self.take())
        return ready

    def seconds_left(self) -> Optional[float]:
        """Real seconds until the held rows are due (0 when overdue), None when nothing is held."""
        if self._due_at is None:
            return None
        return max(0.0, self._due_at - self._monotonic())

    def due(self) -> List[Mapping[str, Any]]:
        """The held rows if their wait is over, else nothing."""
        left = self.seconds_left()
        return self.take() if left is not None and left <= 0 else []

    def take(self) -> List[Mapping[str, Any]]:
        """Every held row, oldest minute first; the batch is empty afterwards."""
        rows = [self._rows[key] for key in sorted(self._rows, key=lambda k: (k[1], k[0]))]
        self._rows.clear()
        self._minute, self._tickers, self._due_at = None, set(), None
        return rows
