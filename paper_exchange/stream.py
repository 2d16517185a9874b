"""Alpaca's market-data WebSocket (``/v2/iex``, ``/v2/sip``): handshake, auth, subscriptions and
minute bars, in msgpack for clients that ask for it (``Content-Type: application/msgpack``, as
alpaca-py does) and JSON text frames otherwise.

Each minute's bars go out as soon as that simulated minute has closed, only to connections
subscribed to the symbol. Test controls can drop every connection or mute the open ones.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

import msgpack
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from .clock import utc_z
from .iex_feed import BAR_LENGTH, CORRECTION_DELAY
from .trade_stream import PATH as TRADE_UPDATES_PATH, TradeUpdates

if TYPE_CHECKING:
    from .server import Exchange

logger = logging.getLogger(__name__)

FEED_PATHS = {"/v2/iex": "iex", "/v2/sip": "sip"}
CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
MIRRORED = {"corrections": "trades", "cancelErrors": "trades"}  # Alpaca mirrors these on trades
AUTH_TIMEOUT_SECONDS = 10.0
TICK_SECONDS = 0.05
MAX_MINUTES_PER_TICK = 120
HISTORY_LIMIT = 10_000  # subscribe/unsubscribe entries kept for /_sim/state


@dataclass
class StreamClient:
    id: int
    feed: str
    codec: str  # "msgpack" or "json"
    connection: ServerConnection
    connected_at: str
    authenticated: bool = False
    subscriptions: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CHANNELS})
    muted_until: float = 0.0

    def subscription_message(self) -> dict:
        message = {"T": "subscription"}
        message.update({c: sorted(self.subscriptions[c]) for c in CHANNELS})
        message.update({m: sorted(self.subscriptions[src]) for m, src in MIRRORED.items()})
        return message


class StreamServer:
    """Owns the stream's connections; runs in its own thread with its own event loop."""

    def __init__(self, exchange: "Exchange") -> None:
        self.exchange = exchange
        self.clients: dict[int, StreamClient] = {}
        self.history: list[dict] = []
        self.lingering: list[float] = []  # monotonic deadlines of connections that dropped uncleanly
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # guards clients/history for readers in other threads
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server = None
        self._stopped: Optional[asyncio.Event] = None
        self.port: Optional[int] = None
        self.trade_updates = TradeUpdates(exchange)

    # ---- life cycle (called from the main thread) ------------------------------------------
    def start(self, host: str, port: int) -> int:
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(target=self._run, args=(host, port, ready, failure), name="stream", daemon=True)
        thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        if self.port is None:
            raise RuntimeError("stream server did not start")
        self._thread = thread
        return self.port

    def stop(self) -> None:
        if self._loop and self._stopped:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)

    def _run(self, host: str, port: int, ready: threading.Event, failure: list) -> None:
        try:
            asyncio.run(self._main(host, port, ready))
        except BaseException as error:  # noqa: BLE001 - reported to the starting thread
            failure.append(error)
            ready.set()

    async def _main(self, host: str, port: int, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        async with serve(self._handle, host, port, process_request=self._check_path,
                         ping_interval=20, ping_timeout=60) as server:
            self.port = server.sockets[0].getsockname()[1]
            publisher = asyncio.create_task(BarPublisher(self).run())
            trade_publisher = asyncio.create_task(self.trade_updates.run())
            ready.set()
            await self._stopped.wait()
            publisher.cancel()
            trade_publisher.cancel()

    # ---- control actions (any thread) ---------------------------------------------------------
    def drop_all(self) -> int:
        """Cut every connection without a close handshake, like a network failure."""
        with self._lock:
            victims = list(self.clients.values())
        for client in victims:
            self._loop.call_soon_threadsafe(_abort, client.connection)
        return len(victims)

    def silence(self, seconds: float) -> int:
        """Keep the open connections open but hung for ``seconds``: nothing is sent and nothing read,
        so not even a ping is answered (new connections are fine)."""
        until = time.monotonic() + seconds
        with self._lock:
            for client in self.clients.values():
                client.muted_until = until
                self._loop.call_soon_threadsafe(_hang, client.connection, seconds)
            return len(self.clients)

    def snapshot(self) -> dict:
        with self._lock:
            connections = [{
                "id": c.id, "feed": c.feed, "codec": c.codec, "authenticated": c.authenticated,
                "connected_at": c.connected_at, "muted": c.muted_until > time.monotonic(),
                "subscriptions": {ch: sorted(c.subscriptions[ch]) for ch in CHANNELS},
            } for c in self.clients.values()]
            return {"connection_count": len(connections), "connections": connections,
                    "history": list(self.history), "trade_updates": self.trade_updates.snapshot()}

    # ---- one connection ----------------------------------------------------------------------
    def _check_path(self, connection: ServerConnection, request: Request):
        if request.path not in FEED_PATHS and request.path != TRADE_UPDATES_PATH:
            return connection.respond(404, "Not Found\n")
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        if connection.request.path == TRADE_UPDATES_PATH:
            await self.trade_updates.handle(connection)
            return
        codec = "msgpack" if "msgpack" in connection.request.headers.get("Content-Type", "") else "json"
        client = StreamClient(next(self._ids), FEED_PATHS[connection.request.path], codec, connection,
                              utc_z(datetime.now(timezone.utc)))
        with self._lock:
            self.clients[client.id] = client
        logger.info("stream connection %d opened (%s, %s)", client.id, client.feed, codec)
        try:
            await self.send(client, [{"T": "success", "msg": "connected"}])
            headers = connection.request.headers
            if "APCA-API-KEY-ID" in headers:  # Alpaca also takes the REST headers at the handshake
                credentials = {"key": headers.get("APCA-API-KEY-ID"), "secret": headers.get("APCA-API-SECRET-KEY")}
                if not await self._authenticate(client, credentials):
                    await connection.close()
                    return
            await self._conversation(client)
        except ConnectionClosed:
            pass
        finally:
            linger = self.exchange.controls.stream_linger_seconds
            with self._lock:
                self.clients.pop(client.id, None)
                if client.authenticated and connection.protocol.close_rcvd is None and linger > 0:
                    self.lingering.append(time.monotonic() + linger)  # Alpaca still counts it for a while
            logger.info("stream connection %d closed", client.id)

    async def _conversation(self, client: StreamClient) -> None:
        while True:
            timeout = None if client.authenticated else AUTH_TIMEOUT_SECONDS
            try:
                frame = await asyncio.wait_for(client.connection.recv(), timeout)
            except asyncio.TimeoutError:
                await self.send(client, [{"T": "error", "code": 404, "msg": "auth timeout"}])
                await client.connection.close()
                return
            message = _decode(frame)
            if not isinstance(message, dict) or not isinstance(message.get("action"), str):
                await self.send(client, [{"T": "error", "code": 400, "msg": "invalid syntax"}])
                continue
            if not await self._act(client, message):
                await client.connection.close()
                return

    async def _act(self, client: StreamClient, message: dict) -> bool:
        """Answer one client message; False means close the connection."""
        action = message["action"]
        if action == "auth":
            return await self._authenticate(client, message)
        if action not in ("subscribe", "unsubscribe"):
            await self.send(client, [{"T": "error", "code": 400, "msg": "invalid syntax"}])
            return True
        if not client.authenticated:
            await self.send(client, [{"T": "error", "code": 401, "msg": "not authenticated"}])
            return True
        changes = {ch: message[ch] for ch in CHANNELS if ch in message}
        if any(not isinstance(v, list) or not all(isinstance(s, str) and s for s in v) for v in changes.values()):
            await self.send(client, [{"T": "error", "code": 400, "msg": "invalid syntax"}])
            return True
        delay = self.exchange.controls.stream_subscribe_delay_seconds
        if action == "subscribe" and delay:  # a busy feed: the subscription takes effect this much later
            await asyncio.sleep(delay)
        if action == "subscribe" and _symbol_count(client, changes) > self.exchange.controls.stream_symbol_limit:
            await self.send(client, [{"T": "error", "code": 405, "msg": "symbol limit exceeded"}])
            return True
        with self._lock:
            for channel, symbols in changes.items():
                target = client.subscriptions[channel]
                for symbol in symbols:
                    (target.add if action == "subscribe" else target.discard)(symbol.upper())
            self.history.append({"connection": client.id, "action": action, "at": utc_z(self.exchange.clock.now()),
                                 **{ch: [s.upper() for s in v] for ch, v in changes.items()}})
            del self.history[:-HISTORY_LIMIT]
        await self.send(client, [client.subscription_message()])
        return True

    async def _authenticate(self, client: StreamClient, message: dict) -> bool:
        if client.authenticated:
            await self.send(client, [{"T": "error", "code": 403, "msg": "already authenticated"}])
            return True
        if message.get("key") != self.exchange.key or message.get("secret") != self.exchange.secret:
            await self.send(client, [{"T": "error", "code": 402, "msg": "auth failed"}])
            return False
        with self._lock:
            now = time.monotonic()
            self.lingering = [until for until in self.lingering if until > now]
            active = sum(1 for c in self.clients.values() if c.authenticated) + len(self.lingering)
            allowed = active < self.exchange.controls.stream_connection_limit
            client.authenticated = allowed
        if not allowed:
            await self.send(client, [{"T": "error", "code": 406, "msg": "connection limit exceeded"}])
            return False
        await self.send(client, [{"T": "success", "msg": "authenticated"}])
        return True

    async def send(self, client: StreamClient, messages: list[dict]) -> None:
        """Send one frame of messages in the client's codec, unless the client is muted."""
        if client.muted_until > time.monotonic():
            return
        if client.codec == "msgpack":
            await client.connection.send(msgpack.packb(messages))
        else:
            await client.connection.send(json.dumps(messages, separators=(",", ":")))


class BarPublisher:
    """Sends each closed market minute's bars to the connections subscribed to them."""

    def __init__(self, stream: StreamServer) -> None:
        self.stream = stream
        self.exchange = stream.exchange
        self._generation = -1
        self._next_minute: Optional[datetime] = None
        self._next_correction: Optional[datetime] = None

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - one bad tick must not stop the stream
                logger.exception("bar publisher tick failed")
            await asyncio.sleep(self.nap())

    def nap(self) -> float:
        """Real seconds until the next minute closes (or its corrections fall due), at most a tick:
        a minute's bars go out a few milliseconds of real time after its close at any speed, not up
        to a tick late (50 ms is 10 simulated seconds at 200x)."""
        clock = self.exchange.clock
        if clock.speed <= 0:
            return TICK_SECONDS
        now = clock.now()
        boundary = now.replace(second=0, microsecond=0) + BAR_LENGTH
        correction = (now - CORRECTION_DELAY).replace(second=0, microsecond=0) + BAR_LENGTH + CORRECTION_DELAY
        seconds = (min(boundary, correction) - now).total_seconds() / clock.speed
        return min(TICK_SECONDS, max(0.001, seconds + 0.0005))

    async def tick(self) -> None:
        clock = self.exchange.clock
        now = clock.now()
        current = now.replace(second=0, microsecond=0)  # minutes before this one are complete
        corrections = (now - CORRECTION_DELAY).replace(second=0, microsecond=0)  # bars before it are due
        if clock.generation != self._generation:  # started, or the clock was set: only what closes from now on
            self._generation, self._next_minute, self._next_correction = clock.generation, current, corrections
            return
        if current > self._next_minute:
            minutes = self.exchange.calendar.minutes_between(self._next_minute, current)
            self._next_minute = current
            for minute in list(minutes)[-MAX_MINUTES_PER_TICK:]:
                await self.publish(minute.to_pydatetime())
        if corrections > self._next_correction:
            minutes = self.exchange.calendar.minutes_between(self._next_correction, corrections)
            self._next_correction = corrections
            for minute in list(minutes)[-MAX_MINUTES_PER_TICK:]:
                await self.publish(minute.to_pydatetime(), updated=True)

    async def publish(self, minute: datetime, *, updated: bool = False) -> None:
        """The minute's bars as the feed has them (``bars``), or their late corrections (``updatedBars``)."""
        channel = "updatedBars" if updated else "bars"
        with self.stream._lock:
            audience = [(c, set(c.subscriptions[channel])) for c in self.stream.clients.values() if c.authenticated]
        if not any(symbols for _, symbols in audience):
            return
        market, feed = self.exchange.market, self.exchange.feed
        everything = set(market.tradable_symbols())
        sends = []
        for client, symbols in audience:
            wanted = everything if "*" in symbols else symbols & everything
            iex = client.feed == "iex"  # SIP sees every trade: whole minutes, no late corrections
            if updated:
                wanted = {s for s in wanted if iex and feed.correction_at(s, minute) is not None}
            bars = [market.bar_at(symbol, minute) for symbol in sorted(wanted)]
            bars = [feed.corrected(bar) if updated else feed.as_of(bar, minute + BAR_LENGTH) if iex else bar
                    for bar in bars if bar is not None]
            messages = [_bar_message(bar, client.codec, "u" if updated else "b") for bar in bars if bar is not None]
            if messages:
                sends.append(self.stream.send(client, messages))
        results = await asyncio.gather(*sends, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, ConnectionClosed):
                logger.warning("sending bars failed: %s", result)


def _symbol_count(client: StreamClient, changes: dict) -> int:
    """Distinct symbols the connection would hold, over every channel, after subscribing ``changes``."""
    symbols = set().union(*client.subscriptions.values())
    for requested in changes.values():
        symbols.update(s.upper() for s in requested)
    return len(symbols)


def _bar_message(bar, codec: str, kind: str = "b") -> dict[str, Any]:
    stamp = bar.timestamp.timestamp()
    when = msgpack.Timestamp(int(stamp), 0) if codec == "msgpack" else bar.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"T": kind, "S": bar.symbol, "o": bar.open, "h": bar.high, "l": bar.low, "c": bar.close,
            "v": bar.volume, "t": when, "n": bar.trade_count, "vw": bar.vwap}


def _decode(frame) -> Any:
    try:
        if isinstance(frame, bytes):
            return msgpack.unpackb(frame)
        return json.loads(frame)
    except Exception:  # noqa: BLE001 - any undecodable frame is "invalid syntax"
        return None


def _hang(connection: ServerConnection, seconds: float) -> None:
    transport = getattr(connection, "transport", None)
    if transport is None or transport.is_closing():
        return
    transport.pause_reading()
    asyncio.get_running_loop().call_later(seconds, _resume, transport)


def _resume(transport) -> None:
    if not transport.is_closing():
        transport.resume_reading()


def _abort(connection: ServerConnection) -> None:
    transport = getattr(connection, "transport", None)
    if transport is not None:
        transport.abort()
