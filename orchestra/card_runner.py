"""One card's decision for one minute, under a time budget, isolated from every other card.

User code (``get_data_requirements``, ``on_data``) runs on a few daemon worker threads, all the
cards' calls at once; the cycle waits at most ``timeout`` seconds for each. A call that overruns
is abandoned, not joined: its card is reported as timed out and, until the call returns, skipped
as busy, and a fresh worker replaces the stuck one, so a hung algorithm costs one leaked thread
and never blocks a later cycle. Database reads stay on the calling thread (a worker never
touches a connection), and a ticker's bars are read once for all its cards.

Each minute loads every algorithm type once (on a worker, under the same budget: a file's
top-level code is user code too) for all its cards, and reloads it whenever its content changed;
200 cards used to check and read their file 400 times a minute.
"""
from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar, Union

from algorithms import AlgorithmError, CheckedDecision, decide_for_card, load_algorithm_class, requirements_for_card
from algorithms import DEFAULT_MAX_PRICE_AGE, Bars, PriceAge, TransactionHistory, freeze_history
from database import db_manager, market_calendar
from orchestra.card_params import with_parameters
from shared.clock import MINUTE, stamp
from orchestra.exceptions import AlgorithmBusy, AlgorithmTimeout
from system_databse import card_calculations, positions, system_db_manager as ledger

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


@dataclass(frozen=True)
class _Window:
    """One ticker's bars for this minute, shared read-only by every card that asked for as many."""

    bars: Bars
    price: Optional[float]
    last_bar: Optional[str]
    age: Optional[PriceAge]


WORKERS = 8  # daemon threads that run algorithm calls; a hung call costs one, which is replaced


@dataclass
class _Call:
    """One algorithm call, run by a worker thread."""

    card: Mapping[str, Any]
    what: str
    work: Callable[[], Any]
    done: threading.Event
    outcome: Dict[str, Any]
    started: float

    def run(self) -> None:
        try:
            self.outcome["value"] = self.work()
        except BaseException as exc:  # noqa: BLE001 - handed back to the cycle, never lost
            self.outcome["error"] = exc
        finally:
            self.done.set()


