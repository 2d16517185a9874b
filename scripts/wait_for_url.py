"""Wait until a URL answers HTTP 200 (used before starting the kiosk browser).

Usage: python -m scripts.wait_for_url URL [--timeout SECONDS]
"""
from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request


def wait_for_url(url: str, timeout: float, interval: float = 1.0) -> bool:
    """True once ``url`` answers 200 within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        print(f"error: {args.url!r} is not an http(s) URL", file=sys.stderr)
        return 2
    if wait_for_url(args.url, args.timeout):
        return 0
    print(f"error: {args.url} did not answer within {args.timeout:g}s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
