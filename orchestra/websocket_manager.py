"""Reference-counted market-data subscriptions over the one stream connection.

``active_tickers`` maps each ticker to the number of running cards that need it. A ticker is
subscribed when its first card appears and unsubscribed only when its last card stops. The
streamer (``database.realtime_pull.RealtimeStreamer``) runs in its own thread, reconnects by
itself and writes bars to stocks.db; a stream failure never reaches the trading cycle.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any, Dict, Iterable, List, Mapping, Tuple

logger = logging.getLogger(__name__)


class WebSocketManager:
    """The spec's manager: ``update_subscriptions(running_algorithms)``, ``start_websocket_thread()``."""

    def __init__(self, streamer: Any):
        self.streamer = streamer
        self.active_tickers: Dict[str, int] = {}
        self._lock = threading.Lock()
        self._started = False

    def update_subscriptions(self, running_algorithms: Iterable[Mapping[str, Any]]) -> Tuple[List[str], List[str]]:
        """Sync subscriptions with the running cards; returns (subscribed now, unsubscribed now)."""
        needed = Counter(str(card["ticker"]).upper() for card in running_algorithms)
        with self._lock:
            added = sorted(t for t in needed if t not in self.active_tickers)
            removed = sorted(t for t in self.active_tickers if t not in needed)
            for ticker in added:
                self.streamer.subscribe(ticker)
                logger.info("subscribed %s (%d card(s))", ticker, needed[ticker])
            for ticker in removed:
                self.streamer.unsubscribe(ticker)
                logger.info("unsubscribed %s (no running card needs it)", ticker)
            for ticker in needed:
                if ticker in self.active_tickers and needed[ticker] != self.active_tickers[ticker]:
                    logger.info("%s now needed by %d card(s)", ticker, needed[ticker])
            self.active_tickers = dict(needed)
        return added, removed

    def start_websocket_thread(self) -> None:
        """Start the streamer's own thread (idempotent)."""
        if not self._started:
            self.streamer.start()
            self._started = True
            logger.info("stream thread started")

    def stop(self) -> None:
        if self._started:
            self.streamer.stop()
            self._started = False
            logger.info("stream thread stopped")

    def status(self) -> Dict[str, Any]:
        """Stream state for the heartbeat (never raises: a broken stream must not stop a cycle)."""
        try:
            return {
                "connected": bool(self.streamer.connected),
                "subscriptions": sorted(self.streamer.subscriptions),
                "last_message_at": self.streamer.last_message_at,
                "reconnects": int(self.streamer.reconnects),
                "refused": sorted(getattr(self.streamer, "refused", ())),
                "symbol_limit": getattr(self.streamer, "symbol_limit", None),
            }
        except Exception as exc:  # a streamer attribute failing must not kill the heartbeat
            logger.warning("stream status unavailable: %s", exc)
            return {"connected": False, "subscriptions": sorted(self.active_tickers),
                    "last_message_at": None, "reconnects": 0}
