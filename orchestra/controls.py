"""The one step between deciding and trading: which of the minute's decisions may reach the broker.

Every minute, after every card has decided and before ``Cycle._trade`` nets the decisions:

1. The PAUSE (system.db, set by the owner on the wall or from the shell) holds back every trade
   decision and every stopped card's liquidation. The decisions are still made and logged,
   marked as held back, so the detail view shows "would buy 5 — paused".
2. The trading day's net broker orders are counted against ``AUTOTRADER_DAILY_ORDER_LIMIT``
   (from the session's open, or from the last RESUME that day); once reached, the daemon pauses
   trading itself ('daily order limit') and notifies. Crosses between cards are not broker orders.
3. Each running card with limits is checked with its own numbers: its P&L now (its position, the
   one definition: shares x its latest price + uninvested cash - capital), its marks (the peak P&L
   and the P&L the day started from, kept in system.db once a minute), its fills today and its
   newest sale. A limit reached trips the card (recorded once, with which limit, when and why),
   sends one notification, and with ``on_trip`` 'liquidate' stops the card, whose shares are then
   sold as a STOP's are. A tripped card's trades are held back until RESUME CARD; a cooldown ends
   by itself.

Why marks and not a replay of fills and bars: the peak must hold over the card's whole life, and
replaying every minute bar since the card began (bars are pruned after a while) each minute is
neither cheap nor always possible; one row per card written once a minute is both, and survives a
restart. A peak reached while the daemon was down is missed, which only makes the limit trip later.

Nothing here sends or refuses an order: the gate only says which intents ``_trade`` receives. A
failure is confined: an unreadable pause holds everything back this minute; a card whose numbers
cannot be read is held back alone.
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from database import db_manager, market_calendar
from shared.clock import stamp
from shared.config import ControlSettings
from system_databse import fifo, positions, system_db_manager as ledger

logger = logging.getLogger(__name__)

WHY_PAUSED = "trading paused by the {by} since {since}{reason}"


@dataclass(frozen=True)
class Gate:
    """What may be sent this minute."""

    held: Dict[int, str]         # card id -> why its trade decision is not sent
    paused: Optional[str] = None  # why nothing at all is sent (the PAUSE), None while trading

    @property
    def liquidations(self) -> bool:
        """Whether stopped cards' shares may be sold this minute (they wait while trading is paused)."""
        return self.paused is None

    def held_trades(self, decisions: Iterable[Any]) -> Dict[int, str]:
        """{card: why} for the minute's trade decisions that are not sent (each logged)."""
        held = {}
        for made in decisions:
            card_id, decision = int(made.card["id"]), made.decision
            if decision.is_trade and card_id in self.held:
                held[card_id] = self.held[card_id]
                logger.info("card %d %s: would %s %s shares but %s: not sent", card_id, made.card["ticker"],
                            decision.action, decision.shares, held[card_id])
        return held


@dataclass(frozen=True)
class Breach:
    limit: str
    reason: str
    until: Optional[str] = None  # a cooldown's end


def pause_text(pause: Mapping[str, Any]) -> str:
    reason = f": {pause['reason']}" if pause.get("reason") else ""
    return WHY_PAUSED.format(by=pause.get("paused_by") or "owner", since=pause.get("since") or "?", reason=reason)