class _Workers:
    """Daemon threads taking calls from a queue: no thread is started per call, and a call that
    never returns keeps its thread (abandoned, never joined) while a new one takes its place."""

    def __init__(self, size: int):
        self._jobs: "queue.SimpleQueue[_Call]" = queue.SimpleQueue()
        for _ in range(size):
            self.replace_one()

    def replace_one(self) -> None:
        threading.Thread(target=self._serve, name="algorithm-worker", daemon=True).start()

    def submit(self, call: _Call) -> None:
        self._jobs.put(call)

    def _serve(self) -> None:
        while True:
            self._jobs.get().run()


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
        self._busy: Dict[int, _Call] = {}
        self._workers = _Workers(WORKERS)
        self.parameter_overrides: Dict[str, str] = {}  # a dry run's --param name=value

    def decide(self, card: Mapping[str, Any], minute: datetime) -> CardDecision:
        """The checked decision of ``card`` for the bar that started at ``minute``.

        Raises AlgorithmError (load error, exception, timeout, busy); never places an order.
        """
        [(_card, outcome)] = self.decide_all([card], minute)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def decide_all(self, cards: List[Mapping[str, Any]], minute: datetime
                   ) -> List[Tuple[Mapping[str, Any], Union[CardDecision, BaseException]]]:
        """Every card's decision for the bar that started at ``minute``, or the error that stopped it.

        Three phases: every card's data requirements (worker threads, all at once); each ticker's
        window of bars read once for all its cards (this thread, while no algorithm runs, so the
        database reads never queue behind algorithm code for the GIL); every card's ``on_data``
        (worker threads again, each call with its own time budget).
        """
        current_time = stamp(minute + MINUTE)
        results: Dict[int, Union[CardDecision, BaseException]] = {}
        held = positions.positions(conn=self.ledger_conn, cards=cards, open_orders=False)
        classes = self._classes(cards)
        needs = self._requirements([with_capital(card, held[int(card["id"])]) for card in cards], current_time,
                                   classes, results)
        windows = self._windows({(card["ticker"], bars) for card, bars in needs.values()}, minute)
        fills = ledger.get_transactions_by_card(needs, conn=self.ledger_conn)
        actions = ledger.get_corporate_action_effects_by_card(needs, conn=self.ledger_conn)
        deciding = {}
        for card_id, (card, bars_needed) in needs.items():
            window = windows[(card["ticker"], bars_needed)]
            try:
                if isinstance(window, BaseException):
                    raise window
                history = algorithm_history(fills[card_id], actions[card_id], held[card_id])
            except Exception as exc:  # noqa: BLE001 - confined to this card
                results[card_id] = exc
                continue
            deciding[card_id] = (card, window, self._start(
                card, "on_data", lambda c=card, w=window, h=history, n=bars_needed:
                decide_for_card(c, w.bars, h, w.price if w.price is not None else float("nan"),
                                current_time=current_time, directory=self.directory, bars_needed=n,
                                price_age=w.age, max_price_age=self.max_price_age,
                                algorithm_class=classes[c["algorithm_type"]])))
        for card_id, (card, window, call) in deciding.items():
            try:
                decision = self._finish(call)
            except Exception as exc:  # noqa: BLE001 - confined to this card
                results[card_id] = exc
                continue
            results[card_id] = CardDecision(card, decision, window.price, len(window.bars), window.last_bar,
                                            window.age)
        return [(card, results[int(card["id"])]) for card in cards]

    def _classes(self, cards: List[Mapping[str, Any]]) -> Dict[str, Union[type, BaseException]]:
        """{algorithm type: its class, or why it could not be loaded}, each type loaded once."""
        first: Dict[str, Mapping[str, Any]] = {}
        for card in cards:
            if int(card["id"]) not in self._busy:
                first.setdefault(card["algorithm_type"], card)
        loading = {kind: self._start(card, "loading its algorithm", lambda k=kind: load_algorithm_class(
            k, self.directory)) for kind, card in first.items()}
        classes: Dict[str, Union[type, BaseException]] = {}
        for kind, call in loading.items():
            try:
                classes[kind] = self._finish(call)
            except Exception as exc:  # noqa: BLE001 - confined to this type's cards
                classes[kind] = exc
        return classes

    def _requirements(self, cards: List[Mapping[str, Any]], current_time: str, classes: Mapping[str, Any],
                      results: Dict[int, Any]) -> Dict[int, Tuple[Mapping[str, Any], int]]:
        """{card id: (card with its parameters, bars it needs)}; a card that failed goes to ``results``."""
        asked = {}
        stored = ledger.get_all_algorithm_parameters(conn=self.ledger_conn)
        for card in cards:
            try:
                self._check_not_busy(card)
                loaded = classes.get(card["algorithm_type"])
                if not isinstance(loaded, type):
                    raise _for_card(loaded, card)
                ready = with_parameters(card, stored.get(int(card["id"]), {}), overrides=self.parameter_overrides,
                                        directory=self.directory)
            except Exception as exc:  # noqa: BLE001 - confined to this card
                results[int(card["id"])] = exc
                continue
            asked[int(ready["id"])] = (ready, self._start(ready, "get_data_requirements", lambda c=ready, k=loaded: (
                requirements_for_card(c, current_time, directory=self.directory, algorithm_class=k))))
        needs = {}
        for card_id, (card, call) in asked.items():
            try:
                needs[card_id] = (card, self._finish(call)["bars"])
            except Exception as exc:  # noqa: BLE001 - confined to this card
                results[card_id] = exc
        return needs

    def _windows(self, wanted: set, minute: datetime) -> Dict[tuple, Union["_Window", BaseException]]:
        """{(ticker, bars): its window of bars up to ``minute``}, each read once for all its cards."""
        windows: Dict[tuple, Union[_Window, BaseException]] = {}
        for ticker, count in wanted:
            try:
                columns = db_manager.get_last_bar_arrays(self.market_conn, ticker, count, until=stamp(minute))
                bars = Bars.from_columns(*(columns[c] for c in ("timestamp",) + db_manager.BAR_COLUMNS))
            except Exception as exc:  # noqa: BLE001 - confined to this ticker's cards
                windows[(ticker, count)] = exc
                continue
            last_bar = bars.last_timestamp
            windows[(ticker, count)] = _Window(bars, float(bars.close[-1]) if len(bars) else None, last_bar,
                                               price_age(last_bar, minute))
        return windows

    def _check_not_busy(self, card: Mapping[str, Any]) -> None:
        card_id = int(card["id"])
        running = self._busy.get(card_id)
        if running is None:
            return
        if not running.done.is_set():
            raise AlgorithmBusy(f"its algorithm is still running after {time.monotonic() - running.started:.0f}s "
                                "(hung?); skipped until it returns", card.get("algorithm_type"), card_id)
        del self._busy[card_id]
        logger.info("card %d: the algorithm call that overran has finished; the card runs again", card_id)

    def _start(self, card: Mapping[str, Any], what: str, work: Callable[[], T]) -> "_Call":
        """Queue ``work()`` for the worker threads; ``_finish`` waits for it within the time budget."""
        call = _Call(card, what, work, threading.Event(), {}, time.monotonic())
        self._workers.submit(call)
        return call

    def _finish(self, call: "_Call") -> Any:
        """The call's value, or its error as an AlgorithmError; abandons it after ``timeout`` seconds."""
        card, what, card_id, outcome = call.card, call.what, int(call.card["id"]), call.outcome
        if not call.done.wait(max(0.0, call.started + self.timeout - time.monotonic())):
            self._busy[card_id] = call
            self._workers.replace_one()  # the stuck worker is abandoned; the others keep their number
            raise AlgorithmTimeout(f"{what} did not return within {self.timeout:g}s; abandoned",
                                   card.get("algorithm_type"), card_id)
        error = outcome.get("error")
        if isinstance(error, AlgorithmError):
            raise error
        if error is not None:  # a framework bug or bad data: still only this card's failure
            raise AlgorithmError(f"{what} failed: {type(error).__name__}: {error}", card.get("algorithm_type"),
                                 card_id) from error
        return outcome["value"]


