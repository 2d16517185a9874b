"""What the daemon tells the owner after a cycle (through ``shared.notifier``, when configured).

Fills; a card's error; a ticker frozen because the broker's position disagrees with the cards';
stale data (no new bar of a running ticker for ``STALE_MINUTES`` during market hours); and, after
the session's last minute, a daily summary (the day's account P&L from ``daily_pnl``). Repeats are
held back by the notifier (same key within its repeat window); a cleared state is forgotten so
it is reported again if it comes back. Never raises: notifications are for people, not trading.
"""
from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from database import db_manager, market_calendar
from database.daily_closes import market_inputs
from shared.clock import MINUTE, stamp
from system_databse import daily_pnl, system_db_manager as ledger

logger = logging.getLogger(__name__)

STALE_MINUTES = 10


class Alerts:
    def __init__(self, notifier: Any, ledger_conn: sqlite3.Connection, market_conn: sqlite3.Connection):
        self.notifier = notifier
        self.ledger_conn = ledger_conn
        self.market_conn = market_conn
        self._frozen: set[str] = set()
        self._stale: set[str] = set()

    def after_cycle(self, report: Any, minute: datetime) -> None:
        if not getattr(self.notifier, "enabled", False):
            return
        try:
            self._fills(report)
            self._errors(report)
            self._frozen_tickers(report)
            if report.trading:
                self._stale_tickers(minute)
                self._summary_after_close(minute)
        except (sqlite3.Error, KeyError, TypeError, ValueError) as exc:
            logger.warning("notifications for %s skipped: %s", report.minute, exc)

    def _fills(self, report: Any) -> None:
        for trade in report.trades + report.reconciled:
            if trade.status != "filled":
                continue
            text = (f"card {trade.card_id} {trade.ticker}: {trade.side} {trade.filled_shares} shares at "
                    f"${trade.price:,.2f} (${trade.filled_shares * trade.price:,.2f})")
            key = f"fill:{trade.client_order_id}:{trade.card_id}" + (":cross" if trade.crossed else "")
            self.notifier.notify("fill", f"{trade.side.upper()} {trade.ticker}", text, key=key)

    def _errors(self, report: Any) -> None:
        for card_id, message in report.card_errors.items():
            self.notifier.notify("card_error", f"card {card_id} error", f"card {card_id}: {message}",
                                 key=f"error:{card_id}:{message}")

    def _frozen_tickers(self, report: Any) -> None:
        if report.position_mismatches is None:
            return
        now = {m["ticker"]: m for m in report.position_mismatches}
        for ticker, m in now.items():
            self.notifier.notify("frozen", f"{ticker} frozen", f"{ticker} frozen: the broker holds {m['broker']} shares, "
                                 f"the cards add up to {m['cards']}; not traded until they agree", key=f"frozen:{ticker}")
        for cleared in self._frozen - set(now):
            self.notifier.forget(f"frozen:{cleared}")
        self._frozen = set(now)

    def _stale_tickers(self, minute: datetime) -> None:
        tickers = {c["ticker"] for c in ledger.get_all_algorithms("running", conn=self.ledger_conn)}
        limit = stamp(minute - timedelta(minutes=STALE_MINUTES))
        stale = set()
        for ticker in sorted(tickers):
            last = db_manager.get_last_timestamp(self.market_conn, ticker)
            if last is None or last < limit:
                stale.add(ticker)
                self.notifier.notify("stale", f"{ticker} data stale",
                                     f"no new {ticker} bar since {last or 'ever'} (market open)", key=f"stale:{ticker}")
        for fresh in self._stale - stale:
            self.notifier.forget(f"stale:{fresh}")
        self._stale = stale

    def _summary_after_close(self, minute: datetime) -> None:
        """After the session's last minute: the day's P&L, the total, and the day's fills."""
        if market_calendar.next_close(minute) != market_calendar.parse_utc(minute + MINUTE):
            return
        days = daily_pnl.account_daily_pnl(self.ledger_conn, **market_inputs(self.market_conn), max_days=1)
        day = minute.strftime("%Y-%m-%d")
        today = days[-1] if days and days[-1]["date"] == day else None
        fills = len(ledger.get_transactions_between(start=f"{day}T00:00:00Z", end=f"{day}T23:59:59Z",
                                                    conn=self.ledger_conn))
        if today is None:
            text = f"{day}: no card traded or held shares today"
        else:
            text = f"{day}: P&L {today['pnl']:+,.2f} today, {today['cumulative']:+,.2f} in all; {fills} fill(s)"
        self.notifier.notify("daily_summary", f"AutoTrader {day}", text, key=f"summary:{day}")
