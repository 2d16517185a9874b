"""Order states from the broker's trade updates stream, so a fill costs no REST request.

One connection (``<trading stream>/stream``, Alpaca's wire format: authenticate, listen to
``trade_updates``, JSON messages) runs in its own thread and keeps the newest state of every
order it hears about. ``wait`` blocks until an order is final. REST is used only for what the
stream cannot confirm: while it is down (polled slowly), once after it (re)connects (a fill may
have happened unseen), and by the caller after the fill timeout.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable, Dict, Optional

from alpaca.common.enums import BaseURL
from alpaca.trading.models import TradeUpdate
from pydantic import ValidationError
from websockets.sync.client import connect

from orchestra.alpaca_wrapper import BrokerError, OrderResult, order_result
from shared.config import AlpacaSettings

logger = logging.getLogger(__name__)

Lookup = Callable[[], Optional[OrderResult]]


def stream_url(settings: AlpacaSettings) -> str:
    """``ALPACA_TRADE_STREAM_URL`` + ``/stream``, else Alpaca's own paper or live endpoint."""
    if settings.trade_stream_url:
        return f"{settings.trade_stream_url}/stream"
    return (BaseURL.TRADING_STREAM_PAPER if settings.paper else BaseURL.TRADING_STREAM_LIVE).value


class TradeUpdates:
    """The trade updates connection and the newest order states it has reported."""

    def __init__(self, url: str, key: str, secret: str, *, poll_seconds: float = 2.0, backoff_max: float = 30.0):
        self.url = url
        self._key, self._secret = key, secret
        self.poll_seconds = poll_seconds
        self.backoff_max = backoff_max
        self.connected = False
        self.generation = 0  # +1 on every (re)connection: what happened before may have been missed
        self.reconnects = 0
        self._orders: Dict[str, OrderResult] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- life cycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="trade-updates", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)

    def wait_connected(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.connected, timeout)

    # -- order states

    def record(self, result: OrderResult) -> None:
        """Keep the newest state of an order (a final state is never replaced by an older open one)."""
        with self._cond:
            known = self._orders.get(result.client_order_id)
            if known is None or not known.is_terminal or result.is_terminal:
                self._orders[result.client_order_id] = result
            self._cond.notify_all()

    def latest(self, client_order_id: str) -> Optional[OrderResult]:
        with self._cond:
            return self._orders.get(client_order_id)

    def forget(self, client_order_id: str) -> None:
        with self._cond:
            self._orders.pop(client_order_id, None)

    def wait(self, client_order_id: str, timeout: float, lookup: Lookup) -> Optional[OrderResult]:
        """The order's final state, or its last known state when ``timeout`` passes first.

        ``lookup`` (a REST read) is called only when the stream cannot vouch for the order: it is
        down (every ``poll_seconds``), or it reconnected since the last look.
        """
        deadline = time.monotonic() + timeout
        checked_generation, next_poll = self.generation, 0.0
        while True:
            with self._cond:
                known = self._orders.get(client_order_id)
                if known is not None and known.is_terminal:
                    return known
                down, moved = not self.connected, self.generation != checked_generation
            now = time.monotonic()
            if (down and now >= next_poll) or moved:
                checked_generation, next_poll = self.generation, now + self.poll_seconds
                try:
                    found = lookup()
                except BrokerError as exc:
                    logger.warning("order %s: look-up while the trade stream is unsure failed: %s", client_order_id, exc)
                    found = None
                if found is not None:
                    self.record(found)
                    if found.is_terminal:
                        return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.latest(client_order_id)
            with self._cond:
                self._cond.wait(min(remaining, self.poll_seconds))

    # -- the connection

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self._session()
                failures = 0
            except Exception as exc:  # whatever ends a session, the fills must keep coming: reconnect
                failures += 1
                logger.warning("trade updates stream: %s: %s; reconnecting", type(exc).__name__, exc)
            finally:
                with self._cond:
                    self.connected = False
                    self._cond.notify_all()
            self._stopping.wait(min(self.backoff_max, 0.5 * 2 ** min(failures, 6)))

    def _session(self) -> None:
        with connect(self.url, open_timeout=10, close_timeout=2) as ws:
            ws.send(json.dumps({"action": "authenticate", "data": {"key_id": self._key, "secret_key": self._secret}}))
            answer = json.loads(ws.recv(timeout=10))
            if answer.get("data", {}).get("status") != "authorized":
                raise ValueError("the broker refused the trade stream credentials")
            ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
            with self._cond:
                self.reconnects += 1 if self.generation else 0
                self.generation += 1
                self.connected = True
                self._cond.notify_all()
            logger.info("trade updates stream connected (%s)", self.url)
            while not self._stopping.is_set():
                try:
                    frame = ws.recv(timeout=1)
                except TimeoutError:
                    continue
                self._handle(frame)

    def _handle(self, frame) -> None:
        try:
            message = json.loads(frame)
        except ValueError:
            logger.warning("trade updates stream sent something that is not JSON; ignored")
            return
        if not isinstance(message, dict) or message.get("stream") != "trade_updates":
            return
        try:
            update = TradeUpdate(**message.get("data", {}))
            self.record(order_result(update.order))
        except (ValidationError, TypeError, BrokerError) as exc:
            logger.warning("trade update not understood: %s", exc)