def _for_card(error: Any, card: Mapping[str, Any]) -> AlgorithmError:
    """Why the card's algorithm type could not be loaded this minute, as this card's own error."""
    if isinstance(error, AlgorithmError):
        return type(error)(error.message, card.get("algorithm_type"), int(card["id"]))
    return AlgorithmError(f"loading its algorithm failed: {error!r}", card.get("algorithm_type"), int(card["id"]))


def price_age(last_bar: Optional[str], minute: datetime) -> Optional[PriceAge]:
    """How old the newest bar is when deciding for the bar that started at ``minute``."""
    if last_bar is None:
        return None
    return PriceAge(last_bar, market_calendar.market_minutes_between(last_bar, minute),
                    market_calendar.same_session(last_bar, minute))


def with_capital(card: Mapping[str, Any], position: "positions.Position") -> Dict[str, Any]:
    """The card as its algorithm is built with it: ``initial_capital`` is the card's capital now
    (created with, plus deposits, minus withdrawals), so ``Algorithm(ticker, initial_capital)``,
    ``self.uninvested_cash(history)`` (capital - net invested) and the decision check all follow
    the money the owner moved, with the interface unchanged."""
    return {**card, "initial_capital": position.capital}


def algorithm_history(rows: List[dict], effects: List[dict], position: "positions.Position") -> TransactionHistory:
    """A card's fills (newest first) as its algorithm sees them: in today's share units after a
    split (``effects``, oldest first; a fraction kept to nine decimals, never dropped), with the
    ledger's own position and net invested cash as the history's totals, so the algorithm, the
    decision check and the ledger see the same numbers (dividends are cash, not fills)."""
    if effects:
        rows = [r for r in card_calculations.split_adjusted(rows[::-1], effects) if r["type"] != "dividend"]
    return freeze_history(rows, totals=(position.shares, position.invested))
