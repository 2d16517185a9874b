"""Splits and dividends of the tickers the cards hold or watch: read once per trading day, applied once.

At start-up and before the first decision of each trading day (and before a ticker's first
back-fill), the keeper asks the data API for the splits and cash dividends of every held or
subscribed ticker up to today. Each one is recorded on the cards that held the ticker at the
ex-date open (``system_db_manager.record_corporate_action``: a split multiplies their shares, a
dividend is cash paid to them), and a split also scales that ticker's stored bars before the
ex-date in one transaction (``db_manager.adjust_bars_for_split``), so algorithms and charts see
no price cliff. Both writes are keyed by the broker's action id: a restart or a re-read changes
nothing. A failed read is logged and retried at the next cycle.
"""
from __future__ import annotations

import logging
import sqlite3
from datetime import date, datetime
from typing import Any, Callable, Dict, Iterable, List, Optional

from database import db_manager
from database.market_calendar import parse_utc, to_utc_string
from system_databse import card_calculations, positions, system_db_manager as ledger

logger = logging.getLogger(__name__)

Fetch = Callable[[List[str], date, date], List[Dict[str, Any]]]
NEW_YORK = "America/New_York"


def new_york_day(moment: datetime | str) -> date:
    return parse_utc(moment).tz_convert(NEW_YORK).date()


def describe(action: Dict[str, Any]) -> str:
    """"4:1 split", "1:10 reverse split", "dividend $0.25/share" (for logs)."""
    if action["kind"] == "cash_dividend":
        return f"dividend ${action['rate']:g}/share"
    return card_calculations.corporate_action_label(action)


class CorporateActionKeeper:
    """Applies corporate actions to the ledger and stocks.db; one per daemon, called from its thread."""

    def __init__(self, ledger_conn: sqlite3.Connection, market_conn: sqlite3.Connection, fetch: Fetch,
                 on_error: Optional[Callable[[str], None]] = None):
        self.ledger_conn = ledger_conn
        self.market_conn = market_conn
        self.fetch = fetch
        self._on_error = on_error or (lambda message: None)
        self._checked: Dict[str, date] = {}  # ticker -> New York day it was last checked

    def watched_tickers(self) -> set[str]:
        """Tickers of running cards, and of any card still holding shares (a stopped one being closed)."""
        cards = ledger.get_all_algorithms(conn=self.ledger_conn)
        held = {p.ticker for p in positions.positions(conn=self.ledger_conn, cards=cards, open_orders=False).values()
                if p.has_shares}
        return held | {c["ticker"] for c in cards if c["status"] == "running"}

    def check(self, now: datetime | str, tickers: Optional[Iterable[str]] = None) -> List[Dict[str, Any]]:
        """Read and apply the actions of ``tickers`` (default: the watched ones) not checked today yet.

        Returns what was applied now: one dict per action with the card effects and bars scaled.
        On a ticker with an order still open the cards wait (checked again next cycle): the order's
        fill must be settled first, or the split would miss its shares and the dividend its holder.
        Its stored bars are scaled at once all the same: the data API's history is already adjusted
        on the ex-date, and a back-fill must never mix adjusted bars with unadjusted ones.
        """
        today = new_york_day(now)
        due = sorted(t for t in (self.watched_tickers() if tickers is None else set(tickers))
                     if self._checked.get(t) != today)
        if not due:
            return []
        waiting = set(due) & ledger.open_order_tickers(conn=self.ledger_conn)
        for ticker in sorted(waiting):
            logger.info("%s: corporate actions wait for the cards until its open order is settled", ticker)
        from database.historical_pull import PullError  # with the data client, not at the daemon's import

        try:
            actions = self.fetch(due, self._lookback_start(due, today), today)
        except (PullError, OSError) as exc:
            message = f"corporate actions of {', '.join(due)} not read: {exc}; trying again next cycle"
            logger.error(message)
            self._on_error(message)
            return []
        applied = [done for done in (self.apply(action, now, on_cards=action["symbol"] not in waiting)
                                     for action in actions) if done]
        self._checked.update({ticker: today for ticker in due if ticker not in waiting})
        return applied

    def apply(self, action: Dict[str, Any], now: datetime | str, *, on_cards: bool = True) -> Optional[Dict[str, Any]]:
        """Record one action on the cards (unless ``on_cards`` is false) and scale the stored bars for a
        split; None if nothing changed.

        Raises ``OrderStillOpen`` (nothing written) while an order on its ticker is open. ``now`` is the
        trading clock's: it stamps the cards' rows and the bars' adjustment."""
        effects = (ledger.record_corporate_action(action, recorded_at=to_utc_string(now), conn=self.ledger_conn)
                   if on_cards else [])
        rows = None
        if action["kind"] != "cash_dividend":
            rows = db_manager.adjust_bars_for_split(
                self.market_conn, action["id"], action["symbol"], action["ex_date"], action["effective_at"],
                action["old_rate"] / action["new_rate"], to_utc_string(now))
        if not effects and rows is None:
            return None
        for effect in effects:
            logger.info("card %d %s: %s on %s: %s", effect["algorithm_id"], action["symbol"], describe(action),
                        action["ex_date"], _effect_text(effect))
        if rows is not None:
            logger.info("%s %s on %s: %d stored bar(s) before the ex-date adjusted", action["symbol"],
                        describe(action), action["ex_date"], rows)
        return {"action": action, "cards": effects, "bars_adjusted": rows}

    def _lookback_start(self, tickers: List[str], today: date) -> date:
        """From the oldest stored bar of these tickers: the earliest split that can still matter."""
        firsts = [db_manager.get_first_timestamp(self.market_conn, t) for t in tickers]
        known = [new_york_day(f) for f in firsts if f]
        return min(known + [today])

    def guard_backfill(self, backfill: Callable[[str], int], now: Callable[[], datetime]) -> Callable[[str], int]:
        """``backfill`` that first applies the ticker's splits, so adjusted bars never meet unadjusted ones."""
        def guarded(ticker: str) -> int:
            self.check(now(), [ticker])
            return backfill(ticker)
        return guarded


def _effect_text(effect: Dict[str, Any]) -> str:
    if effect["kind"] == "cash_dividend":
        return f"${effect['cash']:,.2f} on {effect['shares_before']:g} shares"
    after = effect["shares_before"] + effect["share_change"] + effect["fractional_change"]
    return f"{effect['shares_before']:g} -> {after:.9g} shares"


def default_fetch(settings: Any) -> Fetch:
    """The data API's corporate actions through alpaca-py (``database.corporate_actions_pull``)."""
    from database import corporate_actions_pull

    client = corporate_actions_pull.actions_client(settings)
    return lambda tickers, start, end: corporate_actions_pull.fetch_corporate_actions(client, tickers, start, end)

