"""Plumbing around alpaca-py's REST clients that the SDK does not expose as options.

alpaca-py 0.44 sends every request with no timeout (a stalled broker would hang the caller
forever) and silently re-sends a request that answered 429 or 504, POSTs included: a retried
order submission could place the order twice. ``configure_rest_client`` fixes both on one
client. It touches two documented-but-private attributes of ``RESTClient`` (``_session``,
``_retry``), pinned by ``alpaca-py==0.44.0`` and covered by the broker tests.
"""
from __future__ import annotations

from typing import Any, Optional

from requests.adapters import HTTPAdapter

from shared.request_budget import RequestBudget


class _TimeoutAdapter(HTTPAdapter):
    """An adapter that gives every request a timeout unless the caller chose one, and takes a
    slot of the process's request budget (if any) before sending."""

    def __init__(self, timeout: float, budget: Optional[RequestBudget] = None, **kwargs: Any) -> None:
        self._timeout = timeout
        self._budget = budget
        super().__init__(**kwargs)

    def send(self, request, **kwargs):  # noqa: D102 - same contract as HTTPAdapter.send
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        if self._budget is not None:
            self._budget.acquire()
        response = super().send(request, **kwargs)
        if self._budget is not None:
            self._budget.observe(response.status_code, response.headers)
        return response


def configure_rest_client(client: Any, *, timeout: float, sdk_retries: int,
                          budget: Optional[RequestBudget] = None) -> Any:
    """Bound every request of ``client`` by ``timeout`` seconds; let the SDK re-send at most
    ``sdk_retries`` times on 429/504 (0 = never, which is what order submission needs); count
    every request against ``budget``."""
    adapter = _TimeoutAdapter(timeout, budget)
    client._session.mount("http://", adapter)
    client._session.mount("https://", adapter)
    client._retry = max(0, int(sdk_retries))
    return client
