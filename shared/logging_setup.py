"""Log handlers for an entry point: daily-rotated files under ``logs/`` plus the console.

Each process logs to ``<component>.log`` (``orchestrator.log``, ``api.log``); stream events
(the realtime streamer and the subscription manager) go to their own ``stream.log``. Files
rotate at UTC midnight and only ``AUTOTRADER_LOG_KEEP_DAYS`` (default 14) old files are kept,
so a Pi's SD card never fills. Values of ``ALPACA_API_KEY`` / ``ALPACA_SECRET`` are masked in
every record as a last line of defence. Everything comes from the process's ``Settings``.
"""
from __future__ import annotations

import logging
import os
import time
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path
from typing import Iterable

from shared.config import Settings

STREAM_LOGGERS = ("database.realtime_pull", "orchestra.websocket_manager", "alpaca.data.live")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
QUIET_LOGGERS = ("urllib3", "websockets", "asyncio")


class _ByLoggerName(logging.Filter):
    """Pass records of the named loggers (and their children), or everything else when inverted."""

    def __init__(self, names: Iterable[str], *, invert: bool = False):
        super().__init__()
        self.names = tuple(names)
        self.invert = invert

    def filter(self, record: logging.LogRecord) -> bool:
        matched = any(record.name == n or record.name.startswith(n + ".") for n in self.names)
        return matched != self.invert


class _MaskSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        masked = message
        for secret in self.secrets:
            masked = masked.replace(secret, "***")
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _formatter() -> logging.Formatter:
    formatter = logging.Formatter(FORMAT, DATE_FORMAT)
    formatter.converter = time.gmtime
    return formatter


class _OwnerOnlyFileHandler(TimedRotatingFileHandler):
    """Log files are created 0600: they name cards, amounts and errors, nothing for other users."""

    def _open(self):
        descriptor = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return open(descriptor, self.mode, encoding=self.encoding, errors=self.errors)


def _file_handler(path: Path, backups: int, name_filter: logging.Filter) -> TimedRotatingFileHandler:
    handler = _OwnerOnlyFileHandler(path, when="midnight", utc=True, backupCount=backups,
                                    encoding="utf-8", delay=True)
    handler.addFilter(name_filter)
    return handler


def setup_logging(component: str, settings: Settings, *, console: bool = True) -> Path:
    """Configure the root logger for one process; returns the log directory. Safe to call twice."""
    directory = settings.logs.directory
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new logs folder is owner-only
    backups = settings.logs.keep_days
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_autotrader", False)]:
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [
        _file_handler(directory / f"{component}.log", backups, _ByLoggerName(STREAM_LOGGERS, invert=True)),
        _file_handler(directory / "stream.log", backups, _ByLoggerName(STREAM_LOGGERS)),
    ]
    if console:
        handlers.append(logging.StreamHandler())
    mask = _MaskSecrets(settings.secrets)
    for handler in handlers:
        handler._autotrader = True  # type: ignore[attr-defined]
        handler.setFormatter(_formatter())
        handler.addFilter(mask)
        root.addHandler(handler)
    root.setLevel(settings.logs.level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return directory