class Controls:
    """The daemon's gate; ``notifier`` (the daemon's, ``NOTIFY_URL``) tells the owner of trips and pauses."""

    def __init__(self, ledger_conn: sqlite3.Connection, market_conn: sqlite3.Connection,
                 settings: ControlSettings = ControlSettings()):
        self.ledger_conn = ledger_conn
        self.market_conn = market_conn
        self.settings = settings
        self.notifier: Any = None
        self._sales: Dict[int, Tuple[int, Optional[float]]] = {}  # card -> (newest sale's id, its realized P&L)

    # -- the step

    def gate(self, running: List[Mapping[str, Any]], decisions: Iterable[Any], minute: datetime,
             now: datetime) -> Gate:
        """Check the pause, the day's orders and every card's limits for the bar of ``minute``."""
        at = stamp(now)
        session = market_calendar.latest_session(minute)
        day_start = stamp(session[0]) if session else stamp(minute)
        prices = {int(d.card["id"]): d.price for d in decisions}
        try:
            pause = self._pause(day_start, at)
        except (sqlite3.Error, ledger.LedgerError) as exc:
            logger.error("trading controls could not be read (%s): no orders this minute", exc)
            return Gate({}, f"trading controls could not be read: {exc}")
        held = self._check_cards(running, prices, day_start, at)
        if pause["paused"]:
            why = pause_text(pause)
            return Gate({int(card["id"]): held.get(int(card["id"]), why) for card in running}, why)
        return Gate(held)

    def _pause(self, day_start: str, at: str) -> Dict[str, Any]:
        """The pause; the daemon's own when the day's broker orders have reached the limit."""
        pause = ledger.get_pause(conn=self.ledger_conn)
        limit = self.settings.daily_order_limit
        if pause["paused"] or not limit:
            return pause
        since = max(day_start, pause["resumed_at"] or day_start)
        sent = ledger.orders_sent_since(since, conn=self.ledger_conn)
        if sent < limit:
            return pause
        reason = f"{sent} orders sent to the broker since {since} (limit {limit} a day)"
        if ledger.pause_trading("daily order limit", reason, at=at, conn=self.ledger_conn):
            logger.warning("daily order limit reached: %s; trading paused until RESUME", reason)
            self._notify("paused", "AutoTrader PAUSED: daily order limit",
                         f"Trading paused at {at}: {reason}. No card sends orders until RESUME "
                         "(the wall, or python -m scripts.pause off).", key=f"paused:{at}")
        return ledger.get_pause(conn=self.ledger_conn)

    # -- the cards' limits

    def _check_cards(self, running: List[Mapping[str, Any]], prices: Mapping[int, Optional[float]],
                     day_start: str, at: str) -> Dict[int, str]:
        """Update the marks of the cards with limits, trip what is reached; {card: why it is held back}."""
        try:
            limits = ledger.get_all_card_limits(conn=self.ledger_conn)
            cards = [c for c in running if int(c["id"]) in limits]
            if not cards:
                return {}
            held_now = positions.positions(conn=self.ledger_conn, cards=cards, open_orders=False)
            marks = ledger.get_marks(conn=self.ledger_conn)
            trades = ledger.trades_since({int(c["id"]): max(day_start, limits[int(c["id"])]["resumed_at"] or "")
                                          for c in cards}, conn=self.ledger_conn)
            sales = ledger.newest_sales([int(c["id"]) for c in cards if limits[int(c["id"])]["cooldown_minutes"]],
                                        conn=self.ledger_conn)
        except (sqlite3.Error, ledger.LedgerError) as exc:
            logger.error("card limits not checked (%s): the cards with limits wait this minute", exc)
            return {int(c["id"]): f"its limits could not be checked: {exc}" for c in running}
        held: Dict[int, str] = {}
        updated: Dict[int, Dict[str, Any]] = {}
        for card in cards:
            card_id = int(card["id"])
            try:
                why = self._check_card(card, limits[card_id], held_now[card_id], prices.get(card_id), marks, updated,
                                       trades.get(card_id, 0), sales.get(card_id), day_start, at)
            except (sqlite3.Error, ledger.LedgerError, ValueError) as exc:
                logger.error("card %d: limits not checked (%s); its trades wait this minute", card_id, exc)
                why = f"its limits could not be checked: {exc}"
            if why:
                held[card_id] = why
        try:
            if updated:
                ledger.save_marks(updated, conn=self.ledger_conn)
        except (sqlite3.Error, ledger.LedgerError) as exc:
            logger.error("card marks not saved: %s", exc)
        return held

    def _check_card(self, card: Mapping[str, Any], limits: Mapping[str, Any], position: positions.Position,
                    price: Optional[float], marks: Mapping[int, Mapping[str, Any]],
                    updated: Dict[int, Dict[str, Any]], trades: int, sale: Optional[Mapping[str, Any]],
                    day_start: str, at: str) -> Optional[str]:
        card_id = card["id"]
        trip = limits["trip"]
        if trip and trip["until"] and trip["until"] <= at:
            if ledger.end_cooldown(card_id, until=trip["until"], conn=self.ledger_conn):
                logger.info("card %d %s: cooldown over at %s; trading again", card_id, card["ticker"], trip["until"])
            trip = None
        if price is None:
            latest = db_manager.get_latest_price(self.market_conn, card["ticker"])
            price = latest["price"] if latest else None
        mark = None
        if price is not None:
            mark = updated[card_id] = next_mark(marks.get(card_id), position.shares * price - position.invested,
                                                day_start, at, limits["resumed_at"])
        if trip and trip["limit"] != "cooldown":
            return held_text(trip)
        breach = find_breach(limits, mark, position.capital, trades, self._losing_sale(card_id, sale, limits), at)
        if breach is None or (trip and breach.limit == "cooldown"):  # nothing new (a cooldown runs on)
            return held_text(trip) if trip else None
        return self._trip(card, limits, breach, at)

    def _losing_sale(self, card_id: int, sale: Optional[Mapping[str, Any]],
                     limits: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
        """The card's newest sale with its realized P&L (FIFO) when it lost money and came after the
        last RESUME CARD; the replay runs once per new sale."""
        if sale is None or (limits["resumed_at"] and sale["timestamp"] < limits["resumed_at"]):
            return None
        known = self._sales.get(card_id)
        if known is None or known[0] != sale["id"]:
            matched = fifo.match(ledger.get_transactions_between(card_id, conn=self.ledger_conn),
                                 ledger.get_corporate_action_effects(card_id, conn=self.ledger_conn))
            known = self._sales[card_id] = (sale["id"], sum(p.pnl for p in matched.closed if p.sale_id == sale["id"]))
        return {**sale, "pnl": known[1]} if known[1] < 0 else None

    def _trip(self, card: Mapping[str, Any], limits: Mapping[str, Any], breach: Breach, at: str) -> Optional[str]:
        card_id, ticker = int(card["id"]), card["ticker"]
        liquidate = limits["on_trip"] == "liquidate" and breach.limit != "cooldown"
        reason = breach.reason + ("; card stopped, its shares sold" if liquidate else "")
        if not ledger.trip_card(card_id, breach.limit, reason, at=at, until=breach.until, conn=self.ledger_conn):
            return None
        if liquidate:
            ledger.stop_algorithm(card_id, stopped_at=at, conn=self.ledger_conn)
        action = ("stopped and liquidated" if liquidate else
                  f"no trades until {breach.until}" if breach.until else "paused until RESUME CARD")
        logger.warning("card %d %s: limit tripped at %s: %s; %s", card_id, ticker, at, reason, action)
        self._notify("limit", f"card {card_id} {ticker}: limit tripped",
                     f"card {card_id} {ticker} ({card['algorithm_type']}): {breach.reason} at {at}; {action}",
                     key=f"limit:{card_id}:{breach.limit}:{at}")
        return held_text({"limit": breach.limit, "reason": reason, "until": breach.until})

    def _notify(self, event: str, title: str, text: str, *, key: str) -> None:
        if getattr(self.notifier, "enabled", False):
            self.notifier.notify(event, title, text, key=key)


# --------------------------------------------------------------------------- pure parts


def held_text(trip: Mapping[str, Any]) -> str:
    if trip.get("until"):
        return f"cooling down until {trip['until']}: {trip['reason']}"
    return f"card paused, {trip['limit'].replace('_', ' ')} limit tripped: {trip['reason']}"


def next_mark(mark: Optional[Mapping[str, Any]], pnl: float, session: str, at: str,
              resumed_at: Optional[str]) -> Dict[str, Any]:
    """The card's marks after a check at ``at`` finds ``pnl``: a new session starts from the last
    P&L seen (the previous session's last check); a RESUME CARD starts peak and day over at ``pnl``."""
    if mark is None or (resumed_at and (mark.get("reset_at") or "") < resumed_at):
        return {"session": session, "day_start_pnl": pnl, "peak_pnl": pnl, "last_pnl": pnl, "checked_at": at,
                "reset_at": resumed_at}
    day_start = mark["day_start_pnl"] if mark["session"] == session else mark["last_pnl"]
    return {"session": session, "day_start_pnl": day_start, "peak_pnl": max(mark["peak_pnl"], pnl), "last_pnl": pnl,
            "checked_at": at, "reset_at": mark.get("reset_at")}


def find_breach(limits: Mapping[str, Any], mark: Optional[Mapping[str, Any]], capital: float, trades: int,
                losing_sale: Optional[Mapping[str, Any]], at: str) -> Optional[Breach]:
    """The first limit reached, in the order drawdown, day loss, trades, cooldown; None if none is."""
    if mark is not None and limits["max_drawdown_percent"] is not None:
        peak_value, value = capital + mark["peak_pnl"], capital + mark["last_pnl"]
        drawdown = (peak_value - value) / peak_value * 100 if peak_value > 0 else 0.0
        if drawdown >= limits["max_drawdown_percent"]:
            return Breach("max_drawdown", f"max loss from peak {limits['max_drawdown_percent']:g}% reached: value "
                                          f"${value:,.2f} is {drawdown:.1f}% below its peak ${peak_value:,.2f}")
    if mark is not None and limits["daily_loss_limit"] is not None:
        loss = mark["day_start_pnl"] - mark["last_pnl"]
        if loss >= limits["daily_loss_limit"]:
            return Breach("daily_loss", f"daily loss limit ${limits['daily_loss_limit']:,.2f} reached: "
                                        f"${loss:,.2f} lost today")
    if limits["max_trades_per_day"] is not None and trades >= limits["max_trades_per_day"]:
        return Breach("max_trades", f"max {limits['max_trades_per_day']} trades a day reached: {trades} today")
    minutes = limits["cooldown_minutes"]
    if minutes is not None and losing_sale is not None:
        until = stamp(market_calendar.utc_datetime(losing_sale["timestamp"]) + timedelta(minutes=minutes))
        if until > at:
            return Breach("cooldown", f"{minutes} min cooldown after a losing sale: sold {losing_sale['shares']:g} "
                                      f"at ${losing_sale['price']:,.2f} at {losing_sale['timestamp']} "
                                      f"({losing_sale['pnl']:+,.2f})", until)
    return None
