"""Every process's settings, read from the environment once and checked at start-up.

Each entry point calls ``load_env()`` (``.env`` fills in only what the process environment does not
already set) and builds one ``Settings.from_env(os.environ)``, which it passes down; tests pass a
dict instead. Every key is read here, by one of a few small parsers, and a malformed value raises
``ConfigError`` naming the key and the value (never a secret's value). Numbers are ASCII digits
only: ``1e3``, ``inf`` or ``٣٠`` are refused rather than guessed at.

The broker part is the exception to "checked at start-up": the API's wall, ``./scripts/status``
and the exports run without keys, so a missing or malformed broker setting is raised only when a
process asks for ``settings.broker``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlparse

from dotenv import load_dotenv

from shared.request_budget import DEFAULT_PER_MINUTE

REPO_ROOT = Path(__file__).resolve().parent.parent
FEEDS = ("iex", "sip")
CLOCKS = ("system", "broker")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SECRET_KEYS = ("ALPACA_API_KEY", "ALPACA_SECRET")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the key and never its secret value."""


def load_env(path: Optional[Path] = None) -> None:
    """Fill unset environment variables from ``.env`` (repo root by default); set ones win."""
    load_dotenv(path or REPO_ROOT / ".env", override=False)


# -- the parsers: the value of ``key``, its default when empty, or a ConfigError naming both

def _text(env: Mapping[str, str], key: str) -> str:
    return (env.get(key) or "").strip()


def whole_number(env: Mapping[str, str], key: str, default: int, *, low: int = 0, what: str = "") -> int:
    raw = _text(env, key)
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < low:
        raise ConfigError(f"{key} must be a whole number{what} (at least {low}), got {raw!r}")
    return int(raw)


def port(env: Mapping[str, str], key: str, default: int) -> int:
    raw = _text(env, key)
    if raw and (not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 65536):
        raise ConfigError(f"{key} must be a port number, got {raw!r}")
    return int(raw) if raw else default


def seconds(env: Mapping[str, str], key: str, default: float, *, at_least: Optional[float] = None) -> float:
    """A positive number of seconds, or (with ``at_least``) one of at least that many."""
    raw = _text(env, key)
    if not raw:
        return default
    value = float(raw) if _DECIMAL.fullmatch(raw) else -1.0
    if not (value > 0 if at_least is None else value >= at_least):
        bound = "a positive number of seconds" if at_least is None else f"at least {at_least:g} seconds"
        raise ConfigError(f"{key} must be {bound}, got {raw!r}")
    return value


def optional_count(env: Mapping[str, str], key: str) -> Optional[int]:
    """A whole number of at least 1, or None when empty (no such limit)."""
    return whole_number(env, key, 0, low=1) if _text(env, key) else None


def optional_amount(env: Mapping[str, str], key: str, *, below: Optional[float] = None) -> Optional[float]:
    """A number above 0 (and below ``below``), or None when empty (no such limit)."""
    raw = _text(env, key)
    if not raw:
        return None
    value = float(raw) if _DECIMAL.fullmatch(raw) else -1.0
    if not value > 0 or (below is not None and not value < below):
        bound = f"a number above 0{f' and below {below:g}' if below is not None else ''}"
        raise ConfigError(f"{key} must be {bound} (or empty for no limit), got {raw!r}")
    return value


