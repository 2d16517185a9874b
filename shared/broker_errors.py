"""The broker's failures, shared by the trading wrapper (alpaca-py) and the API's REST reader.

Standard library only, so a process can tell broker failures apart without loading alpaca-py.
"""
from __future__ import annotations

from typing import Optional


class BrokerError(Exception):
    """Base of all broker failures; ``status`` is the HTTP status when the broker answered."""

    def __init__(self, message: str, *, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class BrokerUnavailable(BrokerError):
    """Network error, timeout, 429 or 5xx: nothing is known to have changed; try again later."""


class BrokerAuthError(BrokerError):
    """The broker refused the API key or secret (401/403): a person must fix the settings."""
