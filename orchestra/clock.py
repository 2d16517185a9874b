"""The daemon's one notion of "now": the system clock, or the broker's ``/v2/clock``.

``AUTOTRADER_CLOCK=system`` (default, production) reads the machine's UTC time.
``AUTOTRADER_CLOCK=broker`` polls the broker's clock about once a second and extrapolates in
between at the rate it observes, so an exchange running a fast simulated clock drives the whole
loop; nothing else in the daemon changes. Both clocks sleep through ``threading.Event.wait`` so a
stop request ends a sleep at once, and in bounded chunks so clock jumps are noticed.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

from database.market_calendar import to_utc_string
from orchestra.exceptions import OperationalError, TemporaryError

logger = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
JUMP_SECONDS = 300.0  # a broker reading this far from the extrapolation is a jump (a simulation was set)


def floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


stamp = to_utc_string  # ``YYYY-MM-DDTHH:MM:SSZ`` of a tz-aware datetime


class SystemClock:
    """The machine's clock (NTP-synced on the Pi); sleeps re-read it so jumps are noticed."""

    kind = "system"

    def __init__(self, max_chunk: float = 30.0):
        self.max_chunk = max_chunk

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    peek = now

    def sleep_until(self, target: datetime, stop: threading.Event,
                    tick: Optional[Callable[[], None]] = None) -> bool:
        """Sleep until ``target``; False if ``stop`` was set first."""
        while not stop.is_set():
            remaining = (target - self.now()).total_seconds()
            if remaining <= 0:
                return True
            if stop.wait(min(remaining, self.max_chunk)):
                return False
            if tick:
                tick()
        return False


class BrokerClock:
    """The broker's clock, polled about once a second and extrapolated in between.

    The rate (clock seconds per real second) is measured over the readings since the last
    jump, end to end, so request latency averages out. A reading far from the extrapolation
    (the simulation's clock was set) or earlier than the last one starts a new measurement;
    until that one spans half a second, the previous rate is kept and no jump is declared.
    """

    kind = "broker"
    MIN_SPAN = 0.5  # real seconds of readings needed to measure the rate

    def __init__(self, fetch: Callable[[], datetime], *, poll_interval: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self.poll_interval = poll_interval
        self._monotonic = monotonic
        self._samples: deque[tuple[float, datetime]] = deque(maxlen=16)
        self._rate = 1.0
        self._rate_measured = False
        self._unreachable = False
        self._lock = threading.Lock()

    # -- reading

    def poll(self) -> datetime:
        """Ask the broker now; raises TemporaryError when it cannot be reached."""
        try:
            reading = self._fetch()
        except Exception as exc:  # the wrapper's BrokerError or a network error
            raise TemporaryError(f"broker clock unavailable: {exc}") from exc
        if reading.tzinfo is None:
            raise OperationalError("broker clock returned a timestamp without a time zone")
        reading = reading.astimezone(timezone.utc)
        with self._lock:
            self._add_sample(self._monotonic(), reading)
        return reading

    def _add_sample(self, mono: float, reading: datetime) -> None:
        if self._samples:
            last_mono, last_reading = self._samples[-1]
            expected = last_reading + timedelta(seconds=(mono - last_mono) * self._rate)
            off = abs((reading - expected).total_seconds())
            if off > JUMP_SECONDS and (self._rate_measured or reading < last_reading):
                logger.info("broker clock jumped: expected about %s, reads %s", stamp(expected), stamp(reading))
                self._samples.clear()
                self._rate_measured = False
        self._samples.append((mono, reading))
        first_mono, first_reading = self._samples[0]
        span = mono - first_mono
        if span >= self.MIN_SPAN:
            self._rate = max(0.0, (reading - first_reading).total_seconds() / span)
            self._rate_measured = True

    def rate(self) -> float:
        """Measured clock seconds per real second (1.0 until measured)."""
        with self._lock:
            return self._rate

    def now(self) -> datetime:
        with self._lock:
            last = self._samples[-1] if self._samples else None
        if last is None or self._monotonic() - last[0] >= self.poll_interval:
            try:
                return self.poll()
            except TemporaryError:
                if last is None:
                    raise
                logger.warning("broker clock unavailable; extrapolating from the last reading")
        return self.peek()

    def peek(self) -> datetime:
        """The extrapolated time without asking the broker (for other threads; polls only if never read)."""
        with self._lock:
            if self._samples:
                mono, reading = self._samples[-1]
                return reading + timedelta(seconds=(self._monotonic() - mono) * self._rate)
        return self.poll()

    # -- sleeping

    def sleep_until(self, target: datetime, stop: threading.Event,
                    tick: Optional[Callable[[], None]] = None) -> bool:
        """Sleep until the broker's own reading reaches ``target``; False if ``stop`` was set first.

        Extrapolation only sizes the naps; the decision to wake is always a fresh reading.
        """
        while not stop.is_set():
            try:
                reading = self.poll()
            except TemporaryError as exc:
                if not self._unreachable:
                    logger.warning("%s; retrying every %gs", exc, self.poll_interval)
                self._unreachable = True
                reading = None
            else:
                if self._unreachable:
                    logger.info("broker clock reachable again")
                self._unreachable = False
            if reading is not None and reading >= target:
                return True
            rate = self.rate()
            nap = self.poll_interval
            if reading is not None and rate > 0:
                nap = min(nap, max(0.01, (target - reading).total_seconds() / rate))
            if stop.wait(nap):
                return False
            if tick:
                tick()
        return False


def make_clock(kind: str, fetch_broker_time: Optional[Callable[[], datetime]] = None):
    """The clock named by ``AUTOTRADER_CLOCK``; the broker kind needs a way to read the broker."""
    if kind == "system":
        return SystemClock()
    if fetch_broker_time is None:
        raise OperationalError("AUTOTRADER_CLOCK=broker needs a broker connection")
    return BrokerClock(fetch_broker_time)
