"""One REST request budget for the whole process, below the broker's per-account limit.

Alpaca allows 200 requests a minute per account, shared by everything that uses the keys (the
API server too). Every REST request of the daemon (orders, look-ups, positions, account,
clock, backfill) first takes a slot here: at most ``per_minute`` in any sliding 60 s. The
broker's ``X-Ratelimit-Remaining``/``-Reset`` headers are followed when present (nothing left:
wait for the reset), and a 429 pauses every caller until the reset (or a growing back-off
without one). The budget never re-sends anything itself: the caller decides, and an order is
only ever sent again after a look-up proved the broker does not hold it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Mapping, Optional

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
DEFAULT_PER_MINUTE = 180


class RequestBudget:
    """A sliding-window limiter that also obeys the broker's rate-limit headers."""

    def __init__(self, per_minute: int = DEFAULT_PER_MINUTE, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        if per_minute < 1:
            raise ValueError("a request budget needs at least one request a minute")
        self.per_minute = per_minute
        self._clock, self._wall, self._sleep = clock, wall, sleep
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._backoff = 1.0
        self._lock = threading.Lock()
        self.requests = 0          # every request that took a slot
        self.refused = 0           # answers 429
        self.waited_seconds = 0.0  # time callers spent waiting for a slot

    def acquire(self) -> None:
        """Block until a request may go out, and count it."""
        while True:
            with self._lock:
                now = self._clock()
                self._prune(now)
                if now < self._paused_until:
                    wait = self._paused_until - now
                elif len(self._sent) >= self.per_minute:
                    wait = self._sent[0] + WINDOW_SECONDS - now
                else:
                    self._sent.append(now)
                    self.requests += 1
                    return
                self.waited_seconds += min(wait, 1.0)
            self._sleep(min(wait, 1.0))

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one answer: a 429, or a broker that says nothing is left, pauses everyone."""
        remaining, reset = _number(headers.get("X-Ratelimit-Remaining")), _number(headers.get("X-Ratelimit-Reset"))
        if status != 429 and (remaining is None or remaining > 0):
            if status < 400:
                self._backoff = 1.0
            return
        with self._lock:
            if status == 429:
                self.refused += 1
            pause = max(reset - self._wall(), 0.0) + 0.5 if reset is not None else self._backoff
            self._backoff = min(self._backoff * 2, 60.0)
            self._paused_until = max(self._paused_until, self._clock() + min(pause, 61.0))
        logger.warning("broker request budget %s: pausing REST requests for %.1fs",
                       "exceeded (429)" if status == 429 else "used up", pause)

    def used_last_minute(self) -> int:
        with self._lock:
            self._prune(self._clock())
            return len(self._sent)

    def _prune(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - WINDOW_SECONDS:
            self._sent.popleft()


def _number(raw: Optional[str]) -> Optional[float]:
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
