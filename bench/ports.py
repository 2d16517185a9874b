"""Loopback ports for the servers the benchmarks and tests start.

A box that is killed and started again (a power cut, a restart) listens on the same ports again,
as a real one does. A port the kernel hands out with ``bind(0)`` comes from its ephemeral range,
the range it also gives any outgoing connection: by the restart, some other connection may hold
the port and the server cannot listen ("Address already in use"). So ports come from below that
range, where the kernel never puts a connection; each pytest-xdist worker takes its own slice of
it, so two workers never pick the same port, and one worker walks its slice in turn.
"""
from __future__ import annotations

import itertools
import os
import random
import socket
from pathlib import Path

LOWEST = 10_000


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _slice() -> range:
    below = max(_ephemeral_start(), LOWEST + 1_000)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    worker = int((os.environ.get("PYTEST_XDIST_WORKER") or "gw0").removeprefix("gw") or 0)
    size = (below - LOWEST) // max(workers, 1)
    return range(LOWEST + worker * size, LOWEST + (worker + 1) * size)


_PORTS = _slice()
_NEXT = itertools.count(random.randrange(len(_PORTS)))


def free_port() -> int:
    """A 127.0.0.1 port nobody listens on now, outside the kernel's ephemeral range."""
    for _ in range(len(_PORTS)):
        port = _PORTS[next(_NEXT) % len(_PORTS)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {_PORTS.start}-{_PORTS.stop - 1}")
