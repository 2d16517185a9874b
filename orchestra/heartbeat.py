"""The daemon's liveness report (system.db ``heartbeat`` row 'orchestrator'), read by ``/api/health``.

Payload::

    {"last_cycle_at", "clock", "market_open",
     "stream": {"connected", "subscriptions", "last_message_at", "reconnects"},
     "last_bar": {ticker: timestamp}, "position_mismatches": [...], "errors_last_hour": n, "pid"}

Written after every cycle; off hours only when something changed or every few minutes, so an
SD card is not written every second while nothing happens.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import deque
from typing import Any, Callable, Dict, Optional

from system_databse import system_db_manager as ledger

logger = logging.getLogger(__name__)

COMPONENT = "orchestrator"
HOUR = 3600.0


class ErrorLog:
    """Counts errors of the last hour (real time) for the heartbeat; thread-safe."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic):
        self._monotonic = monotonic
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def record(self, message: str = "") -> None:
        with self._lock:
            self._times.append(self._monotonic())

    def last_hour(self) -> int:
        cutoff = self._monotonic() - HOUR
        with self._lock:
            while self._times and self._times[0] < cutoff:
                self._times.popleft()
            return len(self._times)


class HeartbeatWriter:
    """Writes the payload when asked to (each cycle) or when it changed / aged (off hours)."""

    def __init__(self, conn: sqlite3.Connection, *, refresh_seconds: float = 300.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self.conn = conn
        self.refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._last_payload: Optional[Dict[str, Any]] = None
        self._last_written = float("-inf")

    def write(self, payload: Dict[str, Any], *, force: bool = False) -> bool:
        """Store ``payload``; unless ``force``, skip it when unchanged and recently written."""
        payload = {**payload, "pid": os.getpid()}
        fresh = self._monotonic() - self._last_written < self.refresh_seconds
        if not force and fresh and _significant(payload) == _significant(self._last_payload):
            return False
        try:
            ledger.write_heartbeat(COMPONENT, payload, conn=self.conn)
        except sqlite3.Error as exc:  # a locked database must not stop trading
            logger.warning("heartbeat not written: %s", exc)
            return False
        self._last_payload = payload
        self._last_written = self._monotonic()
        return True


def _significant(payload: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The payload without fields that tick by themselves (a stream message time)."""
    if payload is None:
        return None
    stream = {k: v for k, v in (payload.get("stream") or {}).items() if k != "last_message_at"}
    return {**payload, "stream": stream}
