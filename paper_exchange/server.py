"""The exchange process: one account, one market, REST on one port and the stream on another."""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Optional

from waitress.server import create_server

from .broker import Broker, Position, order_json
from .clock import MarketCalendar, SimClock, utc_z
from .controls import ControlError, Controls
from .corporate_actions import CorporateActions
from .iex_feed import DEFAULT_PROFILES, IexFeed, parse_profiles
from .market import CENT, Market
from .rest import create_app
from .state import Saved, Store
from .stream import StreamServer

logger = logging.getLogger(__name__)

DATA_REQUEST_LOG = 10_000


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 0
    stream_port: int = 0
    start: Optional[datetime] = None  # None: the real time now
    speed: float = 1.0
    seed: int = 42
    cash: Decimal = Decimal("100000")
    key: str = "demo-key"
    secret: str = "demo-secret"
    stream_connection_limit: int = 1
    stream_symbol_limit: int = 30
    stream_linger_seconds: float = 0.0
    thin_symbols: str = DEFAULT_PROFILES
    log_level: str = "INFO"
    corporate_actions: tuple[dict, ...] = ()  # splits and dividends to schedule at start (see corporate_actions.py)
    state_path: Optional[Path] = None  # None: the account lives in memory only
    reset: bool = False                # start a fresh account even if state_path holds one

LEASE_INTERVAL_SECONDS = 1.0  # real seconds between saves of the clock lease


