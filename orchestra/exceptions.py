"""The daemon's three kinds of failure; the loop decides what to do by type, never by message.

- ``TemporaryError``: the world is briefly unavailable (broker 5xx, network, a locked database);
  the cycle logs it and the next cycle tries again.
- ``OperationalError``: a person must act (missing database, bad configuration); the daemon
  logs it loudly and exits non-zero so systemd shows the failure.
- ``AlgorithmError``: one card's algorithm failed (import error, exception, time budget);
  only that card is skipped for this cycle.
"""
from __future__ import annotations

from algorithms import AlgorithmError  # the framework's: carries card_id and algorithm_type

__all__ = ["OrchestratorError", "TemporaryError", "OperationalError", "AlgorithmError", "AlgorithmTimeout",
           "AlgorithmBusy"]


class OrchestratorError(Exception):
    """Base of the daemon's own errors."""


class TemporaryError(OrchestratorError):
    """Retry on the next cycle."""


class OperationalError(OrchestratorError):
    """Needs a person: configuration, files or credentials are wrong."""


class AlgorithmTimeout(AlgorithmError):
    """``on_data`` did not return within the time budget (its thread is abandoned, not joined)."""


class AlgorithmBusy(AlgorithmError):
    """The card's previous call is still running; the card waits for it to finish."""
