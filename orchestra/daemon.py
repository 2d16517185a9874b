"""The orchestrator's minute loop: start-up healing, one cycle per market minute, clean shutdown.

Cycle for the bar that started at minute M runs once M has closed (at M+1, after that bar has
arrived or a short deadline), and only while the market is open at M+1: regular sessions of the
NYSE calendar, holidays and early closes included. When the loop falls behind it runs the newest
closed minute and says how many it skipped. Off hours it sleeps until one minute after the next
open, in clock-driven naps (no busy-waiting), pinging systemd's watchdog.
"""
from __future__ import annotations

import hashlib
import logging
import socket
import sqlite3
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Optional, TextIO

from database import db_manager, market_calendar
from orchestra import systemd
from shared import notifier
from orchestra.card_runner import CardRunner
from shared.clock import MINUTE, ClockUnavailable, floor_minute, make_clock, stamp
from orchestra.clock_check import ClockCheck
from shared.config import AlpacaSettings, Settings
from orchestra.corporate_actions import CorporateActionKeeper, default_fetch
from orchestra.cycle import Cycle, CycleReport, preview
from orchestra.exceptions import OperationalError, TemporaryError
from orchestra.heartbeat import ErrorLog, HeartbeatWriter
from shared.request_budget import RequestBudget
from orchestra.trade_updates import TradeUpdates, stream_url
from orchestra.retention import BarPruner
from orchestra.trader import Trader
from orchestra.websocket_manager import WebSocketManager
from system_databse import system_db_manager as ledger

logger = logging.getLogger(__name__)

NOTIFY_FLUSH_SECONDS = 3.0  # at exit, how long queued notifications may still take
TICK_HEARTBEAT_SECONDS = 5.0
SILENCE_LOOKBACK = timedelta(minutes=30)  # how far back a cycle looks for minutes the stream missed
BAR_LOOK = timedelta(seconds=0.25)  # clock time between looks for a minute's bars


def is_cycle_minute(minute: datetime) -> bool:
    """A bar the loop acts on: a session minute whose close (minute + 1) is still in the session."""
    return market_calendar.is_open(minute) and market_calendar.is_open(minute + MINUTE)


def next_wake(now: datetime) -> datetime:
    """When the next cycle is due: the next minute boundary in session, else one minute after the next open."""
    boundary = floor_minute(now) + MINUTE
    if is_cycle_minute(boundary - MINUTE):
        return boundary
    return market_calendar.next_open(now).to_pydatetime() + MINUTE