class Exchange:
    """Everything the REST app and the stream share; also the handle that starts and stops them."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.key, self.secret = options.key, options.secret
        self.calendar = MarketCalendar()
        self.clock = SimClock(options.start or datetime.now(timezone.utc), options.speed)
        self.market = Market(options.seed, self.calendar)
        self.broker = Broker(self.clock, self.calendar, self.market, options.cash)
        self.corporate_actions = CorporateActions(self.calendar, self.market)
        self.broker.corporate_actions = self.corporate_actions
        self.controls = Controls(stream_connection_limit=options.stream_connection_limit,
                                 stream_symbol_limit=options.stream_symbol_limit,
                                 stream_linger_seconds=options.stream_linger_seconds)
        self.feed = IexFeed(options.seed, parse_profiles(options.thin_symbols))
        self.data_requests: deque = deque(maxlen=DATA_REQUEST_LOG)  # market-data REST calls, newest last
        self.stream = StreamServer(self)
        self._http = None
        self._store: Optional[Store] = None
        self._stopping = threading.Event()

    # ---- life cycle ----------------------------------------------------------------------------
    def start(self) -> tuple[int, int]:
        """Bind both servers and serve in background threads; returns (rest port, stream port)."""
        begin = self._open_state() if self.options.state_path else self.options.start
        self._schedule_corporate_actions()
        app = create_app(self)
        self._http = create_server(app, host=self.options.host, port=self.options.port, threads=4,
                                   ident="paper-exchange")
        rest_port = self._http.effective_port
        threading.Thread(target=self._http.run, name="rest", daemon=True).start()
        stream_port = self.stream.start(self.options.host, self.options.stream_port)
        if begin is not None:  # start the simulated clock when serving, not while loading
            self.clock.set(begin)
        if self._store is not None:
            self.save_clock()
            threading.Thread(target=self._keep_clock_lease, name="clock-lease", daemon=True).start()
        return rest_port, stream_port

    def stop(self) -> None:
        self._stopping.set()
        self.stream.stop()
        if self._http is not None:
            self._http.close()
        if self._store is not None:
            with self.broker.lock:
                self.save_clock()
                self._store.close()

    def _schedule_corporate_actions(self) -> None:
        """The saved schedule (if any), then the start option's actions not already known."""
        if self._store is not None:
            self.corporate_actions.attach(self._store)
        for spec in self.options.corporate_actions:
            action = self.corporate_actions.parse(spec)
            if not self.corporate_actions.knows(action):
                self.corporate_actions.schedule(action, self.clock.now())

    # ---- state on disk -----------------------------------------------------------------------------
    def _open_state(self) -> Optional[datetime]:
        """Open (or reset) the state file and take over its account; returns where the clock starts."""
        path = self.options.state_path
        if self.options.reset:
            Store.reset(path)
            logger.info("reset: starting a fresh account in %s", path)
        self._store = Store(path)
        saved = self._store.load()
        begin = self.options.start if saved is None else self._resume_time(saved)
        if begin is not None:
            self.clock.set(begin)
        self.broker.attach(self._store, saved)
        if saved is not None:
            logger.info("resumed account %s from %s: cash %s, %d position(s), %d order(s); clock at %s",
                        saved.account_id, path, saved.cash, len(saved.positions), len(saved.orders), utc_z(begin))
        return begin

    def _resume_time(self, saved: Saved) -> datetime:
        """The saved clock lease (never before the last booked event); at speed 1, now if later."""
        if saved.seed != self.options.seed:
            logger.warning("state %s was written with seed %s, running with seed %s: prices differ from "
                           "the ones its positions were bought at", self.options.state_path, saved.seed,
                           self.options.seed)
        if self.options.start is not None:
            logger.info("a saved account exists: --start is ignored (use --reset for a fresh account)")
        stamps = [saved.clock_lease] + [o[k] for o in saved.orders for k in ("updated_at", "created_at") if o.get(k)]
        resume = max(stamps)
        if self.options.speed == 1:
            resume = max(resume, datetime.now(timezone.utc))
        return resume

    def save_clock(self) -> None:
        """Save a lease a little ahead of now, so a restart never shows an earlier time."""
        if self._store is None:
            return
        ahead = timedelta(seconds=2 * LEASE_INTERVAL_SECONDS * self.clock.speed)
        self._store.save_clock_lease(self.clock.now() + ahead)

    def _keep_clock_lease(self) -> None:
        last = None
        while not self._stopping.wait(LEASE_INTERVAL_SECONDS):
            now = self.clock.now()
            if now != last:
                try:
                    self.save_clock()
                except Exception:  # a full disk must not end the exchange; the books still raise
                    logger.exception("could not save the clock lease")
                last = now

    # ---- views shared by REST and /_sim ------------------------------------------------------------
    def account_json(self) -> dict:
        with self.broker.lock:
            self.broker.settle()
            now = self.clock.now()
            long_value = sum((self.market.price_at(p.symbol, now) * p.qty for p in self.broker.positions.values()),
                             Decimal("0"))
            last_value = sum((self.market.previous_close(p.symbol, now) * p.qty
                              for p in self.broker.positions.values()), Decimal("0"))
            cash, buying_power = self.broker.cash, self.broker.buying_power()
        money = lambda value: str(Decimal(value).quantize(CENT))
        equity = cash + long_value
        return {
            "id": self.broker.account_id, "account_number": "PA" + self.broker.account_id[:8].upper(),
            "status": "ACTIVE", "crypto_status": "INACTIVE", "currency": "USD",
            "buying_power": money(buying_power), "regt_buying_power": money(buying_power),
            "non_marginable_buying_power": money(buying_power), "options_buying_power": money(buying_power),
            "cash": money(cash), "accrued_fees": "0", "pending_transfer_in": "0", "pending_transfer_out": "0",
            "portfolio_value": money(equity), "equity": money(equity), "last_equity": money(cash + last_value),
            "long_market_value": money(long_value), "short_market_value": "0", "initial_margin": "0",
            "maintenance_margin": "0", "last_maintenance_margin": "0", "sma": "0", "multiplier": "1",
            "trading_blocked": False, "transfers_blocked": False, "account_blocked": False,
            "trade_suspended_by_user": False, "shorting_enabled": False, "pattern_day_trader": False,
            "daytrade_count": 0, "options_approved_level": 0, "options_trading_level": 0,
            "created_at": utc_z(self.broker.created_at, micros=True),
        }

    def position_json(self, position: Position) -> dict:
        now = self.clock.now()
        price = self.market.price_at(position.symbol, now)
        last = self.market.previous_close(position.symbol, now)
        value = price * position.qty
        pl = value - position.cost_basis
        intraday = (price - last) * position.qty
        asset = self.market.asset(position.symbol)
        ratio = lambda a, b: str((a / b).quantize(Decimal("0.0000001"))) if b else "0"
        return {
            "asset_id": asset.id, "symbol": position.symbol, "exchange": asset.exchange,
            "asset_class": "us_equity", "asset_marginable": True, "qty": str(position.qty),
            "qty_available": str(position.qty - self._held_for_sale(position.symbol)),
            "avg_entry_price": str(position.avg_entry_price), "side": "long",
            "market_value": str(value.quantize(CENT)), "cost_basis": str(position.cost_basis.quantize(CENT)),
            "unrealized_pl": str(pl.quantize(CENT)), "unrealized_plpc": ratio(pl, position.cost_basis),
            "unrealized_intraday_pl": str(intraday.quantize(CENT)),
            "unrealized_intraday_plpc": ratio(intraday, last * position.qty),
            "current_price": str(price), "lastday_price": str(last), "change_today": ratio(price - last, last),
        }

    def _held_for_sale(self, symbol: str) -> int:
        return sum(o.remaining for o in self.broker.orders.values() if o.symbol == symbol and o.side == "sell")

    def state(self) -> dict:
        """Read-only view for tests and operators (``GET /_sim/state``)."""
        with self.broker.lock:
            self.broker.settle()
            now = self.clock.now()
            orders = [order_json(o) for o in sorted(self.broker.orders.values(), key=lambda o: o.created_at)]
            positions = {p.symbol: {"qty": p.qty, "avg_entry_price": str(p.avg_entry_price),
                                    "cost_basis": str(p.cost_basis.quantize(CENT))}
                         for p in self.broker.positions.values()}
            cash = str(self.broker.cash)
        return {
            "clock": {"now": utc_z(now, micros=True), "speed": self.clock.speed,
                      "is_open": self.calendar.is_open(now)},
            "seed": self.market.seed, "cash": cash, "initial_cash": str(self.broker.initial_cash),
            "positions": positions, "orders": orders, "controls": self.controls.snapshot(),
            "stream": self.stream.snapshot(), "corporate_actions": self.corporate_actions.snapshot(),
            "feed": self.feed.snapshot(), "data_requests": list(self.data_requests),
            "price_paths": {symbol: [[utc_z(datetime.fromtimestamp(t, timezone.utc)), float(p)] for t, p in zip(*path)]
                            for symbol, path in self.market.price_paths.items()},
        }

    def apply_control(self, request) -> dict:
        """``POST /_sim/control``: switches, then one-shot actions; answers what was done."""
        path = request.get("price_path") if isinstance(request, dict) else None
        if isinstance(path, dict) and isinstance(path.get("symbol"), str) and not self.market.has_bars(path["symbol"]):
            raise ControlError(f"price_path.symbol {path['symbol']!r} is not a tradable symbol of this exchange")
        actions = self.controls.apply(request)
        done: dict = {"controls": self.controls.snapshot()}
        if actions.price_path is not None:
            symbol, points = actions.price_path
            self.market.set_price_path(symbol, points)
            done["price_path"] = {"symbol": symbol, "points": len(points)}
            logger.info("%s prices scripted from %s (%d point(s))", symbol,
                        utc_z(points[0][0]) if points else "-", len(points))
        if actions.clock_set is not None or actions.clock_speed is not None:
            with self.broker.lock:
                self.broker.settle()  # orders due before the jump fill at their own time
                self.clock.set(actions.clock_set, actions.clock_speed)
                self.save_clock()
            done["clock"] = {"now": utc_z(self.clock.now(), micros=True), "speed": self.clock.speed}
            logger.info("clock set to %s at speed %s", done["clock"]["now"], self.clock.speed)
        if actions.drop_streams:
            done["dropped_streams"] = self.stream.drop_all()
            logger.info("dropped %d stream connection(s)", done["dropped_streams"])
        if actions.silence_streams_seconds is not None:
            done["silenced_streams"] = self.stream.silence(actions.silence_streams_seconds)
            logger.info("silenced %d stream connection(s) for %ss", done["silenced_streams"],
                        actions.silence_streams_seconds)
        return done
