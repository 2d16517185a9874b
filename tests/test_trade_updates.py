"""The daemon's trade updates connection outlives whatever ends one of its sessions: it
reconnects, and the fills it reports keep coming."""
from __future__ import annotations

import pytest

from orchestra.trade_updates import TradeUpdates, stream_url
from shared.config import AlpacaSettings
from tests.fixtures.exchange import market_order, trading_client, wait_until


@pytest.fixture
def exchange(paper_exchange_factory):
    return paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=1)


class FailingFirstSession(TradeUpdates):
    """Its first session ends in an error no network failure raises: websockets' close can raise
    RuntimeError under CPython 3.11 when its keepalive thread joins the reader thread at the same time."""

    failed = False

    def _session(self) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("release unlocked lock")
        super()._session()


def test_the_trade_stream_reconnects_after_a_session_fails_with_any_error(exchange):
    settings = AlpacaSettings.from_env(exchange.env)
    updates = FailingFirstSession(stream_url(settings), settings.api_key, settings.secret, backoff_max=0.5)
    updates.start()
    try:
        assert updates.wait_connected(30), "the stream never connected after its failed first session"
        trading_client(exchange).submit_order(market_order("AAPL", 3, "buy", "after-the-failure"))
        wait_until(lambda: getattr(updates.latest("after-the-failure"), "status", None) == "filled", 30,
                   message="the fill reported by the stream")
        assert updates.latest("after-the-failure").filled_shares == 3 and updates.reconnects == 0
    finally:
        updates.stop()
