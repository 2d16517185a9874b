"""systemd's notify protocol (READY, WATCHDOG, STOPPING, STATUS) with the standard library only.

With ``Type=notify`` and ``WatchdogSec=`` in the unit, systemd passes ``NOTIFY_SOCKET`` (and
``WATCHDOG_USEC``); outside systemd every call is a cheap no-op that returns False.
"""
from __future__ import annotations

import logging
import os
import socket
from typing import Mapping, Optional

logger = logging.getLogger(__name__)


def _address(env: Mapping[str, str]) -> Optional[str]:
    path = env.get("NOTIFY_SOCKET", "")
    if not path:
        return None
    if path.startswith("@"):  # abstract namespace socket
        return "\0" + path[1:]
    return path


def notify(message: str, env: Optional[Mapping[str, str]] = None) -> bool:
    """Send one notification (e.g. ``READY=1``); True if a systemd socket received it."""
    address = _address(os.environ if env is None else env)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)  # a stalled listener must never stall trading
            sock.connect(address)
            sock.send(message.encode("utf-8"))
        return True
    except BlockingIOError:
        logger.debug("systemd notify %r dropped: the listener is not reading", message)
        return False
    except OSError as exc:
        logger.warning("systemd notify %r failed: %s", message, exc)
        return False


def ready(env: Optional[Mapping[str, str]] = None) -> bool:
    return notify("READY=1", env)


def watchdog(env: Optional[Mapping[str, str]] = None) -> bool:
    return notify("WATCHDOG=1", env)


def stopping(env: Optional[Mapping[str, str]] = None) -> bool:
    return notify("STOPPING=1", env)


def status(text: str, env: Optional[Mapping[str, str]] = None) -> bool:
    return notify(f"STATUS={text}", env)


def watchdog_interval(env: Optional[Mapping[str, str]] = None) -> Optional[float]:
    """Seconds between WATCHDOG pings (half of ``WATCHDOG_USEC``), or None without a watchdog."""
    raw = (os.environ if env is None else env).get("WATCHDOG_USEC", "")
    if not (raw.isascii() and raw.isdigit()) or int(raw) == 0:
        return None
    return int(raw) / 1_000_000 / 2
