"""The one trading clock: what stamps the ledger and decides "now" for the market, in every process.

``AUTOTRADER_CLOCK=system`` (a real broker) reads the computer's UTC time, which the daemon
checks against the broker's ``/v2/clock`` (``orchestra/clock_check.py``).
``AUTOTRADER_CLOCK=broker`` (the embedded simulated exchange, set by ``./scripts/start``) polls
the broker's clock about once a second and extrapolates in between at the rate it observes, so
an exchange running a fast simulated clock drives the whole system, at whatever speed it runs.

Stamped by the trading clock: a card's creation and stop, fills, crosses, the order journal,
decisions, corporate actions, history days, the "today" of market-data pulls. Left on the
computer's clock: liveness (heartbeat age, stale-data alarms, stream silence, log lines, PIN
lock-outs, token lifetimes), measured with ``time.monotonic`` or ``computer_stamp``.

Both clocks sleep through ``threading.Event.wait`` so a stop request ends a sleep at once, and in
bounded chunks so clock jumps are noticed. Standard library only: the daemon, the API, the
market-data pulls and the ledger all import it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

logger = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
JUMP_SECONDS = 300.0  # a broker reading this far from the extrapolation is a jump (a simulation was set)
MAX_RATE = 3600.0  # no simulation runs faster than an hour a second: a faster "rate" spans a jump
LEAP_FACTOR = 100.0  # while a new rate is measured, a reading this many times faster than the last rate is a jump


class ClockError(ValueError):
    """A clock that cannot be built or trusted: a bad ``AUTOTRADER_CLOCK``, a time without a zone."""


class ClockUnavailable(Exception):
    """The broker's clock could not be read (and there is no earlier reading to go on)."""


def floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def stamp(at: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` of a tz-aware datetime (a naive one is refused)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ClockError(f"timestamp {at!r} has no time zone")
    return at.astimezone(timezone.utc).strftime(STAMP_FORMAT)


def computer_now() -> datetime:
    """The computer's clock. For liveness, and the trading clock only under AUTOTRADER_CLOCK=system."""
    return datetime.now(timezone.utc)


def computer_stamp() -> str:
    """The computer's clock as a stamp: heartbeats, and ledger calls made without a stamp (shell, tests)."""
    return stamp(computer_now())


class SystemClock:
    """The machine's clock (NTP-synced on the Pi); sleeps re-read it so jumps are noticed."""

    kind = "system"

    def __init__(self, max_chunk: float = 30.0):
        self.max_chunk = max_chunk

    def now(self) -> datetime:
        return computer_now()

    peek = now

    def rate(self) -> float:
        return 1.0

    def stamp(self) -> str:
        return stamp(self.now())

    def nap(self, target: datetime, reading: Optional[datetime] = None, longest: Optional[float] = None) -> float:
        """Real seconds until ``target`` (at most ``longest``, default ``max_chunk``)."""
        longest = self.max_chunk if longest is None else longest
        return min(longest, max(0.005, (target - (reading or self.now())).total_seconds()))

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
    Thread-safe: the API's request threads share one.
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
        self._rate_known = False  # a rate was measured once: a later jump is judged against it
        self._leapt = False
        self._unreachable = False
        self._lock = threading.Lock()

    # -- reading

    def poll(self) -> datetime:
        """Ask the broker now; raises ClockUnavailable when it cannot be reached."""
        try:
            reading = self._fetch()
        except Exception as exc:  # the wrapper's BrokerError or a network error
            raise ClockUnavailable(f"broker clock unavailable: {exc}") from exc
        return self.observe(reading)

    def observe(self, reading: datetime) -> datetime:
        """Take a reading of the broker's clock made elsewhere just now (e.g. with its market status)."""
        if reading.tzinfo is None:
            raise ClockUnavailable("broker clock returned a timestamp without a time zone")
        reading = reading.astimezone(timezone.utc)
        with self._lock:
            self._add_sample(self._monotonic(), reading)
        return reading

    def _add_sample(self, mono: float, reading: datetime) -> None:
        if self._samples:
            last_mono, last_reading = self._samples[-1]
            expected = last_reading + timedelta(seconds=(mono - last_mono) * self._rate)
            off = abs((reading - expected).total_seconds())
            if off > JUMP_SECONDS and (self._rate_measured or reading < last_reading
                                       or self._leap_forward(mono - last_mono, reading - last_reading)):
                logger.info("broker clock jumped: expected about %s, reads %s", stamp(expected), stamp(reading))
                self._samples.clear()
                self._rate_measured = False
            else:
                self._leapt = False
        self._samples.append((mono, reading))
        first_mono, first_reading = self._samples[0]
        span = mono - first_mono
        if span >= self.MIN_SPAN:
            rate = max(0.0, (reading - first_reading).total_seconds() / span)
            if rate > MAX_RATE:  # a jump inside the window (a fresh process has no rate to judge it by)
                logger.info("broker clock jumped: %s after %s in %.1f real seconds", stamp(reading),
                            stamp(first_reading), span)
                self._samples = deque([(mono, reading)], maxlen=self._samples.maxlen)
                return
            self._rate = rate
            self._rate_measured = self._rate_known = True

    def _leap_forward(self, real: float, moved: timedelta) -> bool:
        """A forward jump while a new rate is still being measured (a second jump within half a
        second: a simulation's night skipped just after a restart): the clock moved far faster than
        any rate it ran at. Without this the new rate was measured across the jump (the soak's
        daemon read 18:18 for 14:28 and backfilled the session's future minutes as empty). Declared
        once in a row, so a real change of speed is measured from the next reading on."""
        if not self._rate_known or self._leapt or real <= 0:
            return False
        self._leapt = moved.total_seconds() / real > LEAP_FACTOR * max(self._rate, 1.0)
        return self._leapt

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
            except ClockUnavailable:
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

    def stamp(self) -> str:
        return stamp(self.now())

    # -- sleeping

    def sleep_until(self, target: datetime, stop: threading.Event,
                    tick: Optional[Callable[[], None]] = None) -> bool:
        """Sleep until the broker's own reading reaches ``target``; False if ``stop`` was set first.

        Extrapolation only sizes the naps; the decision to wake is always a fresh reading.
        """
        while not stop.is_set():
            try:
                reading = self.poll()
            except ClockUnavailable as exc:
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
            if stop.wait(self.nap(target, reading) if reading is not None else self.poll_interval):
                return False
            if tick:
                tick()
        return False

    def nap(self, target: datetime, reading: Optional[datetime] = None, longest: Optional[float] = None) -> float:
        """Real seconds to wait before the clock may reach ``target`` (at most ``longest``, default the
        poll interval): a nap sized in clock time, so a faster clock wakes sooner."""
        longest = self.poll_interval if longest is None else longest
        if reading is None:
            with self._lock:
                if not self._samples:
                    return longest
            reading = self.peek()
        rate = self.rate()
        if rate <= 0:
            return longest
        return min(longest, max(0.005, (target - reading).total_seconds() / rate))


def make_clock(kind: str, fetch_broker_time: Optional[Callable[[], datetime]] = None):
    """The clock named by ``AUTOTRADER_CLOCK``; the broker kind needs a way to read the broker."""
    if kind == "system":
        return SystemClock()
    if kind != "broker":
        raise ClockError(f"AUTOTRADER_CLOCK must be 'system' or 'broker', got {kind!r}")
    if fetch_broker_time is None:
        raise ClockError("AUTOTRADER_CLOCK=broker needs a broker connection")
    return BrokerClock(fetch_broker_time)
