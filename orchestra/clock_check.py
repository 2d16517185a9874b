"""No trading on a clock nobody can trust: the system clock is compared with the broker's.

A Raspberry Pi has no real-time clock: after a power cut it boots with the time it last saved
until NTP answers. Orders built on a wrong clock (wrong minute, wrong session) must not be sent,
so while the system clock and the broker's ``/v2/clock`` disagree by more than a few seconds the
cycle places no orders; bars, backfills, reconciling and the heartbeat carry on. Trading resumes
by itself once they agree. Used only on the system clock: a daemon following the broker's clock
agrees with it by construction.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional

from shared.clock import stamp

logger = logging.getLogger(__name__)

TOLERANCE_SECONDS = 5.0
RECHECK_SECONDS = 60.0  # real seconds between checks while the clocks agree (every cycle while not)


class ClockCheck:
    """Measures system clock minus broker clock and says whether orders may be sent."""

    def __init__(self, broker_now: Callable[[], datetime], *,
                 system_now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 tolerance: float = TOLERANCE_SECONDS, recheck: float = RECHECK_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._broker_now, self._system_now = broker_now, system_now
        self.tolerance, self._recheck, self._monotonic = tolerance, recheck, monotonic
        self._lock = threading.Lock()
        self._skew: Optional[float] = None
        self._checked_at: Optional[str] = None
        self._next_check = float("-inf")

    def refusal(self) -> Optional[str]:
        """Why no order may be sent now (the clocks disagree), or None."""
        if self._monotonic() >= self._next_check or not self._in_sync():
            self._measure()
        with self._lock:
            if self._skew is None or abs(self._skew) <= self.tolerance:
                return None
            return (f"the system clock is {abs(self._skew):.1f}s {'ahead of' if self._skew > 0 else 'behind'} "
                    f"the broker's (tolerance {self.tolerance:g}s)")

    def _in_sync(self) -> bool:
        with self._lock:
            return self._skew is None or abs(self._skew) <= self.tolerance

    def _measure(self) -> None:
        """One reading; its round trip is split evenly. An unreachable broker keeps the last verdict."""
        before = self._system_now()
        try:
            broker = self._broker_now()
        except Exception as exc:  # broker down: nothing new is known about the clocks
            logger.warning("clock check: broker clock unavailable (%s); keeping the last verdict", exc)
            return
        after = self._system_now()
        middle = before + (after - before) / 2
        skew = (middle - broker.astimezone(timezone.utc)).total_seconds()
        was_in_sync = self._in_sync()
        with self._lock:
            self._skew, self._checked_at = skew, stamp(after)
            self._next_check = self._monotonic() + self._recheck
        now_in_sync = abs(skew) <= self.tolerance
        if was_in_sync and not now_in_sync:
            logger.error("trading refused: the system clock is %+.1fs off the broker's (tolerance %gs); "
                         "bars and data carry on, orders resume when the clocks agree", skew, self.tolerance)
        elif not was_in_sync and now_in_sync:
            logger.info("system clock agrees with the broker's again (%+.1fs): trading resumes", skew)

    def status(self) -> Dict[str, Any]:
        """For the heartbeat (and so the wall): the last measured skew and whether orders go out."""
        with self._lock:
            skew, checked = self._skew, self._checked_at
        return {"in_sync": None if skew is None else abs(skew) <= self.tolerance,
                "skew_seconds": None if skew is None else round(skew, 1),
                "tolerance_seconds": self.tolerance, "checked_at": checked}
