"""The one market-data stream: minute bars of the subscribed tickers into stocks.db as they arrive.

``RealtimeStreamer`` runs its own thread and asyncio loop. Other threads call ``subscribe`` and
``unsubscribe`` at any time; the wanted set is remembered and (re)applied on every connection.
Each bar, and each "updated bar" correcting it, is upserted through ``db_manager`` on the
thread's own connection, one transaction per minute of the stream (``bar_batch.MinuteBatch``).
A dropped connection, or one that stays silent longer than ``silence_timeout`` while the market
is open and then does not answer a ping (a known failure of Alpaca's stream), is replaced after a
backoff with jitter; ``on_reconnect`` then lets the owner backfill what was missed, once the feed
has answered the new connection's subscription (a minute that closes before the feed holds it
reaches neither the stream nor a backfill asked earlier). Silence is the connection's, not a
ticker's: any frame counts, and a stream of thin tickers that trade every few minutes stays
connected as long as it answers pings.
A subscription the feed refuses for its symbol limit (405) is remembered in ``refused``.

Alpaca allows one stream connection per account: nothing else in the project opens one.

alpaca-py's own ``run()`` loop busy-waits until the first subscription, offers no reconnect hook
and treats any quiet period as stale, so this module drives the connection itself and uses
``StockDataStream`` for the protocol: handshake and auth (``_start_ws``), subscription frames
(``_send_subscribe_msg`` / ``_send_unsubscribe_msg``) and decoding (``_dispatch``). Those are
private to alpaca-py 0.44.0 (pinned); the streamer tests exercise each of them.
"""
from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Optional

import msgpack
from alpaca.data.enums import DataFeed
from alpaca.data.live.stock import StockDataStream

from database import db_manager, market_calendar
from database.bar_batch import MinuteBatch
from shared.clock import SystemClock, computer_stamp
from shared.config import AlpacaSettings

logger = logging.getLogger(__name__)

# websockets logs every frame at DEBUG, the auth frame (key and secret) included: keep its
# logger for our connections at INFO whatever the process's log level is.
_WS_LOGGER = logging.getLogger(__name__ + ".websocket")
_WS_LOGGER.setLevel(logging.INFO)

_IDLE_SECONDS = 15.0  # the longest the stream thread sleeps between frames (it wakes at once on a frame)


