"""Splits and cash dividends of some tickers, from Alpaca's corporate-actions API (alpaca-py).

Returns plain dicts the ledger and the bar adjustment understand: ``id``, ``symbol``, ``kind``
(forward_split, reverse_split, cash_dividend), ``ex_date`` (New York date), ``effective_at`` (UTC
open of that session), ``new_rate``/``old_rate`` or ``rate``. Other kinds (mergers, spin-offs...)
are not asked for.
"""
from __future__ import annotations

import logging
from datetime import date
from typing import Any, Dict, Iterable, List

from alpaca.common.exceptions import APIError
from alpaca.data.enums import CorporateActionsType
from alpaca.data.historical.corporate_actions import CorporateActionsClient
from alpaca.data.requests import CorporateActionsRequest
from pydantic import ValidationError
from requests.exceptions import RequestException

from database import market_calendar
from database.historical_pull import REQUEST_TIMEOUT, DataUnavailable, PullError
from shared.broker_sdk import configure_rest_client
from shared.config import AlpacaSettings

logger = logging.getLogger(__name__)

KINDS = {"forward_splits": "forward_split", "reverse_splits": "reverse_split", "cash_dividends": "cash_dividend"}
TYPES = [CorporateActionsType.FORWARD_SPLIT, CorporateActionsType.REVERSE_SPLIT, CorporateActionsType.CASH_DIVIDEND]


def actions_client(settings: AlpacaSettings) -> CorporateActionsClient:
    """The SDK's corporate-actions client at ``ALPACA_DATA_URL`` (or Alpaca's own), with timeouts."""
    client = CorporateActionsClient(settings.api_key, settings.secret, url_override=settings.data_url)
    return configure_rest_client(client, timeout=REQUEST_TIMEOUT, sdk_retries=3)


def fetch_corporate_actions(client: CorporateActionsClient, symbols: Iterable[str], start: date,
                            end: date) -> List[Dict[str, Any]]:
    """Splits and cash dividends of ``symbols`` with an ex-date in [start, end], oldest first."""
    wanted = sorted(set(symbols))
    if not wanted:
        return []
    request = CorporateActionsRequest(symbols=wanted, types=TYPES, start=start, end=end)
    try:
        found = client.get_corporate_actions(request).data
    except APIError as exc:
        failure = DataUnavailable if (exc.status_code or 500) >= 500 or exc.status_code == 429 else PullError
        raise failure(f"corporate actions: data API answered {exc.status_code}: {str(exc)[:200]}") from None
    except RequestException as exc:
        raise DataUnavailable(f"corporate actions: data API unreachable ({type(exc).__name__})") from None
    except ValidationError as exc:
        raise PullError(f"corporate actions do not parse: {str(exc)[:200]}") from None
    actions = [_plain(kind, item) for group, kind in KINDS.items() for item in found.get(group, [])]
    return sorted((a for a in actions if a["symbol"] in wanted), key=lambda a: (a["ex_date"], a["symbol"], a["id"]))


def _plain(kind: str, item: Any) -> Dict[str, Any]:
    ex_date = item.ex_date.strftime("%Y-%m-%d")
    action = {"id": str(item.id), "symbol": item.symbol, "kind": kind, "ex_date": ex_date,
              "effective_at": session_open(ex_date)}
    if kind == "cash_dividend":
        return {**action, "rate": float(item.rate)}
    return {**action, "new_rate": float(item.new_rate), "old_rate": float(item.old_rate)}


def session_open(day: str) -> str:
    """UTC open of the session on ``day``, or of the next session if ``day`` is not one."""
    bounds = market_calendar.session_bounds(day)
    if bounds is not None:
        return market_calendar.to_utc_string(bounds[0])
    return market_calendar.to_utc_string(market_calendar.next_open(f"{day}T12:00:00Z"))
