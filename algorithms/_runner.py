"""Calling user code: one small wrapper shared by live trading, dry runs and backtests.

Every call into an algorithm goes through here. The algorithm gets read-only inputs (bars as
read-only numpy views, history as read-only mappings), a fresh instance each minute (algorithms
are stateless between runs), and any exception it raises becomes an ``AlgorithmError`` carrying
the card id, so the caller can log it and move on to the next card. All arguments and results
are plain picklable values, so the orchestrator can run ``decide_for_card`` in a worker process
under a time budget.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from algorithms._checker import CheckedDecision, check_decision, plain_hold
from algorithms._freshness import DEFAULT_MAX_PRICE_AGE, PriceAge, check_price_age
from algorithms._framework import AlgorithmError, Bars, freeze_history, history_totals, validate_requirements
from algorithms._loader import load_algorithm_class
from algorithms._params import ParameterError, values_for

logger = logging.getLogger(__name__)


def _card_field(card: Mapping[str, Any], name: str) -> Any:
    try:
        return card[name]
    except (KeyError, TypeError, IndexError):
        raise AlgorithmError(f"card has no {name!r}", card_id=_safe_id(card)) from None


def _safe_id(card: Any) -> Any:
    try:
        return card.get("id")
    except AttributeError:
        return None


def instantiate(algorithm_class: type, ticker: str, initial_capital: float, *, algorithm_type: str | None = None,
                card_id: Any = None, params: Mapping[str, Any] | None = None):
    """A fresh algorithm instance; a failing constructor becomes AlgorithmError.

    ``params`` (from ``parameters_for``) is set as ``algorithm.params`` right after
    ``__init__(ticker, initial_capital)``: the one way parameters reach an algorithm.
    """
    try:
        algorithm = algorithm_class(ticker, float(initial_capital))
    except Exception as exc:  # noqa: BLE001 - user code
        raise AlgorithmError(f"Algorithm({ticker!r}, {initial_capital}) raised {type(exc).__name__}: {exc}",
                             algorithm_type, card_id) from exc
    if params:
        try:
            algorithm.params = params
        except Exception as exc:  # noqa: BLE001 - e.g. __slots__ without 'params'
            raise AlgorithmError(f"cannot set its params: {type(exc).__name__}: {exc}", algorithm_type,
                                 card_id) from exc
    return algorithm


def parameters_for(algorithm_class: type, values: Mapping[str, Any] | None, *, stored: bool = False,
                   algorithm_type: str | None = None, card_id: Any = None) -> Mapping[str, Any]:
    """Every declared parameter's value (given or default), read-only; a bad value is AlgorithmError.

    ``stored``: a card's values from the ledger (a name the file no longer declares is dropped).
    """
    try:
        return values_for(algorithm_class, values, stored=stored)
    except ParameterError as exc:
        raise AlgorithmError(str(exc), algorithm_type, card_id) from None


def requirements_of(algorithm, current_time: str, *, algorithm_type: str | None = None, card_id: Any = None) -> dict:
    """The algorithm's validated data requirements (``{"bars": n}``) at ``current_time``."""
    try:
        raw = algorithm.get_data_requirements(current_time)
    except Exception as exc:  # noqa: BLE001 - user code
        raise AlgorithmError(f"get_data_requirements raised {type(exc).__name__}: {exc}",
                             algorithm_type, card_id) from exc
    try:
        return validate_requirements(raw)
    except ValueError as exc:
        raise AlgorithmError(str(exc), algorithm_type, card_id) from None


def decide(algorithm, bars: Bars, transaction_history: Sequence[Mapping[str, Any]], *, bars_needed: int,
           position: int, uninvested_cash: float, price: float, algorithm_type: str | None = None,
           card_id: Any = None, price_age: PriceAge | None = None,
           max_price_age: int = DEFAULT_MAX_PRICE_AGE) -> CheckedDecision:
    """One minute of one algorithm: window the bars, call ``on_data``, check the answer.

    ``transaction_history`` must already be frozen (``freeze_history``) and ``bars`` read-only.
    Fewer bars than needed means the algorithm is not called (a hold that says so). With
    ``price_age`` (how old the newest bar is) a buy on a stale price is refused (``_freshness``).
    """
    count = len(bars)
    if count < bars_needed:
        return CheckedDecision("hold", 0, True, f"waiting for data: {count} of {bars_needed} bars", "hold", 0)
    if count > bars_needed:
        bars = bars.tail(bars_needed)
    try:
        raw = algorithm.on_data(bars, transaction_history)
    except Exception as exc:  # noqa: BLE001 - user code
        raise on_data_error(exc, algorithm_type, card_id) from exc
    held = plain_hold(raw)  # most minutes; a hold needs no price check
    if held is not None:
        return held
    return check_answer(raw, position=position, uninvested_cash=uninvested_cash, price=price, price_age=price_age,
                        max_price_age=max_price_age)


def on_data_error(exc: Exception, algorithm_type: str | None, card_id: Any = None) -> AlgorithmError:
    """The error for an exception ``on_data`` raised (raise it ``from exc``)."""
    return AlgorithmError(f"on_data raised {type(exc).__name__}: {exc}", algorithm_type, card_id)


