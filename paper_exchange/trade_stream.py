"""Alpaca's trade updates stream (``/stream``): order events pushed to the account's clients.

Wire format as at ``wss://paper-api.alpaca.markets/stream`` (what alpaca-py's ``TradingStream``
speaks): JSON objects in binary frames; ``{"action":"authenticate","data":{"key_id","secret_key"}}``
(or the newer ``{"action":"auth","key","secret"}``) answered by ``{"stream":"authorization",
"data":{"status":"authorized"|"unauthorized","action":"authenticate"}}``; ``{"action":"listen",
"data":{"streams":["trade_updates"]}}`` answered by ``{"stream":"listening","data":{"streams":[...]}}``;
then ``{"stream":"trade_updates","data":{"event", "execution_id", "order", "timestamp",
"position_qty", "price", "qty"}}`` for new, partial_fill, fill, canceled, expired and rejected.

The order book advances lazily, so a publisher compares each order's (status, filled qty) with
what it last announced, every tick, and emits the events in between in order.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .broker import Order, order_json
from .clock import utc_z

if TYPE_CHECKING:
    from .server import Exchange

logger = logging.getLogger(__name__)

PATH = "/stream"
AUTH_TIMEOUT_SECONDS = 10.0
TICK_SECONDS = 0.02
TERMINAL_EVENTS = {"filled": "fill", "canceled": "canceled", "expired": "expired", "rejected": "rejected"}


@dataclass
class Listener:
    connection: ServerConnection
    authorized: bool = False
    streams: set[str] = field(default_factory=set)


class TradeUpdates:
    """The ``/stream`` endpoint of the exchange: its listeners and the publisher of order events."""

    def __init__(self, exchange: "Exchange") -> None:
        self.exchange = exchange
        self.listeners: list[Listener] = []
        self._announced: dict[str, tuple[str, int]] = {}  # order id -> (status, filled qty) last announced
        self._lock = threading.Lock()

    # ---- one connection -----------------------------------------------------------------------
    async def handle(self, connection: ServerConnection) -> None:
        listener = Listener(connection)
        with self._lock:
            self.listeners.append(listener)
        try:
            await self._conversation(listener)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self.listeners.remove(listener)

    async def _conversation(self, listener: Listener) -> None:
        while True:
            timeout = None if listener.authorized else AUTH_TIMEOUT_SECONDS
            try:
                frame = await asyncio.wait_for(listener.connection.recv(), timeout)
            except asyncio.TimeoutError:
                await listener.connection.close()
                return
            try:
                message = json.loads(frame)
            except ValueError:
                message = None
            action = message.get("action") if isinstance(message, dict) else None
            if action in ("authenticate", "auth"):
                if not await self._authenticate(listener, message):
                    await listener.connection.close()
                    return
            elif action == "listen":
                await self._listen(listener, message)
            else:
                await _send(listener, {"stream": "error", "data": {"error_message": "invalid syntax"}})

    async def _authenticate(self, listener: Listener, message: dict) -> bool:
        data = message.get("data") if message["action"] == "authenticate" else message
        data = data if isinstance(data, dict) else {}
        key, secret = data.get("key_id", data.get("key")), data.get("secret_key", data.get("secret"))
        ok = isinstance(key, str) and isinstance(secret, str) and \
            hmac.compare_digest(key.encode(), self.exchange.key.encode()) and \
            hmac.compare_digest(secret.encode(), self.exchange.secret.encode())
        listener.authorized = ok
        await _send(listener, {"stream": "authorization",
                               "data": {"status": "authorized" if ok else "unauthorized", "action": "authenticate"}})
        return ok

    async def _listen(self, listener: Listener, message: dict) -> None:
        if not listener.authorized:
            await _send(listener, {"stream": "authorization",
                                   "data": {"status": "unauthorized", "action": "listen"}})
            return
        data = message.get("data")
        streams = data.get("streams") if isinstance(data, dict) else None
        if not isinstance(streams, list):
            await _send(listener, {"stream": "error", "data": {"error_message": "invalid syntax"}})
            return
        listener.streams = {s for s in streams if s == "trade_updates"}
        await _send(listener, {"stream": "listening", "data": {"streams": sorted(listener.streams)}})

    # ---- publishing ---------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - one bad tick must not stop the stream
                logger.exception("trade updates tick failed")
            await asyncio.sleep(TICK_SECONDS)

    async def tick(self) -> None:
        broker = self.exchange.broker
        with broker.lock:
            broker.settle()
            messages = [m for order in broker.orders.values() for m in self._events(order)]
        if not messages:
            return
        with self._lock:
            audience = [l for l in self.listeners if l.authorized and "trade_updates" in l.streams]
        for listener in audience:
            for message in messages:
                try:
                    await _send(listener, message)
                except ConnectionClosed:
                    break

    def _events(self, order: Order) -> list[dict]:
        """The events of ``order`` since it was last announced (under the broker's lock)."""
        seen_status, seen_filled = self._announced.get(order.id, (None, 0))
        if (seen_status, seen_filled) == (order.status, order.filled_qty):
            return []
        self._announced[order.id] = (order.status, order.filled_qty)
        events = [] if seen_status else [self._message("new", order, order.created_at)]
        if order.filled_qty > seen_filled:
            kind = "fill" if order.status == "filled" else "partial_fill"
            events.append(self._message(kind, order, order.filled_at, order.filled_qty - seen_filled))
        if order.status in TERMINAL_EVENTS and order.status != "filled":
            events.append(self._message(TERMINAL_EVENTS[order.status], order, order.updated_at))
        return events

    def _message(self, event: str, order: Order, moment, qty: Optional[int] = None) -> dict:
        data = {"event": event, "timestamp": utc_z(moment or order.created_at, micros=True), "order": order_json(order)}
        if qty is not None:
            position = self.exchange.broker.positions.get(order.symbol)
            data.update({"execution_id": str(uuid.uuid4()), "price": str(order.filled_avg_price), "qty": str(qty),
                         "position_qty": str(position.qty if position else 0)})
        return {"stream": "trade_updates", "data": data}

    def snapshot(self) -> dict:
        with self._lock:
            return {"connection_count": len(self.listeners),
                    "listening": sum(1 for l in self.listeners if "trade_updates" in l.streams)}


async def _send(listener: Listener, message: dict) -> None:
    """Alpaca's paper trade stream sends JSON in binary frames."""
    await listener.connection.send(json.dumps(message, separators=(",", ":")).encode())
