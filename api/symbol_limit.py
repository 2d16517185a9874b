"""The market-data feed's symbol limit (Alpaca's free IEX feed: 30 symbols per connection).

When the feed refuses a subscription with ``405 symbol limit exceeded`` the orchestrator's stream
records which tickers it refused and how many symbols the feed held (heartbeat ``stream``). A
card on a ticker beyond that limit would never get a price, so the API refuses to create it and
says why; a card on a ticker that is already streamed is always fine.
"""
from __future__ import annotations

import sqlite3
from typing import Any, Optional

from api.errors import ApiError
from system_databse import system_db_manager


def feed_limit(conn: sqlite3.Connection) -> tuple[Optional[int], list[str]]:
    """(symbols the feed held when it refused more, or None; tickers it refused) from the heartbeat."""
    beat = system_db_manager.get_heartbeat("orchestrator", conn=conn)
    payload: Any = beat["payload"] if beat else {}
    stream = payload.get("stream") if isinstance(payload, dict) else None
    if not isinstance(stream, dict):
        return None, []
    limit = stream.get("symbol_limit")
    return (limit if isinstance(limit, int) else None), sorted(str(t) for t in stream.get("refused") or [])


def check_room_for(ticker: str, conn: sqlite3.Connection) -> None:
    """Raise 409 when a card on ``ticker`` would need a symbol beyond the feed's limit."""
    limit, refused = feed_limit(conn)
    if limit is None:
        return
    streamed = {a["ticker"] for a in system_db_manager.get_all_algorithms("running", conn=conn)} - set(refused)
    if ticker in streamed or (ticker not in refused and len(streamed) < limit):
        return
    raise ApiError(409, f"the market-data feed streams at most {limit} symbols and refused "
                        f"{', '.join(refused) or 'more'} (symbol limit exceeded): a card on {ticker} would get no "
                        f"prices. Stop the cards of a ticker you no longer need, or use a ticker that already "
                        f"has a card", field="ticker", symbol_limit=limit, refused=refused)
