"""Print AutoTrader's state at a glance: services, market, orchestrator heartbeat, stream, cards.

Usage: ./scripts/status   (or: python -m scripts.status)
Reads the databases read-only and asks nothing of the broker, so it works when the broker or the
API is down — which is when you need it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from api.cards import listed_cards
from database import coverage, db_manager, market_calendar
from shared.config import ConfigError, Settings, load_env
from shared import private_files
from scripts.launcher import answers_http, private_paths
from scripts.pause import describe as pause_line
from scripts.services import TEMPLATES
from system_databse import system_db_manager


def service_states() -> list[str]:
    """One line per unit: systemd's view when the units are installed for this user."""
    units = [t.name for t in sorted(TEMPLATES.glob("*.service"))]
    if shutil.which("systemctl") is None:
        return ["services: systemctl not available"]
    lines = []
    for unit in units:
        result = subprocess.run(["systemctl", "--user", "is-active", unit], capture_output=True, text=True)
        lines.append(f"  {unit:<34} {result.stdout.strip() or 'unknown'}")
    return ["services:"] + lines


def age_of(stamp: Optional[str], now: datetime) -> str:
    if not stamp:
        return "never"
    seconds = int((now - market_calendar.parse_utc(stamp)).total_seconds())
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"


def heartbeat_lines(heartbeat: Optional[dict[str, Any]], now: datetime) -> list[str]:
    if heartbeat is None:
        return ["orchestrator: no heartbeat yet (not started?)"]
    beat = heartbeat["payload"]
    stream = beat.get("stream", {})
    lines = [
        f"orchestrator: heartbeat {age_of(heartbeat['updated_at'], now)}, last cycle {beat.get('last_cycle_at', '-')},"
        f" clock {beat.get('clock', '-')}, errors in the last hour: {beat.get('errors_last_hour', 0)}",
        f"market: {'OPEN' if beat.get('market_open') else 'closed'} (as of the last heartbeat)",
        f"stream: {'connected' if stream.get('connected') else 'DISCONNECTED'},"
        f" subscriptions {', '.join(stream.get('subscriptions', [])) or 'none'},"
        f" last message {stream.get('last_message_at') or 'never'}, reconnects {stream.get('reconnects', 0)}",
    ]
    for mismatch in beat.get("position_mismatches", []):
        lines.append(f"POSITION MISMATCH: {mismatch}")
    return lines


def card_lines(ledger, market) -> list[str]:
    cards = listed_cards(ledger, market)  # what the wall shows: running cards and those still closing
    if not cards:
        return ["cards: none running"]
    lines, total_pnl = ["cards:"], 0.0
    for view in cards:
        total_pnl += view["pnl"]
        bar_time = view["price_timestamp"] or "no bar yet"
        closing = "  CLOSING" if view["state"] == "closing" else ""
        trip = (view["limits"] or {}).get("trip")
        if trip:
            closing += f"  LIMIT TRIPPED: {trip['limit'].replace('_', ' ')} at {trip['at']}" + (
                f" (cooling down until {trip['until']})" if trip["until"] else " (paused until RESUME CARD)")
        lines.append(f"  #{view['id']:<4} {view['display_name']:<40} {view['current_shares']:>6} sh"
                     f"  value {view['current_value']:>12,.2f}  P&L {view['pnl']:>+10,.2f}  (last bar {bar_time}){closing}")
    lines.append(f"  total P&L {total_pnl:+,.2f}")
    return lines


def minute_lines(market, tickers, now: datetime) -> list[str]:
    """Per ticker, this session's minutes: with a bar, without a trade (checked), missing."""
    figures = coverage.session_coverage(market, tickers, now)
    if not figures:
        return []
    lines = ["bars this session (a thin ticker has minutes without a trade; missing = not checked yet):"]
    for ticker, f in figures.items():
        lines.append(f"  {ticker:<6} {f['bars']:>4} of {f['minutes']} minutes with a bar, {f['no_trade']} without a trade,"
                     f" {f['missing']} missing (checked through {f['checked_through'] or 'never'})")
    return lines


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def file_size_line(name: str, path: Path) -> str:
    """``name``'s size on disk, its write-ahead log shown apart (it is reused, not grown, once checkpointed)."""
    wal = path.with_name(path.name + "-wal")
    extra = f" (+ WAL {megabytes(wal.stat().st_size)})" if wal.exists() else ""
    return f"  {name:<10} {megabytes(path.stat().st_size)}{extra}  {path}"


def disk_lines(system_db: Path, stocks_db: Path, logs: Path) -> list[str]:
    """How big the databases and logs are, and how much room the disk has left."""
    lines = ["disk:", file_size_line("system.db", system_db), file_size_line("stocks.db", stocks_db)]
    if logs.is_dir():
        size = sum(p.stat().st_size for p in logs.iterdir() if p.is_file())
        lines.append(f"  {'logs':<10} {megabytes(size)}  {logs}")
    lines.append(f"  {'free':<10} {megabytes(shutil.disk_usage(stocks_db.parent).free)}")
    return lines


def file_mode_lines(settings: Settings) -> list[str]:
    """Whether the keys, ledger, exchange state and logs are readable by their owner only."""
    problems = private_files.exposed(private_paths(settings))
    if not problems:
        return ["files: .env, system.db, exchange state and logs readable by their owner only"]
    return ["files: READABLE BY OTHER USERS:"] + [f"  {line}" for line in problems]


def report(now: datetime, settings: Settings) -> list[str]:
    lines = service_states()
    url = settings.api.dashboard_url
    lines.append(f"dashboard: {url} {'answers' if answers_http(url + 'api/health') else 'DOES NOT ANSWER'}")
    databases = settings.databases
    ledger = system_db_manager.get_connection(databases.system_db, read_only=True)
    market = db_manager.get_connection(databases.stocks_db, read_only=True)
    try:
        try:
            pause = system_db_manager.get_pause(conn=ledger)
        except (sqlite3.Error, system_db_manager.LedgerError) as exc:  # a ledger not yet upgraded
            pause = None
            lines.append(f"pause: unknown ({exc})")
        if pause and pause["paused"]:
            lines[:0] = ["!" * 72, f"TRADING {pause_line(pause)}", "!" * 72]
        elif pause:
            lines.append(pause_line(pause))
        lines += heartbeat_lines(system_db_manager.get_heartbeat("orchestrator", conn=ledger), now)
        lines += card_lines(ledger, market)
        running = system_db_manager.get_all_algorithms("running", conn=ledger)
        lines += minute_lines(market, {card["ticker"] for card in running}, now)
        lines += disk_lines(databases.system_db, databases.stocks_db, settings.logs.directory)
        lines += file_mode_lines(settings)
    finally:
        ledger.close()
        market.close()
    return lines


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    load_env()
    try:
        print("\n".join(report(datetime.now(timezone.utc), Settings.from_env(os.environ))))
    except (FileNotFoundError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
