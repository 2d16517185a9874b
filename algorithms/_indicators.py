"""The optional ``indicators(bars)`` hook: named series an algorithm draws on the wall's chart.

An algorithm may define ``indicators(self, bars) -> {"SMA20": sequence, ...}``: one value per bar
of ``bars`` (oldest first; NaN where undefined, e.g. before an average has enough bars). It is
called with a window that starts ``bars_needed`` bars before the part that is drawn, so averages
are warmed up. Algorithms without the hook simply have no lines. Like ``on_data`` it gets
read-only inputs, and anything it gets wrong becomes an ``AlgorithmError``.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from algorithms._framework import AlgorithmError, Bars
from algorithms._runner import _as_bars, _card_field, _card_params, _load, _safe_id, instantiate

MAX_SERIES = 6
NAME_PATTERN = re.compile(r"^[A-Za-z0-9 _.%()+\-]{1,24}$")


def _series(name: Any, values: Any, length: int) -> List[Optional[float]]:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"indicator name {name!r} must be 1-24 letters, digits, spaces or _.%()+-")
    try:
        array = np.asarray(values, dtype="float64").reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"indicator {name!r} is not a sequence of numbers") from None
    if len(array) != length:
        raise ValueError(f"indicator {name!r} has {len(array)} values for {length} bars")
    return [float(v) if math.isfinite(v) else None for v in array]


def indicators_for_card(card: Mapping[str, Any], bars: Any, *, directory: Path | None = None) -> Dict[str, List[Optional[float]]]:
    """The card's algorithm's named series over ``bars`` ({} when it declares none)."""
    algorithm_type = _card_field(card, "algorithm_type")
    card_id = _safe_id(card)
    cls = _load(algorithm_type, directory, card_id)
    if not callable(getattr(cls, "indicators", None)):
        return {}
    window: Bars = _as_bars(bars)
    algorithm = instantiate(cls, _card_field(card, "ticker"), float(_card_field(card, "initial_capital")),
                            algorithm_type=algorithm_type, card_id=card_id, params=_card_params(cls, card))
    try:
        raw = algorithm.indicators(window)
    except Exception as exc:  # noqa: BLE001 - user code
        raise AlgorithmError(f"indicators raised {type(exc).__name__}: {exc}", algorithm_type, card_id) from exc
    if not isinstance(raw, Mapping):
        raise AlgorithmError(f"indicators must return a dict of name -> series, got {type(raw).__name__}",
                             algorithm_type, card_id)
    if len(raw) > MAX_SERIES:
        raise AlgorithmError(f"indicators returned {len(raw)} series; at most {MAX_SERIES}", algorithm_type, card_id)
    try:
        return {name: _series(name, values, len(window)) for name, values in raw.items()}
    except ValueError as exc:
        raise AlgorithmError(str(exc), algorithm_type, card_id) from None