class InstanceLock:
    """One trading daemon per system.db: an abstract unix socket named after the database's path.

    The kernel releases it when the process dies, even by SIGKILL; no file is left behind.
    """

    def __init__(self, system_db: Path):
        digest = hashlib.sha256(str(Path(system_db).resolve()).encode()).hexdigest()[:24]
        self.name = f"autotrader-orchestrator-{digest}"
        self._sock: Optional[socket.socket] = None

    def acquire(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind("\0" + self.name)
        except OSError:
            sock.close()
            raise OperationalError("another orchestrator is already trading on this system.db; "
                                   "stop it first (systemctl --user stop autotrader-orchestrator)") from None
        self._sock = sock

    def release(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _default_streamer(alpaca: AlpacaSettings, stocks_db: Path, on_reconnect: Callable[[], None],
                      is_market_open: Callable[[], bool], clock: Any = None) -> Any:
    from database.realtime_pull import RealtimeStreamer

    return RealtimeStreamer(alpaca, stocks_db, on_reconnect=on_reconnect, is_market_open=is_market_open,
                            clock=clock)


def _default_backfill(market_conn: sqlite3.Connection, alpaca: AlpacaSettings,
                      budget: RequestBudget) -> Callable[[str, str], int]:
    from database import historical_pull

    return lambda ticker, now: historical_pull.backfill(market_conn, ticker, now=now, settings=alpaca, budget=budget)


class Orchestrator:
    """Owns the connections, the broker, the clock, the stream and the loop of one daemon process.

    ``config`` is the process's one ``Settings`` (``self.settings`` its daemon part); its broker
    part must be complete, else ConfigError.
    """

    def __init__(self, config: Settings, *, broker: Any = None, clock: Any = None,
                 streamer_factory: Optional[Callable[..., Any]] = None, read_only: bool = False):
        self.settings = settings = config.daemon
        self.alpaca = alpaca = config.broker
        self.read_only = read_only
        self.stop_event = threading.Event()
        self.errors = ErrorLog()
        self.system_db = config.databases.system_db
        self.stocks_db = config.databases.stocks_db
        self.ledger_conn = self._connect(ledger.get_connection, self.system_db, "system.db")
        self.market_conn = self._connect(db_manager.get_connection, self.stocks_db, "stocks.db")
        self.budget = RequestBudget(settings.requests_per_minute)
        if broker is None:
            from orchestra.alpaca_wrapper import AlpacaWrapper

            broker = AlpacaWrapper(alpaca, budget=self.budget, stopping=self.stop_event.is_set)
        self.broker = broker
        self.clock = clock or make_clock(settings.clock, lambda: broker.get_clock().timestamp)
        self.clock_check = (ClockCheck(lambda: broker.get_clock().timestamp, system_now=self.clock.now)
                            if self.clock.kind == "system" else None)
        self.runner = CardRunner(self.market_conn, self.ledger_conn, directory=settings.algorithms_dir,
                                 timeout=settings.algorithm_timeout, max_price_age=settings.max_price_age)
        self.updates: Optional[TradeUpdates] = None
        if not read_only:
            self.updates = TradeUpdates(stream_url(alpaca), alpaca.api_key, alpaca.secret)
        self.trader = Trader(broker, self.ledger_conn, now=self.clock.peek, fill_timeout=settings.fill_timeout,
                             on_error=self.errors.record, updates=self.updates)
        self._streamer_factory = streamer_factory or _default_streamer
        self.streams: Optional[WebSocketManager] = None
        self.cycle: Optional[Cycle] = None
        self.heartbeat = HeartbeatWriter(self.ledger_conn)
        self.notifier = notifier.from_settings(config)  # NOTIFY_URL; disabled when empty
        self.control_settings = config.controls  # the daily order limit (the cards' limits are in system.db)
        self.pruner = BarPruner(self.market_conn, lambda: ledger.get_all_algorithms("running", conn=self.ledger_conn),
                                settings=config.retention, directory=settings.algorithms_dir,
                                keep_going=lambda: not self.stop_event.is_set())
        self.lock = InstanceLock(self.system_db)
        self.last_minute: Optional[datetime] = None
        self.last_cycle_at: Optional[str] = None
        self.mismatches: list = []
        self.corporate_actions = CorporateActionKeeper(self.ledger_conn, self.market_conn, default_fetch(alpaca),
                                                       on_error=self.errors.record)
        self._closed_logged = False
        self.session_completed_at: Optional[str] = None  # when off hours began and the day's bars were completed
        self._last_tick_heartbeat = 0.0
        self._heals_after_connect: Optional[int] = None  # None until the stream is first seen connected

    def _connect(self, connect: Callable[..., sqlite3.Connection], path: Path, what: str) -> sqlite3.Connection:
        try:
            return connect(path, read_only=self.read_only)
        except (FileNotFoundError, sqlite3.Error) as exc:
            raise OperationalError(f"cannot open {what}: {exc}") from None

    # -- assembling

    def _build_cycle(self, *, with_stream: bool) -> Cycle:
        backfill = _default_backfill(self.market_conn, self.alpaca, self.budget)
        cycle = Cycle(ledger_conn=self.ledger_conn, market_conn=self.market_conn, broker=self.broker,
                      trader=self.trader, runner=self.runner, errors=self.errors,
                      backfill=self.corporate_actions.guard_backfill(
                          lambda ticker: backfill(ticker, stamp(self.clock.now())), self.clock.now))
        cycle.clock_check = self.clock_check
        cycle.stopping = self.stop_event.is_set
        cycle.now = self.clock.peek
        cycle.after_reconcile = self._apply_corporate_actions  # settle open orders first, then split
        cycle.alerts.notifier = cycle.controls.notifier = self.notifier
        cycle.controls.settings = self.control_settings
        if with_stream:
            streamer = self._streamer_factory(self.alpaca, self.stocks_db, cycle.stream_reconnected,
                                              lambda: market_calendar.is_open(self.clock.peek()), clock=self.clock)
            self.streams = cycle.streams = WebSocketManager(streamer)
        return cycle

    def start(self) -> None:
        """Daemon start-up: settle orders left open, restore subscriptions, heal data gaps."""
        self.lock.acquire()
        self.cycle = self._build_cycle(with_stream=True)
        self._start_trade_updates()
        reconciled = self.cycle.reconcile()
        if reconciled:
            logger.info("start-up: reconciled %d order(s) left open by the previous run",
                        len({outcome.client_order_id for outcome in reconciled}))
        running = ledger.get_all_algorithms("running", conn=self.ledger_conn)
        self.cycle.sync_streams(running)
        self.streams.start_websocket_thread()
        self._apply_corporate_actions()
        self.cycle.heal({card["ticker"] for card in running})
        self.last_minute = self._previous_run_minute()
        self._write_heartbeat(force=True)

    def _start_trade_updates(self) -> None:
        """Fills come from the trade updates stream; trading starts without it (REST then)."""
        if self.updates is None:
            return
        self.updates.start()
        if not self.updates.wait_connected(3.0):
            logger.warning("trade updates stream not connected yet; fills are looked up by REST until it is")

    def _apply_corporate_actions(self) -> None:
        """Splits and dividends of the watched tickers, once per trading day, before any decision and
        after the orders left open are settled (a ticker whose order is still open waits)."""
        try:
            self.corporate_actions.check(self.clock.now())
        except (sqlite3.Error, ledger.LedgerError, TemporaryError, ClockUnavailable) as exc:
            self._error(f"corporate actions not applied: {exc}; trying again next cycle")

    def _previous_run_minute(self) -> Optional[datetime]:
        """The last bar the previous run acted on: a restart within that minute must not decide it again."""
        beat = ledger.get_heartbeat("orchestrator", conn=self.ledger_conn)
        stamp_ = (beat or {}).get("payload", {}).get("last_bar_minute")
        return market_calendar.parse_utc(stamp_).to_pydatetime() if stamp_ else None

    def request_stop(self, reason: str = "stop requested") -> None:
        if not self.stop_event.is_set():
            logger.info("%s: finishing the current cycle, then exiting", reason)
        self.stop_event.set()

    def close(self) -> None:
        if not self.notifier.flush(NOTIFY_FLUSH_SECONDS):
            logger.warning("exiting with notifications still unsent")
        if self.updates is not None:
            self.updates.stop()
        if self.streams is not None:
            try:
                self.streams.stop()
            except Exception as exc:  # shutting down anyway
                logger.warning("stream did not stop cleanly: %s", exc)
        self.lock.release()
        self.ledger_conn.close()
        self.market_conn.close()

    # -- the daemon

    def run_forever(self) -> int:
        """Run cycles until ``request_stop``; returns the exit status (0)."""
        try:
            self.start()
            systemd.ready()
            systemd.status("trading loop running")
            while not self.stop_event.is_set():
                self._step()
        finally:
            systemd.stopping()
            self.close()
        logger.info("orchestrator stopped")
        return 0

    def _step(self) -> None:
        try:
            now = self.clock.now()
        except ClockUnavailable as exc:
            self._error(str(exc))
            self.stop_event.wait(5.0)
            return
        minute = floor_minute(now) - MINUTE
        if self.stop_event.is_set():  # asked to stop while reading the clock: begin nothing new
            return
        if is_cycle_minute(minute) and (self.last_minute is None or minute > self.last_minute):
            self._closed_logged = False
            self._run_cycle(minute)
        else:
            self._sleep_until_next(now)

    def _run_cycle(self, minute: datetime) -> Optional[CycleReport]:
        if self.last_minute is not None and minute - self.last_minute > MINUTE:
            between = market_calendar.minutes_between(self.last_minute + MINUTE, minute - MINUTE)
            skipped = sum(1 for m in between if is_cycle_minute(market_calendar.parse_utc(m)))
            if skipped:
                logger.warning("running behind: skipped %d minute(s) between %s and %s", skipped,
                               stamp(self.last_minute), stamp(minute))
        self._heal_after_first_connect()
        self._wait_for_bars(minute)
        self._heal_silent_minutes(minute)
        report = None
        if self.ledger_conn.in_transaction:  # a write that never finished: never trade on top of it
            self._error(f"cycle {stamp(minute)} refused: system.db connection is inside an unfinished "
                        "transaction; rolling it back")
            self.ledger_conn.rollback()
            self.last_minute = minute
            return None
        try:
            report = self.cycle.run(minute, trading=True)
            if report.position_mismatches is not None:
                self.mismatches = report.position_mismatches
        except (sqlite3.Error, TemporaryError, ClockUnavailable) as exc:
            self._error(f"cycle {stamp(minute)} failed: {exc}; trying again next minute")
        except Exception as exc:  # never let one minute kill the daemon
            logger.exception("cycle %s failed unexpectedly", stamp(minute))
            self.errors.record(str(exc))
        self.last_minute = minute
        self.last_cycle_at = self._now_stamp()
        self._write_heartbeat(force=True)
        systemd.watchdog()
        return report

    def _heal_after_first_connect(self) -> None:
        """Backfill every streamed ticker in the two cycles after the stream first connects.

        The start-up backfill runs before the stream has subscribed: a minute that closes between
        the two reaches neither (the stream sends only minutes closing after a subscription).
        """
        if self.streams is None or self.cycle is None or self._heals_after_connect == 0:
            return
        if self._heals_after_connect is None:
            if not self.streams.status()["connected"]:
                return
            self._heals_after_connect = 2
        self._heals_after_connect -= 1
        self.cycle.request_backfill(self.streams.active_tickers)

    def _heal_silent_minutes(self, minute: datetime) -> None:
        """Backfill the streamed tickers when a minute since the last cycle has no bar for any of them.

        A stream can stay connected yet deliver nothing for a while (shorter than its silence
        timeout, so it never reconnects): such a minute would otherwise stay missing for good.
        A minute only some tickers lack is a minute without trades in them, not a silence (with a
        single ticker the two cannot be told apart: its stream's silence timeout has to do).
        """
        tickers = sorted(self.streams.active_tickers) if self.streams and self.cycle else []
        if len(tickers) < 2:
            return
        first = max(self.last_minute + MINUTE, minute - SILENCE_LOOKBACK) if self.last_minute else minute
        first_stamp, last_stamp = stamp(first), stamp(minute)
        silent = set(db_manager.find_gaps(self.market_conn, tickers[0], first_stamp, last_stamp))
        for ticker in tickers[1:]:
            if not silent:
                return
            silent &= set(db_manager.find_gaps(self.market_conn, ticker, first_stamp, last_stamp))
        if silent:
            logger.info("no bar for any ticker at %s: backfilling %s", ", ".join(sorted(silent)[:3])
                        + (" ..." if len(silent) > 3 else ""), ", ".join(tickers))
            self.cycle.request_backfill(tickers)

    def _wait_for_bars(self, minute: datetime) -> None:
        """Until every subscribed ticker has the bar of ``minute``, the deadline passes, or a stop.

        The deadline is ``bar_wait`` seconds of the trading clock after the minute closes, and the
        looks in between are spaced in clock time too (a quarter of a clock second, 5 to 50 ms of
        real time), so an exchange simulating 20 minutes a minute is waited for the same clock
        seconds, 20 times faster. The same number of real seconds bounds the wait as well: a clock
        that stands still (a simulation at speed 0) must not hold the cycle, its heartbeat and
        systemd's watchdog forever; at any speed of 1 or more the clock's deadline comes first.
        """
        tickers = sorted(self.streams.active_tickers) if self.streams else []
        deadline = minute + MINUTE + timedelta(seconds=self.settings.bar_wait)
        real_bound = time.monotonic() + self.settings.bar_wait
        wanted = stamp(minute)
        while tickers and not self.stop_event.is_set():
            tickers = [t for t in tickers if (db_manager.get_last_timestamp(self.market_conn, t) or "") < wanted]
            if not tickers:
                return
            try:
                now: Optional[datetime] = self.clock.peek()
            except ClockUnavailable:
                now = None
            if (now is not None and now >= deadline) or time.monotonic() >= real_bound:
                logger.info("bar %s not yet in for %s; running without it", wanted, ", ".join(tickers))
                return
            look = min(deadline, now + BAR_LOOK) if now is not None else None
            self.stop_event.wait(self.clock.nap(look, now, longest=0.05) if look is not None else 0.05)

    def _sleep_until_next(self, now: datetime) -> None:
        wake = next_wake(now)
        if wake - now > 2 * MINUTE and market_calendar.is_open(now):
            wake = floor_minute(now) + MINUTE  # the session's last minute: complete it once it has closed
        elif wake - now > 2 * MINUTE and not self._closed_logged:
            self._closed_logged = True
            logger.info("off hours: next cycle at %s (clock %s)", stamp(wake), stamp(now))
            self._complete_the_session(now)
            self._write_heartbeat(force=True)
            self.pruner.run_if_due(now)
        self.clock.sleep_until(wake, self.stop_event, tick=self._tick)

    def _complete_the_session(self, now: datetime) -> None:
        """Off hours begin, the last minute closed: fetch what the stream missed of the session's last minutes.

        No cycle runs after the close, so a bar lost to a drop near the end (a reconnect that
        waits out the feed's connection limit, say) would wait for the next session's start-up
        backfill, or stay missing for a ticker nobody watches by then.
        """
        if self.streams is not None and self.cycle is not None:
            tickers = sorted(self.streams.active_tickers)
            self.cycle.request_backfill(tickers)
            self.cycle.heal(tickers)
        self.session_completed_at = stamp(now)

    def _tick(self) -> None:
        """Called between naps: keep systemd's watchdog fed and the heartbeat fresh."""
        systemd.watchdog()
        if time.monotonic() - self._last_tick_heartbeat >= TICK_HEARTBEAT_SECONDS:
            self._last_tick_heartbeat = time.monotonic()
            self._write_heartbeat(force=False)

    # -- heartbeat

    def _now_stamp(self) -> Optional[str]:
        """The clock without asking the broker again (an unreachable one would stall a stop)."""
        try:
            return stamp(self.clock.peek())
        except ClockUnavailable:
            return None

    def heartbeat_payload(self) -> dict:
        tickers = sorted(self.streams.active_tickers) if self.streams else []
        try:
            now = self.clock.peek()
            market_open = market_calendar.is_open(now)
        except ClockUnavailable:
            market_open = None
        stream = self.streams.status() if self.streams else {
            "connected": False, "subscriptions": [], "last_message_at": None, "reconnects": 0}
        return {
            "last_cycle_at": self.last_cycle_at,
            "last_bar_minute": stamp(self.last_minute) if self.last_minute else None,
            "clock": self.clock.kind,
            "market_open": market_open,
            "stream": stream,
            "last_bar": {t: db_manager.get_last_timestamp(self.market_conn, t) for t in tickers},
            "position_mismatches": self.mismatches,
            "broker_requests_last_minute": self.budget.used_last_minute(),
            "errors_last_hour": self.errors.last_hour(),
            "clock_check": self.clock_check.status() if self.clock_check else None,
            "session_completed_at": self.session_completed_at,
        }

    def _write_heartbeat(self, *, force: bool) -> None:
        try:
            self.heartbeat.write(self.heartbeat_payload(), force=force)
        except sqlite3.Error as exc:
            logger.warning("heartbeat not written: %s", exc)

    def _error(self, message: str) -> None:
        logger.error(message)
        self.errors.record(message)

    # -- one cycle from the shell

    def run_once(self, *, dry_run: bool = False, out: TextIO = sys.stdout,
                 parameters: Optional[dict] = None) -> int:
        """``--once``: one cycle for the newest closed minute now; ``dry_run``: print, never act.

        ``parameters`` (dry run only): ``{name: "value"}`` overriding that parameter on every card
        whose algorithm declares it.
        """
        self.runner.parameter_overrides = dict(parameters or {})
        now = self.clock.now()
        minute = floor_minute(now) - MINUTE
        trading = is_cycle_minute(minute)
        state = "market open" if trading else "market closed"
        if dry_run:
            print(f"dry run for the bar of {stamp(minute)} ({self.clock.kind} clock, {state}): "
                  "no orders, no writes", file=out)
            lines = preview(self.runner, self.ledger_conn, self.market_conn, minute)
            for line in lines or ["no running cards"]:
                print(line, file=out)
            return 0
        self.lock.acquire()
        self.cycle = self._build_cycle(with_stream=False)
        self._start_trade_updates()
        self.cycle.request_backfill(c["ticker"] for c in ledger.get_all_algorithms("running", conn=self.ledger_conn))
        report = self.cycle.run(minute, trading=trading)
        print(f"cycle for the bar of {stamp(minute)} ({self.clock.kind} clock, {state}): "
              f"{len(report.decisions)} decision(s), {report.orders_sent} order(s), "
              f"{len(report.card_errors)} card error(s)", file=out)
        for trade in report.trades:
            print(f"card {trade.card_id} {trade.ticker}: {trade.side} {trade.requested_shares} -> {trade.status}"
                  + (f" {trade.filled_shares} at ${trade.price:,.2f}" if trade.price else "")
                  + (" (crossed)" if trade.crossed else ""), file=out)
        for card_id, error in report.card_errors.items():
            print(f"card {card_id}: ERROR - {error}", file=out)
        return 0
