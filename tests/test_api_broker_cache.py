"""The API server's broker answers are cached, so the wall's polling costs the account's request
budget (shared with the orchestrator) almost nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from api.broker import BrokerGateway


class CountingWrapper:
    def __init__(self):
        self.asset_lookups = 0

    def validate_ticker(self, symbol):
        self.asset_lookups += 1
        return symbol.strip().upper() == "AAPL"


def test_a_symbol_is_looked_up_at_the_broker_once_an_hour():
    wrapper, now = CountingWrapper(), [datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)]
    gateway = BrokerGateway(lambda: wrapper, lambda: now[0], cash_ttl_seconds=60)
    assert [gateway.validate_ticker(s) for s in ("AAPL", "aapl", "NOPE", "NOPE")] == [True, True, False, False]
    assert wrapper.asset_lookups == 2
    now[0] += timedelta(minutes=61)
    assert gateway.validate_ticker("AAPL") and wrapper.asset_lookups == 3
