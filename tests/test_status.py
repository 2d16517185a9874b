"""./scripts/status: a person at a terminal sees the heartbeat, the stream and every card's P&L."""
from __future__ import annotations

import os
from datetime import datetime, timezone

from database import db_manager
from scripts import status
from shared.config import Settings
from system_databse import system_db_manager as ledger_db

NOW = datetime(2026, 11, 27, 15, 0, 30, tzinfo=timezone.utc)


def test_status_shows_heartbeat_stream_mismatches_and_cards(ledger, market, monkeypatch):
    monkeypatch.setenv("API_PORT", "9")  # nothing answers there
    card = ledger_db.create_algorithm("AAPL", "sma_crossover", 10000, conn=ledger)
    ledger_db.record_buy(card, 50, 100.0, conn=ledger)
    db_manager.upsert_bars(market, [{"ticker": "AAPL", "timestamp": "2026-11-27T14:59:00Z", "open": 104,
                                     "high": 106, "low": 103, "close": 105.0, "volume": 10}])
    ledger_db.write_heartbeat("orchestrator", {
        "last_cycle_at": "2026-11-27T15:00:00Z", "clock": "system", "market_open": True, "errors_last_hour": 2,
        "stream": {"connected": True, "subscriptions": ["AAPL"], "last_message_at": "2026-11-27T15:00:01Z",
                   "reconnects": 1},
        "position_mismatches": ["AAPL: broker 60, cards 50"]}, now="2026-11-27T15:00:05Z", conn=ledger)

    text = "\n".join(status.report(NOW, Settings.from_env(os.environ)))

    assert "dashboard: http://127.0.0.1:9/ DOES NOT ANSWER" in text
    assert "orchestrator: heartbeat 25s ago, last cycle 2026-11-27T15:00:00Z" in text
    assert "errors in the last hour: 2" in text
    assert "market: OPEN" in text
    assert "stream: connected, subscriptions AAPL" in text
    assert "POSITION MISMATCH: AAPL: broker 60, cards 50" in text
    assert "50 sh  value    10,250.00  P&L    +250.00  (last bar 2026-11-27T14:59:00Z)" in text
    assert "total P&L +250.00" in text


def test_status_lists_a_stopped_card_still_selling_its_shares_as_closing(ledger, market):
    card = ledger_db.create_algorithm("AAPL", "sma_crossover", 10000, conn=ledger)
    ledger_db.record_buy(card, 10, 100.0, conn=ledger)
    ledger_db.stop_algorithm(card, conn=ledger)
    flat = ledger_db.create_algorithm("NVDA", "sma_crossover", 10000, conn=ledger)
    ledger_db.stop_algorithm(flat, conn=ledger)
    lines = status.card_lines(ledger, market)
    assert [line for line in lines if line.startswith("  #")] == [
        f"  #{card:<4} " + ledger_db.get_algorithm(card, conn=ledger)["display_name"].ljust(40)
        + "     10 sh  value    10,000.00  P&L      +0.00  (last bar no bar yet)  CLOSING"]


def test_status_without_an_orchestrator_or_cards_says_so(ledger, market):
    text = "\n".join(status.report(NOW, Settings.from_env(os.environ)))
    assert "orchestrator: no heartbeat yet" in text
    assert "cards: none running" in text


def test_status_without_databases_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOTRADER_SYSTEM_DB", str(tmp_path / "missing.db"))
    assert status.main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: system database not found") and err.count("\n") == 1


def test_status_shows_how_big_the_databases_and_logs_are(ledger, market, system_db, stocks_db, tmp_path,
                                                         monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "orchestrator.log").write_bytes(b"x" * 2_500_000)
    monkeypatch.setenv("AUTOTRADER_LOG_DIR", str(logs))

    text = "\n".join(status.report(NOW, Settings.from_env(os.environ)))

    stocks_size = stocks_db.stat().st_size / 1e6
    assert f"  system.db  {system_db.stat().st_size / 1e6:,.1f} MB" in text
    assert f"  stocks.db  {stocks_size:,.1f} MB" in text and stocks_size > 10  # every market minute 2018-2030
    assert "  logs       2.5 MB" in text
    assert "  free       " in text
