"""Bounds stocks.db: keeps the last N trading days of minute bars per ticker, pruned once a night.

``AUTOTRADER_BAR_RETENTION_DAYS`` (default 400 sessions, about 156,000 bars a ticker) is the
window; a running card whose algorithm asks for more bars than that keeps that many of its
ticker's newest bars, so pruning never takes a bar a requirement still needs. A ticker whose
cards' requirements cannot be read (a broken or hung algorithm file) is not pruned that night.
The daemon calls ``run_if_due`` when it goes to sleep off hours; deletes run in small
transactions (``AUTOTRADER_PRUNE_BATCH`` rows each) so no single commit is large.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

from algorithms import requirements_for_card
from database import db_manager, market_calendar
from shared.config import RetentionSettings

logger = logging.getLogger(__name__)


def window_start(at: datetime, keep_days: int) -> str:
    """The open of the ``keep_days``-th session counting back from ``at`` (one in progress counts)."""
    return market_calendar.to_utc_string(market_calendar.session_open_back(at, keep_days))


class BarPruner:
    """Prunes every ticker's old bars at most once per closed-market stretch."""

    def __init__(self, market_conn: sqlite3.Connection, running_cards: Callable[[], Iterable[Mapping[str, Any]]], *,
                 settings: RetentionSettings = RetentionSettings(), directory: Optional[Path] = None,
                 keep_going: Callable[[], bool] = lambda: True):
        self.market_conn = market_conn
        self.running_cards = running_cards
        self.settings = settings
        self.directory = directory
        self.keep_going = keep_going
        self._done_before: Optional[str] = None  # the next open of the last night pruned

    def run_if_due(self, now: datetime) -> Optional[Dict[str, int]]:
        """Prune if the market is closed at ``now`` and this night has not been pruned yet."""
        if market_calendar.is_open(now):
            return None
        night = market_calendar.to_utc_string(market_calendar.next_open(now))
        if night == self._done_before:
            return None
        self._done_before = night
        try:
            return self.run(now)
        except sqlite3.Error as exc:  # a locked or full database: try again the next night
            logger.warning("pruning old bars failed: %s", exc)
            return None

    def run(self, now: datetime) -> Dict[str, int]:
        """Delete, per ticker, bars older than both the window and the cards' newest needed bars."""
        window = window_start(now, self.settings.keep_days)
        needs = self.requirements(now)
        deleted: Dict[str, int] = {}
        for ticker in db_manager.list_tickers(self.market_conn):
            cutoff = self.cutoff(ticker, window, needs)
            if cutoff is None or not self.keep_going():
                continue
            count = db_manager.prune_bars(self.market_conn, ticker, cutoff, batch_rows=self.settings.batch_rows,
                                          keep_going=self.keep_going)
            if count:
                deleted[ticker] = count
        if deleted:
            logger.info("pruned %d bar(s) older than %s (%d trading days kept): %s", sum(deleted.values()), window,
                        self.settings.keep_days, ", ".join(f"{t} {n}" for t, n in sorted(deleted.items())))
        return deleted

    def cutoff(self, ticker: str, window: str, needs: Mapping[str, Optional[int]]) -> Optional[str]:
        """Bars of ``ticker`` before this go; None: keep everything."""
        if ticker in needs and needs[ticker] is None:
            logger.warning("%s: a card's data requirement is unknown; its bars are not pruned tonight", ticker)
            return None
        needed = needs.get(ticker) or 0
        if needed <= 0:
            return window
        oldest_needed = db_manager.nth_newest_timestamp(self.market_conn, ticker, needed)
        return None if oldest_needed is None else min(window, oldest_needed)

    def requirements(self, now: datetime) -> Dict[str, Optional[int]]:
        """Per ticker, the most bars any running card asks for at the next open (None: unknown)."""
        at = market_calendar.to_utc_string(market_calendar.next_open(now))
        needs: Dict[str, Optional[int]] = {}
        for card in self.running_cards():
            ticker = str(card["ticker"]).upper()
            bars = self._requirement(card, at)
            if bars is None or needs.get(ticker, 0) is None:
                needs[ticker] = None
            else:
                needs[ticker] = max(needs.get(ticker, 0), bars)
        return needs

    def _requirement(self, card: Mapping[str, Any], at: str) -> Optional[int]:
        """The card's ``bars`` requirement, run in a thread with a time budget (user code)."""
        outcome: Dict[str, Any] = {}

        def ask() -> None:
            try:
                outcome["bars"] = int(requirements_for_card(card, at, directory=self.directory)["bars"])
            except Exception as exc:  # noqa: BLE001 - user code: any failure means "unknown"
                outcome["error"] = exc

        worker = threading.Thread(target=ask, name=f"card-{card.get('id')}-requirements", daemon=True)
        worker.start()
        worker.join(self.settings.requirement_timeout)
        if "bars" not in outcome:
            logger.warning("card %s: data requirement unavailable (%s)", card.get("id"),
                           outcome.get("error", "timed out"))
            return None
        return outcome["bars"]