def flag(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = _text(env, key)
    if not raw:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be True or False, got {raw!r}")


def choice(env: Mapping[str, str], key: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``, compared without case; returned in the case ``choices`` use."""
    raw = _text(env, key)
    if not raw:
        return default
    for option in choices:
        if raw.lower() == option.lower():
            return option
    names = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
    raise ConfigError(f"{key} must be {names}, got {raw!r}")


def base_url(env: Mapping[str, str], key: str, schemes: tuple[str, ...]) -> Optional[str]:
    """An override in Alpaca's base-URL form (scheme://host:port, no path), or None for Alpaca's own."""
    raw = _text(env, key)
    if not raw:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not parsed.hostname:
        raise ConfigError(f"{key} must look like {schemes[0]}://host:port, got {raw!r}")
    if parsed.path not in ("", "/"):
        raise ConfigError(f"{key} must be a base URL without a path (the project appends /v2/...), got {raw!r}")
    return raw.rstrip("/")


def path(env: Mapping[str, str], key: str, default: Optional[Path], *, folder: bool = False) -> Optional[Path]:
    """A file (or, with ``folder``, a folder) that may not exist yet, but is not the other kind."""
    raw = _text(env, key)
    if not raw:
        return default
    value = Path(raw)
    if "\0" in raw or (value.is_dir() if not folder else value.exists() and not value.is_dir()):
        raise ConfigError(f"{key} must name a {'folder' if folder else 'file, not a folder'}, got {raw!r}")
    return value


def existing_folder(env: Mapping[str, str], key: str) -> Optional[Path]:
    raw = _text(env, key)
    if raw and not Path(raw).is_dir():
        raise ConfigError(f"{key} is not a directory: {raw!r}")
    return Path(raw).resolve() if raw else None


def utc_time(env: Mapping[str, str], key: str) -> Optional[str]:
    raw = _text(env, key)
    if not raw:
        return None
    try:
        datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise ConfigError(f"{key} must be a UTC time like 2026-11-23T14:25:00Z, got {raw!r}") from None
    return raw


def required(env: Mapping[str, str], key: str) -> str:
    """A secret: its value is never put in a message."""
    value = _text(env, key)
    if not value or value.startswith("your_"):
        raise ConfigError(f"{key} is not set; put it in .env (see .env.example)")
    return value


# -- the parts: each process reads the ones it uses from the one Settings object

@dataclass(frozen=True)
class AlpacaSettings:
    """How to reach the broker: keys, paper or live, data feed and optional URL overrides."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    paper: bool = True
    feed: str = "iex"
    trading_url: Optional[str] = None
    data_url: Optional[str] = None
    stream_url: Optional[str] = None
    trade_stream_url: Optional[str] = None  # trade updates stream base; None: Alpaca's own (see from_env)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "AlpacaSettings":
        return cls(
            api_key=required(env, "ALPACA_API_KEY"),
            secret=required(env, "ALPACA_SECRET"),
            paper=flag(env, "ALPACA_PAPER", True),
            feed=choice(env, "ALPACA_FEED", "iex", FEEDS),
            trading_url=base_url(env, "ALPACA_TRADING_URL", ("http", "https")),
            data_url=base_url(env, "ALPACA_DATA_URL", ("http", "https")),
            stream_url=base_url(env, "ALPACA_STREAM_URL", ("ws", "wss")),
            # unset beside an overridden stream: that same host, never Alpaca's own behind the user's back
            trade_stream_url=(base_url(env, "ALPACA_TRADE_STREAM_URL", ("ws", "wss"))
                              or base_url(env, "ALPACA_STREAM_URL", ("ws", "wss"))),
        )

    @property
    def mode(self) -> str:
        return "PAPER" if self.paper else "LIVE"

    @property
    def stream_endpoint(self) -> Optional[str]:
        """The full stream URL for an override (``<base>/v2/<feed>``), None for Alpaca's own."""
        return f"{self.stream_url}/v2/{self.feed}" if self.stream_url else None


@dataclass(frozen=True)
class DatabasePaths:
    """The two SQLite files (``AUTOTRADER_SYSTEM_DB``, ``AUTOTRADER_STOCKS_DB``); default: beside their code."""

    system_db: Path = REPO_ROOT / "system_databse" / "system.db"
    stocks_db: Path = REPO_ROOT / "database" / "stocks.db"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "DatabasePaths":
        return cls(system_db=path(env, "AUTOTRADER_SYSTEM_DB", cls.system_db),
                   stocks_db=path(env, "AUTOTRADER_STOCKS_DB", cls.stocks_db))


@dataclass(frozen=True)
class LogSettings:
    directory: Path = REPO_ROOT / "logs"
    level: str = "INFO"
    keep_days: int = 14  # old daily files kept per log

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "LogSettings":
        return cls(directory=path(env, "AUTOTRADER_LOG_DIR", cls.directory, folder=True),
                   level=choice(env, "LOG_LEVEL", "INFO", LOG_LEVELS),
                   keep_days=whole_number(env, "AUTOTRADER_LOG_KEEP_DAYS", 14, low=1, what=" of days"))


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 5000
    preview_seconds: float = 30.0  # the add dialog's PREVIEW backtest is stopped after this
    live_trading: bool = False     # keys for real money: the default PIN may not add or stop cards

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ApiSettings":
        try:
            live = not flag(env, "ALPACA_PAPER", True)
        except ConfigError:
            live = True  # the careful reading: the broker part reports the typo where it is used
        return cls(host=_text(env, "API_HOST") or "127.0.0.1", port=port(env, "API_PORT", 5000),
                   preview_seconds=seconds(env, "AUTOTRADER_PREVIEW_SECONDS", 30.0), live_trading=live)

    @property
    def is_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")

    @property
    def dashboard_url(self) -> str:
        """The page's address on this machine (a wildcard binding is reached through loopback)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://[{host}]:{self.port}/" if ":" in host else f"http://{host}:{self.port}/"


@dataclass(frozen=True)
class DaemonSettings:
    """The orchestrator's own settings (``AUTOTRADER_*``)."""

    clock: str = "system"
    algorithms_dir: Optional[Path] = None  # None: the project's algorithms/ folder (the API lists it too)
    algorithm_timeout: float = 10.0        # real seconds one on_data call may take
    fill_timeout: float = 30.0             # real seconds to wait for an order to be final
    max_price_age: int = 5                 # market minutes: a buy on an older bar is refused
    bar_wait: float = 10.0                 # clock seconds after a minute closes to wait for its bars
    requests_per_minute: int = DEFAULT_PER_MINUTE  # every REST request of the process

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "DaemonSettings":
        return cls(
            clock=choice(env, "AUTOTRADER_CLOCK", "system", CLOCKS),
            algorithms_dir=existing_folder(env, "AUTOTRADER_ALGORITHMS_DIR"),
            algorithm_timeout=seconds(env, "AUTOTRADER_ALGORITHM_TIMEOUT", 10.0),
            fill_timeout=seconds(env, "AUTOTRADER_FILL_TIMEOUT", 30.0),
            max_price_age=whole_number(env, "AUTOTRADER_MAX_PRICE_AGE_MINUTES", 5, what=" of minutes"),
            bar_wait=seconds(env, "AUTOTRADER_BAR_WAIT", 10.0),
            requests_per_minute=whole_number(env, "AUTOTRADER_REQUESTS_PER_MINUTE", DEFAULT_PER_MINUTE,
                                             low=1),
        )


@dataclass(frozen=True)
class RetentionSettings:
    keep_days: int = 400                    # trading sessions of minute bars kept per ticker
    batch_rows: int = 5000                  # rows deleted per transaction
    requirement_timeout: float = 10.0       # real seconds one get_data_requirements call may take

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RetentionSettings":
        return cls(keep_days=whole_number(env, "AUTOTRADER_BAR_RETENTION_DAYS", 400, low=1),
                   batch_rows=whole_number(env, "AUTOTRADER_PRUNE_BATCH", 5000, low=1))


@dataclass(frozen=True)
class NotifySettings:
    url: str = field(default="", repr=False)  # may hold a token: never logged
    timeout: float = 5.0
    retries: int = 2
    repeat_seconds: float = 3600.0
    max_per_hour: int = 30

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "NotifySettings":
        url = _text(env, "NOTIFY_URL")
        if url and not url.removeprefix("json+").startswith(("http://", "https://")):
            raise ConfigError("NOTIFY_URL must be an http(s) URL, optionally prefixed with json+")
        return cls(url=url, timeout=seconds(env, "NOTIFY_TIMEOUT_SECONDS", 5.0, at_least=0.1),
                   repeat_seconds=seconds(env, "NOTIFY_REPEAT_SECONDS", 3600.0, at_least=0),
                   max_per_hour=whole_number(env, "NOTIFY_MAX_PER_HOUR", 30, low=1))


@dataclass(frozen=True)
class ControlSettings:
    """Trading controls: the account's daily order limit, and the limits a new card gets unless
    the person adding it says otherwise (None: no such limit)."""

    daily_order_limit: int = 200                  # net broker orders in a trading day before trading pauses itself
    max_drawdown_percent: Optional[float] = None  # a card's loss from its peak value, in %
    daily_loss_limit: Optional[float] = None      # a card's loss in one trading day, in $
    max_trades_per_day: Optional[int] = None      # a card's fills in one trading day
    cooldown_minutes: Optional[int] = None        # no trades this long after a losing sale
    on_trip: str = "pause"                        # 'pause' the card, or 'liquidate' (stop it and sell)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ControlSettings":
        return cls(daily_order_limit=whole_number(env, "AUTOTRADER_DAILY_ORDER_LIMIT", 200, what=" of orders"),
                   max_drawdown_percent=optional_amount(env, "AUTOTRADER_CARD_MAX_DRAWDOWN_PERCENT", below=100),
                   daily_loss_limit=optional_amount(env, "AUTOTRADER_CARD_DAILY_LOSS_LIMIT"),
                   max_trades_per_day=optional_count(env, "AUTOTRADER_CARD_MAX_TRADES_PER_DAY"),
                   cooldown_minutes=optional_count(env, "AUTOTRADER_CARD_COOLDOWN_MINUTES"),
                   on_trip=choice(env, "AUTOTRADER_CARD_ON_TRIP", "pause", ("pause", "liquidate")))

    def card_defaults(self) -> dict:
        """A new card's limits when the request names none (``system_databse.controls`` fields)."""
        return {"max_drawdown_percent": self.max_drawdown_percent, "daily_loss_limit": self.daily_loss_limit,
                "max_trades_per_day": self.max_trades_per_day, "cooldown_minutes": self.cooldown_minutes,
                "on_trip": self.on_trip}


@dataclass(frozen=True)
class ExchangeLaunchSettings:
    """How ``./scripts/start`` and the services run the local paper exchange (it reads its other keys itself)."""

    run: bool = True                  # RUN_PAPER_EXCHANGE
    start: Optional[str] = None       # PAPER_EXCHANGE_START; None: now, or just before the next open
    state_db: Optional[Path] = None   # PAPER_EXCHANGE_STATE_DB; None: paper_exchange.db beside system.db

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ExchangeLaunchSettings":
        return cls(run=flag(env, "RUN_PAPER_EXCHANGE", True), start=utc_time(env, "PAPER_EXCHANGE_START"),
                   state_db=path(env, "PAPER_EXCHANGE_STATE_DB", None))


@dataclass(frozen=True)
class Settings:
    """Everything a process reads from its environment; built once by its entry point and passed down.

    Tests build one from a dict (``Settings.from_env({...})``) or with ``dataclasses.replace``.
    """

    databases: DatabasePaths = DatabasePaths()
    logs: LogSettings = LogSettings()
    api: ApiSettings = ApiSettings()
    daemon: DaemonSettings = DaemonSettings()
    retention: RetentionSettings = RetentionSettings()
    notify: NotifySettings = NotifySettings()
    controls: ControlSettings = ControlSettings()
    exchange: ExchangeLaunchSettings = ExchangeLaunchSettings()
    secrets: tuple[str, ...] = field(default=(), repr=False)  # the keys' values, masked in logs and messages
    broker_settings: Optional[AlpacaSettings] = None
    broker_problem: str = "ALPACA_API_KEY is not set; put it in .env (see .env.example)"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        try:
            broker, problem = AlpacaSettings.from_env(env), ""
        except ConfigError as exc:
            broker, problem = None, str(exc)
        return cls(databases=DatabasePaths.from_env(env), logs=LogSettings.from_env(env),
                   api=ApiSettings.from_env(env), daemon=DaemonSettings.from_env(env),
                   retention=RetentionSettings.from_env(env), notify=NotifySettings.from_env(env),
                   controls=ControlSettings.from_env(env), exchange=ExchangeLaunchSettings.from_env(env),
                   secrets=tuple(s for s in (_text(env, k) for k in SECRET_KEYS) if s),
                   broker_settings=broker, broker_problem=problem)

    @property
    def broker(self) -> AlpacaSettings:
        """The broker part; ConfigError (naming the key) when it is missing or malformed."""
        if self.broker_settings is None:
            raise ConfigError(self.broker_problem)
        return self.broker_settings

    @property
    def exchange_state_db(self) -> Path:
        """The paper exchange's state file: its own setting, else ``paper_exchange.db`` beside system.db."""
        return self.exchange.state_db or self.databases.system_db.parent / "paper_exchange.db"
