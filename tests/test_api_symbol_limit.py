"""The feed's symbol limit: once the stream reports that the feed refused a subscription (405
symbol limit exceeded), a card on a new ticker is refused with a clear message, while a card on a
ticker that is already streamed is still created."""
from __future__ import annotations

from system_databse import system_db_manager
from tests.fixtures.api import auth, table_rows

NEW = {"algorithm_type": "sma_crossover", "initial_capital": 1000}


def stream_reports(ledger, *, symbol_limit, refused):
    system_db_manager.write_heartbeat("orchestrator", {
        "stream": {"connected": True, "subscriptions": ["AAPL", "MSFT", *refused], "reconnects": 0,
                   "last_message_at": None, "refused": refused, "symbol_limit": symbol_limit}}, conn=ledger)


def test_a_new_ticker_beyond_the_feeds_symbol_limit_is_refused_with_the_reason(api_client, token, ledger, system_db):
    for ticker in ("AAPL", "MSFT", "NVDA"):
        system_db_manager.create_algorithm(ticker, "sma_crossover", 1000, conn=ledger)
    stream_reports(ledger, symbol_limit=2, refused=["NVDA"])
    before = table_rows(system_db)

    refused = api_client.post("/api/algorithms", json={**NEW, "ticker": "TSLA"}, headers=auth(token))
    same_refused = api_client.post("/api/algorithms", json={**NEW, "ticker": "NVDA"}, headers=auth(token))

    assert refused.status_code == same_refused.status_code == 409
    body = refused.get_json()
    assert body["error"].startswith("the market-data feed streams at most 2 symbols and refused NVDA "
                                    "(symbol limit exceeded): a card on TSLA would get no prices")
    assert (body["field"], body["symbol_limit"], body["refused"]) == ("ticker", 2, ["NVDA"])
    assert table_rows(system_db) == before

    streamed = api_client.post("/api/algorithms", json={**NEW, "ticker": "MSFT"}, headers=auth(token))
    assert streamed.status_code == 201


def test_without_a_refusal_any_ticker_may_get_a_card(api_client, token, ledger):
    system_db_manager.create_algorithm("AAPL", "sma_crossover", 1000, conn=ledger)
    stream_reports(ledger, symbol_limit=None, refused=[])
    assert api_client.post("/api/algorithms", json={**NEW, "ticker": "TSLA"}, headers=auth(token)).status_code == 201
