"""PAUSE from the shell (``python -m scripts.pause``) and in ``./scripts/status``; the gate's arithmetic.

The shell's pause is the wall's (system.db): it survives restarts, and ``./scripts/status``
shows it first, unmissable, with each card whose limit tripped. The numbers a limit is checked
against (the marks: peak and the day's start) follow the card from session to session and start
again after RESUME CARD.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from orchestra.controls import find_breach, next_mark
from scripts import pause, status
from shared.config import Settings
from system_databse import system_db_manager as manager
from tests.fixtures.orchestrator import REPO_ROOT

NOW = datetime(2026, 11, 27, 15, 0, 30, tzinfo=timezone.utc)


def shell(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.pause", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "AUTOTRADER_CLOCK": "system", **(env or {})})


def test_pause_on_status_and_off_from_the_shell(system_db):
    on = shell("on", "--reason", "checking a strange fill")
    assert on.returncode == 0, on.stderr
    assert on.stdout.startswith("PAUSED by the owner since 20") and ": checking a strange fill; no card sends" in on.stdout
    assert manager.get_pause()["reason"] == "checking a strange fill"
    assert shell("on").stdout.startswith("already paused; nothing changed\nPAUSED by the owner")
    assert shell("status").stdout == on.stdout
    off = shell("off")
    assert off.returncode == 0 and off.stdout.startswith("trading: not paused (resumed 20")
    assert shell("off").stdout.startswith("not paused; nothing changed\ntrading: not paused")
    assert manager.get_pause()["paused"] is False


@pytest.mark.parametrize("args, message", [
    (["on", "--db", "/nonexistent/system.db"], "error: "),
    (["status", "--db", "/nonexistent/system.db"], "error: "),
])
def test_a_missing_ledger_is_one_line_and_exit_1(args, message):
    result = shell(*args)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_with_the_broker_clock_unreachable_a_pause_still_goes_in(system_db, monkeypatch):
    for key, value in {"AUTOTRADER_CLOCK": "broker", "ALPACA_API_KEY": "k", "ALPACA_SECRET": "s",
                       "ALPACA_TRADING_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(key, value)
    out, err = io.StringIO(), io.StringIO()
    assert pause.main(["on"], out=out, err=err) == 0
    assert err.getvalue().startswith("note: the broker's clock cannot be read")
    assert manager.get_pause()["paused"] is True and out.getvalue().startswith("PAUSED by the owner since ")


def test_status_shows_paused_first_and_a_tripped_card(ledger, market, monkeypatch):
    monkeypatch.setenv("API_PORT", "9")
    card = manager.create_algorithm("AAPL", "sma_crossover", 10000, conn=ledger)
    manager.set_card_limits(card, {"max_trades_per_day": 3}, at="2026-11-27T14:31:00Z", conn=ledger)
    manager.trip_card(card, "max_trades", "max 3 trades a day reached: 3 today", at="2026-11-27T14:45:00Z",
                      conn=ledger)
    manager.pause_trading("daily order limit", "200 orders sent to the broker since 2026-11-27T14:30:00Z",
                          at="2026-11-27T14:50:00Z", conn=ledger)
    lines = status.report(NOW, Settings.from_env(os.environ))
    assert lines[:3] == ["!" * 72, "TRADING PAUSED by the daily order limit since 2026-11-27T14:50:00Z: 200 orders "
                         "sent to the broker since 2026-11-27T14:30:00Z; no card sends orders (python -m scripts.pause "
                         "off to resume)", "!" * 72]
    assert any(line.endswith("LIMIT TRIPPED: max trades at 2026-11-27T14:45:00Z (paused until RESUME CARD)")
               for line in lines)
    manager.resume_trading(at="2026-11-27T15:00:00Z", conn=ledger)
    assert "trading: not paused (resumed 2026-11-27T15:00:00Z)" in status.report(NOW, Settings.from_env(os.environ))


# --------------------------------------------------------------------------- the numbers limits are checked against

LIMITS = {"max_drawdown_percent": 10.0, "daily_loss_limit": 50.0, "max_trades_per_day": None, "cooldown_minutes": 5}


def test_the_peak_holds_across_sessions_and_the_day_starts_from_the_last_check_before_it():
    monday, tuesday = "2026-11-23T14:30:00Z", "2026-11-24T14:30:00Z"
    mark = next_mark(None, 0.0, monday, "2026-11-23T14:31:00Z", None)
    mark = next_mark(mark, 120.0, monday, "2026-11-23T15:00:00Z", None)
    mark = next_mark(mark, 80.0, monday, "2026-11-23T20:59:00Z", None)
    assert (mark["peak_pnl"], mark["day_start_pnl"], mark["last_pnl"]) == (120.0, 0.0, 80.0)
    mark = next_mark(mark, 20.0, tuesday, "2026-11-24T14:31:00Z", None)   # an overnight gap counts as Tuesday's
    assert (mark["session"], mark["peak_pnl"], mark["day_start_pnl"]) == (tuesday, 120.0, 80.0)
    breach = find_breach(LIMITS, mark, 1000.0, 0, None, "2026-11-24T14:31:00Z")  # 100 below a $1,120 peak: 8.9%
    assert (breach.limit, breach.reason, breach.until) == (
        "daily_loss", "daily loss limit $50.00 reached: $60.00 lost today", None)


def test_drawdown_is_measured_from_the_peak_value_and_a_resume_starts_over():
    mark = {"session": "s", "day_start_pnl": 0.0, "peak_pnl": 100.0, "last_pnl": 0.0, "reset_at": None}
    breach = find_breach(LIMITS, mark, 900.0, 0, None, "t")           # peak value $1,000, value $900: 10%
    assert (breach.limit, breach.reason) == (
        "max_drawdown", "max loss from peak 10% reached: value $900.00 is 10.0% below its peak $1,000.00")
    assert find_breach({**LIMITS, "max_drawdown_percent": 10.5}, mark, 900.0, 0, None, "t") is None
    resumed = next_mark(mark, -5.0, "s", "2026-11-23T16:00:00Z", "2026-11-23T15:59:00Z")
    assert (resumed["peak_pnl"], resumed["day_start_pnl"], resumed["reset_at"]) == (-5.0, -5.0, "2026-11-23T15:59:00Z")
    assert find_breach(LIMITS, resumed, 900.0, 0, None, "t") is None


def test_a_losing_sale_cools_down_until_five_minutes_after_it():
    sale = {"id": 7, "timestamp": "2026-11-23T15:02:03Z", "shares": 1, "price": 99.5, "pnl": -0.5}
    breach = find_breach(LIMITS, None, 1000.0, 0, sale, "2026-11-23T15:03:00Z")
    assert (breach.limit, breach.until) == ("cooldown", "2026-11-23T15:07:03Z")
    assert breach.reason == "5 min cooldown after a losing sale: sold 1 at $99.50 at 2026-11-23T15:02:03Z (-0.50)"
    assert find_breach(LIMITS, None, 1000.0, 0, sale, "2026-11-23T15:07:03Z") is None
