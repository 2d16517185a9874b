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


def test_end_to_end_the_feeds_refusal_reaches_the_api_and_the_wall(paper_exchange_factory, tmp_path, stocks_db_template,
                                                                     api_factory, system_db, ledger):
    """Exchange (limit 2 symbols) -> the orchestrator's stream gets 405 for the third ticker -> its
    heartbeat says so -> the API refuses a card on a fourth ticker and /api/health names the refused one."""
    import shutil

    from tests.fixtures.api import get_token
    from tests.fixtures.exchange import wait_until
    from tests.fixtures.orchestrator import orchestrator_env, start_orchestrator, write_test_algorithms

    exchange = paper_exchange_factory(start="2026-11-23T15:00:00Z", speed=60, stream_symbol_limit=2)
    stocks_db = tmp_path / "stocks.db"
    shutil.copyfile(stocks_db_template, stocks_db)
    for ticker in ("AAPL", "MSFT", "NVDA"):
        system_db_manager.create_algorithm(ticker, "buy_and_hold", 1000, conn=ledger)
    env = orchestrator_env(exchange, system_db=system_db, stocks_db=stocks_db, log_dir=tmp_path / "logs",
                           algorithms_dir=write_test_algorithms(tmp_path / "algorithms", ["buy_and_hold"]))
    daemon = start_orchestrator(env, tmp_path / "daemon")
    try:
        beat = wait_until(lambda: (system_db_manager.get_heartbeat("orchestrator", conn=ledger) or {})
                          .get("payload", {}).get("stream", {}).get("refused"), timeout=120,
                          message="the heartbeat to report the refused ticker")
        client = api_factory(exchange).test_client()
        answer = client.post("/api/algorithms", json={**NEW, "ticker": "TSLA"},
                             headers=auth(get_token(client, "add")))
        health = client.get("/api/health").get_json()
    finally:
        daemon.kill()
    assert beat == ["NVDA"]  # the first two fit (one at a time after the batch was refused)
    assert answer.status_code == 409 and "refused NVDA (symbol limit exceeded)" in answer.get_json()["error"]
    assert health["stream"]["refused"] == ["NVDA"] and health["stream"]["symbol_limit"] == 2