def check_answer(raw: Any, *, position: int, uninvested_cash: float, price: float, price_age: PriceAge | None,
                 max_price_age: int = DEFAULT_MAX_PRICE_AGE) -> CheckedDecision:
    """``on_data``'s answer checked against the card (``check_decision``) and the price's age."""
    checked = check_decision(raw, position=position, uninvested_cash=uninvested_cash, price=price)
    return check_price_age(checked, price_age, price, max_price_age)


def _as_bars(bars: Any) -> Bars:
    if isinstance(bars, Bars):
        return bars
    return Bars.from_frame(bars)  # a DataFrame from db_manager.get_last_bars


def requirements_for_card(card: Mapping[str, Any], current_time: str, *, directory: Path | None = None,
                          algorithm_class: type | None = None) -> dict:
    """What to fetch for this card now: ``{"bars": n}``. Raises AlgorithmError / AlgorithmLoadError.
    ``algorithm_class``: the class already loaded this minute (else it is loaded here)."""
    algorithm_type = _card_field(card, "algorithm_type")
    card_id = _safe_id(card)
    cls = algorithm_class or _load(algorithm_type, directory, card_id)
    algorithm = instantiate(cls, _card_field(card, "ticker"), _card_field(card, "initial_capital"),
                            algorithm_type=algorithm_type, card_id=card_id, params=_card_params(cls, card))
    return requirements_of(algorithm, current_time, algorithm_type=algorithm_type, card_id=card_id)


def _card_params(cls: type, card: Mapping[str, Any]) -> Mapping[str, Any]:
    """The card's stored parameter values (``card["parameters"]``, optional) against the declaration."""
    try:
        stored = card.get("parameters")
    except AttributeError:
        stored = None
    return parameters_for(cls, stored, stored=True, algorithm_type=card.get("algorithm_type"), card_id=_safe_id(card))


def _load(algorithm_type: str, directory: Path | None, card_id: Any) -> type:
    try:
        return load_algorithm_class(algorithm_type, directory)
    except AlgorithmError as exc:
        exc.card_id = card_id
        raise


def decide_for_card(card: Mapping[str, Any], bars: Any, transaction_history: Sequence[Mapping[str, Any]],
                    current_price: float, *, current_time: str | None = None,
                    directory: Path | None = None, bars_needed: int | None = None,
                    price_age: PriceAge | None = None,
                    max_price_age: int = DEFAULT_MAX_PRICE_AGE,
                    algorithm_class: type | None = None) -> CheckedDecision:
    """Run one card's algorithm for one minute and return the checked decision with its reason.

    ``card`` needs ``algorithm_type``, ``ticker``, ``initial_capital`` (``id`` for messages, and
    ``parameters``, the values it was created with, when its algorithm declares any);
    ``bars`` is a ``Bars`` or the DataFrame of ``db_manager.get_last_bars`` (completed bars only,
    newest last); ``transaction_history`` the card's transactions in any order (as
    ``system_db_manager.get_transactions`` returns them); ``current_price`` the latest price.
    ``current_time`` defaults to the end of the newest bar; ``bars_needed`` is what
    ``requirements_for_card`` already answered for this minute (asked again when omitted);
    ``price_age`` how old the newest bar is (a buy on a stale price is refused); ``algorithm_class`` the
    class already loaded this minute (else it is loaded here). Raises ``AlgorithmError`` (incl.
    ``AlgorithmLoadError``) for anything the algorithm got wrong; never trades.
    """
    algorithm_type = _card_field(card, "algorithm_type")
    card_id = _safe_id(card)
    cls = algorithm_class or _load(algorithm_type, directory, card_id)
    window = _as_bars(bars)
    if current_time is None:
        current_time = _end_of(window)
    history = freeze_history(transaction_history)
    position, invested = history_totals(history)
    capital = float(_card_field(card, "initial_capital"))
    algorithm = instantiate(cls, _card_field(card, "ticker"), capital, algorithm_type=algorithm_type, card_id=card_id,
                            params=_card_params(cls, card))
    needed = bars_needed if bars_needed is not None else \
        requirements_of(algorithm, current_time, algorithm_type=algorithm_type, card_id=card_id)["bars"]
    decision = decide(algorithm, window, history, bars_needed=needed, position=position,
                      uninvested_cash=capital - invested, price=current_price,
                      algorithm_type=algorithm_type, card_id=card_id, price_age=price_age,
                      max_price_age=max_price_age)
    if not decision.accepted:
        logger.warning("card %s (%s %s): %s", card_id, algorithm_type, _card_field(card, "ticker"), decision.reason)
    return decision


def _end_of(bars: Bars) -> str | None:
    """The moment the newest bar closed (its start + 1 minute), as a UTC string."""
    if not len(bars):
        return None
    import numpy as np

    return str((bars.timestamp[-1] + np.timedelta64(60, "s")).astype("datetime64[s]")) + "Z"