class RealtimeStreamer:
    """Keeps one stream connection alive for the wanted tickers and stores their bars."""

    def __init__(self, settings: AlpacaSettings, stocks_db_path: str | Path | None, *,
                 silence_timeout: float = 120.0, on_reconnect: Optional[Callable[[], None]] = None,
                 is_market_open: Optional[Callable[[], bool]] = None, backoff_base: float = 1.0,
                 backoff_max: float = 60.0, connect_timeout: float = 10.0, clock: Any = None) -> None:
        """``clock``: the trading clock (``shared.clock``; the computer's when None). It times the
        wait of a minute's batch for tickers without a bar and, unless ``is_market_open`` is given,
        says whether the market is open; the connection's silence is measured in real time."""
        self._settings = settings
        self._db_path = stocks_db_path
        self._silence_timeout = float(silence_timeout)
        self._on_reconnect = on_reconnect
        self._clock = clock if clock is not None else SystemClock()
        self._is_market_open = is_market_open or (lambda: market_calendar.is_open(self._clock.peek()))
        self._backoff_base, self._backoff_max = float(backoff_base), float(backoff_max)
        self._connect_timeout = float(connect_timeout)
        self._random = random.Random()
        self._lock = threading.Lock()
        self._wanted: set[str] = set()
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._wake: Optional[asyncio.Event] = None
        self._stop: Optional[asyncio.Event] = None
        self._stopping = threading.Event()
        self._callback_thread: Optional[threading.Thread] = None
        self._reconnect_pending = False
        self._backfill_owed = False  # reconnected: on_reconnect is due once the feed answers the subscription
        self._db: Optional[sqlite3.Connection] = None
        self._session_got_data = False
        self._ever_connected = False
        self.connected = False
        self.reconnects = 0
        self.last_message_at: Optional[str] = None
        self.bars_written = 0
        self._batch = MinuteBatch(clock=self._clock)
        self.refused: frozenset[str] = frozenset()  # tickers the feed refused (405 symbol limit exceeded)
        self.symbol_limit: Optional[int] = None  # symbols the feed held when it refused more
        self._confirmed: set[str] = set()  # bar symbols of the feed's last subscription answer
        self._trial: list[str] = []  # after a refused batch: tickers to offer the feed one at a time
        self._awaiting: Optional[str] = None  # the one ticker offered, until the feed answers

    # ------------------------------------------------------ other threads
    @property
    def subscriptions(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._wanted)

    def subscribe(self, ticker: str) -> None:
        """Want ``ticker``'s bars; applied now if connected, else on connect. Never blocks."""
        with self._lock:
            self._wanted.add(ticker.strip().upper())
        self._poke()

    def unsubscribe(self, ticker: str) -> None:
        with self._lock:
            self._wanted.discard(ticker.strip().upper())
        self._poke()

    def start(self) -> None:
        """Start the stream thread (no-op when it is already running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="realtime-stream", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Close the connection and end the thread."""
        self._stopping.set()
        self._call_in_loop(lambda: self._stop.set())
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("stream thread did not stop within %.0fs", timeout)

    def _poke(self) -> None:
        self._call_in_loop(lambda: self._wake.set())

    def _call_in_loop(self, action: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(action)
        except RuntimeError:  # the loop has just closed: nothing left to wake
            pass

    # ---------------------------------------------------- the stream thread
    def _run(self) -> None:
        try:
            self._db = db_manager.get_connection(self._db_path)
        except (OSError, sqlite3.Error) as exc:
            logger.error("stream not started: cannot open stocks.db: %s", exc)
            return
        try:
            asyncio.run(self._main())
        except Exception:  # the thread must end with a log line, never silently
            logger.exception("stream thread crashed")
        finally:
            self.connected = False
            self._loop = None
            self._db.close()

    def _should_stop(self) -> bool:
        return self._stopping.is_set() or self._stop.is_set()

    async def _main(self) -> None:
        self._wake, self._stop = asyncio.Event(), asyncio.Event()
        self._loop = asyncio.get_running_loop()
        failures = 0
        while not self._should_stop():
            if not self.subscriptions:
                await self._wait(None)  # no connection is opened until something is wanted
                continue
            self._session_got_data = False
            await self._session()
            failures = 1 if self._session_got_data else failures + 1
            if not self._should_stop():
                delay = self._backoff(failures)
                logger.info("stream reconnecting in %.1fs", delay)
                await self._wait(delay, wake_on_subscribe=False)
        logger.info("stream stopped")

    def _backoff(self, failures: int) -> float:
        """Exponential backoff with equal jitter: a random delay in [cap/2, cap]."""
        cap = min(self._backoff_max, self._backoff_base * 2 ** max(0, failures - 1))
        return self._random.uniform(cap / 2, cap)

    async def _wait(self, seconds: Optional[float], *, wake_on_subscribe: bool = True) -> None:
        """Sleep until ``seconds`` pass, stop is asked, or (optionally) subscriptions change."""
        waiters = [asyncio.ensure_future(self._stop.wait())]
        if wake_on_subscribe:
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if wake_on_subscribe:
            self._wake.clear()

    def _new_stream(self) -> StockDataStream:
        return StockDataStream(
            self._settings.api_key, self._settings.secret, feed=DataFeed(self._settings.feed),
            url_override=self._settings.stream_endpoint,
            websocket_params={"ping_interval": 10, "ping_timeout": 20, "close_timeout": 2,
                              "open_timeout": self._connect_timeout, "max_queue": 1024, "logger": _WS_LOGGER},
        )

    async def _session(self) -> None:
        """One connection: connect, authenticate, subscribe, then consume until it ends."""
        stream = self._new_stream()
        sent: set[str] = set()
        try:
            await asyncio.wait_for(stream._start_ws(), self._connect_timeout)
            self._wake.clear()
            await self._sync_subscriptions(stream, sent)
            self.connected = True
            logger.info("stream connected to %s (%s feed), subscribed to %s",
                        self._settings.stream_endpoint or "Alpaca", self._settings.feed, sorted(sent) or "nothing")
            if self._ever_connected:
                self.reconnects += 1
                self._backfill_owed = True
                if not sent:  # nothing subscribed, no answer to wait for
                    self._settle_backfill()
            self._ever_connected = True
            await self._consume(stream, sent)
        except Exception as exc:  # refused, dropped, timed out, garbled: log, back off, reconnect
            logger.warning("stream connection failed or dropped: %s: %s", type(exc).__name__, exc)
        finally:
            self.connected = False
            self._store(self._batch.take())
            try:
                await asyncio.wait_for(stream.close(), 5)
            except Exception:  # closing a broken socket may fail too; it is gone either way
                pass

    async def _sync_subscriptions(self, stream: StockDataStream, sent: set[str]) -> None:
        """Make the server's subscription set equal to the wanted one (bars and updated bars)."""
        wanted = set(self.subscriptions)
        dropped = sorted(sent - wanted)
        if dropped:  # unsubscribe first: a freed slot lets a refused ticker in
            self.refused = frozenset()
            stream.unsubscribe_bars(*dropped)
            stream.unsubscribe_updated_bars(*dropped)
            await stream._send_unsubscribe_msg("bars", dropped)
            await stream._send_unsubscribe_msg("updatedBars", dropped)
            logger.info("stream unsubscribed %s", dropped)
        self.refused = self.refused & wanted
        added = sorted(wanted - sent - self.refused - set(self._trial))
        if added:
            stream.subscribe_bars(self._on_bar, *added)  # only registers handlers: the stream is not "running"
            stream.subscribe_updated_bars(self._on_updated_bar, *added)
            await stream._send_subscribe_msg()
            logger.info("stream subscribed %s", added)
        sent.clear()
        sent.update(wanted - self.refused - set(self._trial))

    async def _consume(self, stream: StockDataStream, sent: set[str]) -> None:
        """Dispatch frames until the connection drops, goes silent in market hours, or stop."""
        loop = asyncio.get_running_loop()
        last_frame = loop.time()  # any frame at all: bars, subscription answers, errors, pongs
        while not self._should_stop():
            if self._wake.is_set():
                self._wake.clear()
                await self._sync_subscriptions(stream, sent)
            frame = await self._receive(stream)
            if frame is not None:
                last_frame = loop.time()
            for message in self._messages(frame):
                self._note_control(stream, message, sent)
                try:
                    await stream._dispatch(message)
                except (ValueError, TypeError, KeyError, AttributeError) as exc:  # one bad message, not a dead stream
                    logger.error("stream message %r not understood: %s", message.get("T"), exc)
            self._store(self._batch.due())
            if self._trial and self._awaiting is None:
                await self._offer_next(stream, sent)
            if loop.time() - last_frame > self._silence_timeout and sent and self._market_open():
                if not await self._answers_ping(stream):
                    logger.warning("stream silent for %.0fs during market hours and no answer to a ping; "
                                   "reconnecting", loop.time() - last_frame)
                    return
                last_frame = loop.time()  # quiet tickers, live connection: nothing to repair

    async def _answers_ping(self, stream: StockDataStream) -> bool:
        """Whether the connection itself is alive: a pong comes back within the probe time."""
        try:
            pong = await stream._ws.ping()
            await asyncio.wait_for(pong, min(10.0, max(1.0, self._silence_timeout)))
        except Exception:  # no pong, or the connection broke while asking
            return False
        logger.debug("stream quiet for a while but answers pings: the subscribed tickers are not trading")
        return True

    def _note_control(self, stream: StockDataStream, message: dict, sent: set[str]) -> None:
        """Remember what the feed confirmed, and which tickers it refused for its symbol limit.

        The feed refuses a whole subscribe message: when it held several new tickers, they are
        offered again one at a time, so the ones that fit still stream.
        """
        kind = message.get("T")
        if kind in ("subscription", "error"):
            self._settle_backfill()
        if kind == "subscription":
            self._confirmed = set(message.get("bars") or [])
            if self._awaiting in self._confirmed:
                self._awaiting = None
        elif kind == "error" and message.get("code") == 405:
            unconfirmed = set(sent) - self._confirmed
            self._withdraw(stream, sent, unconfirmed)
            if self._awaiting is not None or len(unconfirmed) <= 1:  # that one did not fit: nor will the rest
                refused = unconfirmed | set(self._trial)
                self._trial, self._awaiting = [], None
                self.refused = frozenset(self.refused | refused)
                self.symbol_limit = len(self._confirmed)
                logger.error("the feed refused %s: symbol limit exceeded (it holds %d symbols)",
                             ", ".join(sorted(refused)) or "a subscription", self.symbol_limit)
            else:
                self._trial = sorted(unconfirmed)
                logger.warning("the feed refused %d new tickers at once (symbol limit); offering them one by one",
                               len(unconfirmed))

    @staticmethod
    def _withdraw(stream: StockDataStream, sent: set[str], tickers: set[str]) -> None:
        sent -= tickers
        for ticker in tickers:
            stream.unsubscribe_bars(ticker)
            stream.unsubscribe_updated_bars(ticker)

    async def _offer_next(self, stream: StockDataStream, sent: set[str]) -> None:
        """Subscribe the next ticker of a refused batch on its own."""
        wanted = self.subscriptions
        while self._trial:
            ticker = self._trial.pop(0)
            if ticker in wanted and ticker not in sent:
                stream.subscribe_bars(self._on_bar, ticker)
                stream.subscribe_updated_bars(self._on_updated_bar, ticker)
                sent.add(ticker)
                self._awaiting = ticker
                await stream._send_subscribe_msg()
                return

    async def _receive(self, stream: StockDataStream) -> Any:
        """The next frame, or None when subscriptions changed, stop was asked, or the batch or a
        silence check is due first. No fixed poll: off hours the thread sleeps ``_IDLE_SECONDS``."""
        timeout = min(_IDLE_SECONDS, max(0.05, self._silence_timeout / 4))
        batch_left = self._batch.seconds_left()
        if batch_left is not None:
            timeout = min(timeout, batch_left)
        receiving = asyncio.ensure_future(stream._ws.recv())
        others = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self._stop.wait())]
        try:
            await asyncio.wait([receiving, *others], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in others:
                task.cancel()
            receiving.cancel()  # no-op when a frame came; websockets loses nothing on a cancelled recv()
        try:
            return await receiving  # a frame, or the closed connection's error, which ends the session
        except asyncio.CancelledError:
            return None

    @staticmethod
    def _messages(frame: Any) -> list:
        if frame is None:
            return []
        try:
            messages = msgpack.unpackb(frame)
        except (ValueError, TypeError) as exc:
            logger.error("stream frame not understood: %s", exc)
            return []
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    def _market_open(self) -> bool:
        try:
            return bool(self._is_market_open())
        except Exception:  # an unknown market state must not hide a dead stream
            logger.exception("is_market_open failed; assuming the market is open")
            return True

    async def _on_updated_bar(self, bar: Any) -> None:
        await self._on_bar(bar, updated=True)

    async def _on_bar(self, bar: Any, updated: bool = False) -> None:
        """Queue one bar (or an updated bar, which replaces the stored one) for its minute's commit."""
        self.last_message_at = computer_stamp()  # liveness: the computer's clock, like the heartbeat
        self._session_got_data = True
        stamp = market_calendar.to_utc_string(bar.timestamp)
        if not market_calendar.is_open(stamp):
            return  # stocks.db holds regular-session minutes only
        row = {"ticker": bar.symbol, "timestamp": stamp, "open": bar.open, "high": bar.high, "low": bar.low,
               "close": bar.close, "volume": bar.volume, "vwap": bar.vwap, "trade_count": bar.trade_count}
        self._store(self._batch.add(row, self.subscriptions, updated=updated))

    def _store(self, rows: list) -> None:
        """Write one batch in one transaction; a bad bar is logged and the rest still stored."""
        if not rows:
            return
        try:
            self.bars_written += db_manager.upsert_bars(self._db, rows)
        except (sqlite3.Error, ValueError) as exc:
            logger.error("%d bar(s) of %s not stored in one batch (%s); storing them one by one",
                         len(rows), rows[-1]["timestamp"], exc)
            for row in rows:
                try:
                    self.bars_written += db_manager.upsert_bars(self._db, [row])
                except (sqlite3.Error, ValueError) as one:
                    logger.error("bar %s %s not stored: %s", row["ticker"], row["timestamp"], one)

    def _settle_backfill(self) -> None:
        if self._backfill_owed:
            self._backfill_owed = False
            self._notify_reconnect()

    def _notify_reconnect(self) -> None:
        """Run ``on_reconnect`` in its own thread (a backfill must not stall the stream); calls
        that arrive while one is running are folded into one more run after it."""
        if self._on_reconnect is None:
            return
        with self._lock:
            self._reconnect_pending = True
            if self._callback_thread is not None:
                return
            self._callback_thread = threading.Thread(target=self._run_reconnect_callbacks,
                                                     name="stream-on-reconnect", daemon=True)
            self._callback_thread.start()

    def _run_reconnect_callbacks(self) -> None:
        while True:
            with self._lock:
                if not self._reconnect_pending:
                    self._callback_thread = None
                    return
                self._reconnect_pending = False
            try:
                self._on_reconnect()
            except Exception:  # the owner's failure is logged; the stream goes on
                logger.exception("on_reconnect failed")
