"""The API answers the wall's poll without loading what it does not use there: no alpaca-py (its
request models pull in pandas), no pandas, no exchange-calendars. About half its memory on a Pi."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from database import db_manager
from system_databse import system_db_manager

REPO_ROOT = Path(__file__).resolve().parents[1]

WALL_POLL = """
import json, sys
import api_server
client = api_server.create_app({"TESTING": True}).test_client()
paths = ["/api/algorithms", "/api/account/cash", "/api/health", "/api/pnl-summary",
         "/api/algorithms/%d/history?window=all&points=400"]
answers = {path: client.get(path) for path in paths}
print(json.dumps({"codes": [a.status_code for a in answers.values()],
                  "cash": answers["/api/account/cash"].get_json(),
                  "market_open": answers["/api/algorithms"].get_json()["market_open"],
                  "loaded": sorted(m for m in ("pandas", "exchange_calendars", "alpaca", "pydantic") if m in sys.modules)}))
"""


def run_api_process(code: str, env: dict) -> dict:
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_wall_poll_is_answered_without_alpaca_py_pandas_or_the_calendar_library(paper_exchange, system_db,
                                                                                       stocks_db, ledger, market):
    card = system_db_manager.create_algorithm("AAPL", "sma_crossover", 10_000, conn=ledger)
    system_db_manager.record_buy(card, 10, 100.0, timestamp="2026-11-23T14:31:00Z", conn=ledger)
    system_db_manager.write_heartbeat("orchestrator", {"last_cycle_at": "2026-11-23T14:31:00Z"}, conn=ledger)
    db_manager.upsert_bars(market, [{"ticker": "AAPL", "timestamp": "2026-11-23T14:31:00Z", "open": 100, "high": 101,
                                     "low": 99, "close": 100.5, "volume": 10}])
    env = {**os.environ, **paper_exchange.env, "AUTOTRADER_SYSTEM_DB": str(system_db),
           "AUTOTRADER_STOCKS_DB": str(stocks_db), "PYTHONPATH": str(REPO_ROOT)}

    answer = run_api_process(WALL_POLL % card, env)

    assert answer["codes"] == [200, 200, 200, 200, 200]
    assert answer["cash"]["alpaca_cash"] == 100_000 and answer["cash"]["reserved"] == 9_000
    assert answer["market_open"] is True  # the broker's own clock (its fast simulated morning)
    assert answer["loaded"] == []


def test_with_the_broker_down_the_calendar_answers_without_pandas_either(system_db, stocks_db, ledger):
    system_db_manager.create_algorithm("AAPL", "sma_crossover", 10_000, conn=ledger)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_")}
    env.update({"ALPACA_API_KEY": "k", "ALPACA_SECRET": "s", "ALPACA_TRADING_URL": "http://127.0.0.1:9",
                "AUTOTRADER_SYSTEM_DB": str(system_db), "AUTOTRADER_STOCKS_DB": str(stocks_db)})
    code = WALL_POLL.replace('"cash": answers["/api/account/cash"].get_json(),', '').replace(
        '"market_open": answers["/api/algorithms"].get_json()["market_open"],',
        '"market": answers["/api/algorithms"].get_json()["market"],')

    answer = run_api_process(code % 1, env)

    assert answer["codes"] == [200, 503, 200, 200, 200]
    assert answer["market"]["source"] == "calendar" and answer["market"]["next_open"].endswith("Z")
    assert answer["loaded"] == []

