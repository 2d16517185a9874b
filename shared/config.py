"""Settings from the process environment, with ``.env`` filling in only what is not already set.

Entry points call ``load_env()`` once; everything else reads a settings object built from a
mapping (``os.environ`` by default), so tests pass a dict instead of patching globals.
A missing or malformed key raises ``ConfigError`` naming the key; secrets never appear in
``repr`` or in messages.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlparse

from dotenv import load_dotenv

REPO_ROOT = Path(__file__).resolve().parent.parent
FEEDS = ("iex", "sip")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the key and never its secret value."""


def load_env(path: Optional[Path] = None) -> None:
    """Fill unset environment variables from ``.env`` (repo root by default); set ones win."""
    load_dotenv(path or REPO_ROOT / ".env", override=False)


def flag(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be True or False, got {raw!r}")


def _base_url(env: Mapping[str, str], key: str, schemes: tuple[str, ...]) -> Optional[str]:
    """An override in Alpaca's base-URL form (scheme://host:port, no path), or None for Alpaca's own."""
    raw = env.get(key, "").strip()
    if not raw:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not parsed.hostname:
        raise ConfigError(f"{key} must look like {schemes[0]}://host:port, got {raw!r}")
    if parsed.path not in ("", "/"):
        raise ConfigError(f"{key} must be a base URL without a path (the project appends /v2/...), got {raw!r}")
    return raw.rstrip("/")


def _required(env: Mapping[str, str], key: str) -> str:
    value = env.get(key, "").strip()
    if not value or value.startswith("your_"):
        raise ConfigError(f"{key} is not set; put it in .env (see .env.example)")
    return value


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
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "AlpacaSettings":
        env = os.environ if env is None else env
        feed = env.get("ALPACA_FEED", "iex").strip().lower() or "iex"
        if feed not in FEEDS:
            raise ConfigError(f"ALPACA_FEED must be 'iex' or 'sip', got {feed!r}")
        return cls(
            api_key=_required(env, "ALPACA_API_KEY"),
            secret=_required(env, "ALPACA_SECRET"),
            paper=flag(env, "ALPACA_PAPER", True),
            feed=feed,
            trading_url=_base_url(env, "ALPACA_TRADING_URL", ("http", "https")),
            data_url=_base_url(env, "ALPACA_DATA_URL", ("http", "https")),
            stream_url=_base_url(env, "ALPACA_STREAM_URL", ("ws", "wss")),
            # unset beside an overridden stream: that same host, never Alpaca's own behind the user's back
            trade_stream_url=(_base_url(env, "ALPACA_TRADE_STREAM_URL", ("ws", "wss"))
                              or _base_url(env, "ALPACA_STREAM_URL", ("ws", "wss"))),
        )

    @property
    def mode(self) -> str:
        return "PAPER" if self.paper else "LIVE"

    @property
    def stream_endpoint(self) -> Optional[str]:
        """The full stream URL for an override (``<base>/v2/<feed>``), None for Alpaca's own."""
        return f"{self.stream_url}/v2/{self.feed}" if self.stream_url else None


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 5000

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "ApiSettings":
        env = os.environ if env is None else env
        raw_port = env.get("API_PORT", "5000").strip() or "5000"
        if not (raw_port.isascii() and raw_port.isdigit()) or not 0 < int(raw_port) < 65536:
            raise ConfigError(f"API_PORT must be a port number, got {raw_port!r}")
        return cls(host=env.get("API_HOST", "127.0.0.1").strip() or "127.0.0.1", port=int(raw_port))

    @property
    def is_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")


def log_dir(env: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("AUTOTRADER_LOG_DIR", "").strip() or REPO_ROOT / "logs")


def log_level(env: Optional[Mapping[str, str]] = None) -> str:
    env = os.environ if env is None else env
    level = (env.get("LOG_LEVEL", "INFO").strip() or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}")
    return level
