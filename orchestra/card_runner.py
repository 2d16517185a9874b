"""One card's decision for one minute, under a time budget, isolated from every other card.

User code (``get_data_requirements``, ``on_data``) runs in a daemon worker thread per call; the
cycle waits at most ``timeout`` seconds. A call that overruns is abandoned, not joined: its card
is reported as timed out and, while that thread is still alive, skipped as busy, so a hung
algorithm costs one leaked thread and never blocks a later cycle. Database reads stay on the
calling thread (an abandoned worker never touches a connection).

Algorithm files are reloaded by the framework's loader whenever their content changes.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, TypeVar

from algorithms import AlgorithmError, CheckedDecision, decide_for_card, requirements_for_card
from algorithms import DEFAULT_MAX_PRICE_AGE, PriceAge
from database import db_manager, market_calendar
from orchestra.card_params import with_parameters
from orchestra.clock import MINUTE, stamp
from orchestra.exceptions import AlgorithmBusy, AlgorithmTimeout
from system_databse import card_calculations, system_db_manager as ledger

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class CardDecision:
    """A card's checked decision and the facts it was made on (for logs, dry runs and trading)."""

    card: Mapping[str, Any]
    decision: CheckedDecision
    price: Optional[float]
    bars: int
    last_bar: Optional[str]
    price_age: Optional[PriceAge] = None  # how old ``price`` is (None: no bar at all)


class CardRunner:
    """Runs cards' algorithms with a per-call time budget and remembers which ones hang."""

    def __init__(self, market_conn: sqlite3.Connection, ledger_conn: sqlite3.Connection, *,
                 directory: Optional[Path] = None, timeout: float = 10.0,
                 max_price_age: int = DEFAULT_MAX_PRICE_AGE):
        self.market_conn = market_conn
        self.ledger_conn = ledger_conn
        self.directory = directory
        self.timeout = timeout
        self.max_price_age = max_price_age  # market minutes: a buy on an older price is refused
        self._busy: Dict[int, tuple[threading.Thread, float]] = {}
        self.parameter_overrides: Dict[str, str] = {}  # a dry run's --param name=value

    def decide(self, card: Mapping[str, Any], minute: datetime) -> CardDecision:
        """The checked decision of ``card`` for the bar that started at ``minute``.

        Raises AlgorithmError (load error, exception, timeout, busy); never places an order.
        """
        card_id = int(card["id"])
        self._check_not_busy(card)
        card = with_parameters(card, self.ledger_conn, overrides=self.parameter_overrides, directory=self.directory)
        current_time = stamp(minute + MINUTE)
        requirements = self._call(card, "get_data_requirements",
                                  lambda: requirements_for_card(card, current_time, directory=self.directory))
        frame = db_manager.get_last_bars(self.market_conn, card["ticker"], requirements["bars"], until=stamp(minute))
        history = algorithm_history(self.ledger_conn, card_id)
        price = float(frame["close"].iloc[-1]) if len(frame) else None
        last_bar = stamp(frame.index[-1].to_pydatetime()) if len(frame) else None
        age = price_age(last_bar, minute)
        decision = self._call(card, "on_data", lambda: decide_for_card(
            card, frame, history, price if price is not None else float("nan"),
            current_time=current_time, directory=self.directory, bars_needed=requirements["bars"],
            price_age=age, max_price_age=self.max_price_age))
        return CardDecision(card, decision, price, len(frame), last_bar, age)

    def _check_not_busy(self, card: Mapping[str, Any]) -> None:
        card_id = int(card["id"])
        running = self._busy.get(card_id)
        if running is None:
            return
        thread, started = running
        if thread.is_alive():
            raise AlgorithmBusy(f"its algorithm is still running after {time.monotonic() - started:.0f}s "
                                "(hung?); skipped until it returns", card.get("algorithm_type"), card_id)
        del self._busy[card_id]
        logger.info("card %d: the algorithm call that overran has finished; the card runs again", card_id)

    def _call(self, card: Mapping[str, Any], what: str, work: Callable[[], T]) -> T:
        """``work()`` in a daemon thread, waited for at most ``timeout`` seconds."""
        card_id = int(card["id"])
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            try:
                outcome["value"] = work()
            except BaseException as exc:  # noqa: BLE001 - handed back to the cycle, never lost
                outcome["error"] = exc
            finally:
                done.set()

        thread = threading.Thread(target=target, name=f"card-{card_id}-{what}", daemon=True)
        started = time.monotonic()
        thread.start()
        if not done.wait(self.timeout):
            self._busy[card_id] = (thread, started)
            raise AlgorithmTimeout(f"{what} did not return within {self.timeout:g}s; abandoned",
                                   card.get("algorithm_type"), card_id)
        error = outcome.get("error")
        if isinstance(error, AlgorithmError):
            raise error
        if error is not None:  # a framework bug or bad data: still only this card's failure
            raise AlgorithmError(f"{what} failed: {type(error).__name__}: {error}", card.get("algorithm_type"),
                                 card_id) from error
        return outcome["value"]


def price_age(last_bar: Optional[str], minute: datetime) -> Optional[PriceAge]:
    """How old the newest bar is when deciding for the bar that started at ``minute``."""
    if last_bar is None:
        return None
    return PriceAge(last_bar, market_calendar.market_minutes_between(last_bar, minute),
                    market_calendar.same_session(last_bar, minute))


def algorithm_history(conn: sqlite3.Connection, card_id: int) -> list:
    """The card's fills as its algorithm sees them: in today's share units after a split, so its
    position and the decision check match the shares the card holds (``split_adjusted``; dividends
    are not fills and stay out)."""
    rows = ledger.get_transactions(card_id, conn=conn)
    effects = ledger.get_corporate_action_effects(card_id, conn=conn)
    if not effects:
        return rows
    return [r for r in card_calculations.split_adjusted(rows[::-1], effects) if r["type"] != "dividend"]
