"""The detail view's price chart: a card's ticker over a zoom window, its fills and its indicators.

Zoom presets: ``today`` (the session of the newest bar), ``5d`` (the last five sessions) and
``all`` (since the card was created). Bars of a long window are merged into at most
``max_points`` buckets (open of the first bar, high/low over the bucket, close of the last), so
the chart keeps the shape of the day without sending 100,000 minutes. Indicator lines come from
the algorithm's optional ``indicators(bars)`` hook, computed on the full minute bars (warmed up
with the ``bars_needed`` bars before the window) and sampled at each bucket's last bar. The hook
runs under a time budget; an algorithm without it, or one that fails, just has no lines.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from database import db_manager
from database.market_calendar import TIMESTAMP_FORMAT, nyse, parse_utc
from system_databse import system_db_manager

logger = logging.getLogger(__name__)

ZOOMS = ("today", "5d", "all")
INDICATOR_SECONDS = 3.0


def window_start(zoom: str, created: pd.Timestamp, latest: pd.Timestamp) -> pd.Timestamp:
    """Where the chart starts: never before the card was created."""
    if zoom == "all":
        return created
    session = nyse().date_to_session(latest.tz_convert(None).normalize(), direction="previous")
    first = session if zoom == "today" else nyse().sessions_window(session, -5)[0]
    return max(created, pd.Timestamp(first).tz_localize("UTC"))


def _buckets(frame: pd.DataFrame, max_points: int) -> np.ndarray:
    """Bucket number of each bar: consecutive groups of k bars, k chosen to fit ``max_points``."""
    k = max(1, -(-len(frame) // max_points))
    return np.arange(len(frame)) // k


def _merged(frame: pd.DataFrame, groups: np.ndarray) -> pd.DataFrame:
    grouped = frame.groupby(groups)
    return pd.DataFrame({"timestamp": grouped["timestamp"].last(), "open": grouped["open"].first(),
                         "high": grouped["high"].max(), "low": grouped["low"].min(),
                         "close": grouped["close"].last(), "bars": grouped["close"].size()})


def _run_hook(card: Dict[str, Any], bars: pd.DataFrame, directory: Optional[Path]) -> Dict[str, List[Optional[float]]]:
    """The algorithm's indicators over ``bars``, or {} if it has none, fails or overruns."""
    from algorithms import AlgorithmError, indicators_for_card

    outcome: Dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = indicators_for_card(card, bars, directory=directory)
        except AlgorithmError as exc:
            outcome["error"] = exc.message if hasattr(exc, "message") else str(exc)

    worker = threading.Thread(target=work, name=f"indicators-{card['id']}", daemon=True)
    worker.start()
    worker.join(INDICATOR_SECONDS)
    if worker.is_alive():
        logger.warning("card %s: indicators did not return within %gs; chart drawn without them",
                       card["id"], INDICATOR_SECONDS)
        return {}
    if "error" in outcome:
        logger.warning("card %s: %s", card["id"], outcome["error"])
        return {}
    return outcome.get("value", {})


def _warmup(card: Dict[str, Any], directory: Optional[Path], now: str) -> int:
    from algorithms import AlgorithmError, requirements_for_card

    try:
        return int(requirements_for_card(card, now, directory=directory)["bars"])
    except AlgorithmError:
        return 0


def price_chart(system, stocks, algo: Dict[str, Any], zoom: str, max_points: int,
                directory: Optional[Path] = None) -> Dict[str, Any]:
    """Bars (merged to fit), fills and indicator series of one card for one zoom preset."""
    algo = {**algo, "parameters": system_db_manager.get_algorithm_parameters(algo["id"], conn=system)}
    result: Dict[str, Any] = {"id": algo["id"], "ticker": algo["ticker"], "zoom": zoom, "start": None, "end": None,
                              "bar_count": 0, "bars_per_point": 1, "points": [], "indicators": {}, "trades": []}
    latest = db_manager.get_latest_price(stocks, algo["ticker"])
    created = parse_utc(algo["created_at"]).floor("min")
    if latest is None or parse_utc(latest["timestamp"]) < created:
        return result
    end = parse_utc(latest["timestamp"])
    start = window_start(zoom, created, end)
    start_s, end_s = start.strftime(TIMESTAMP_FORMAT), end.strftime(TIMESTAMP_FORMAT)
    frame = db_manager.get_bars_between(stocks, algo["ticker"], start_s, end_s).reset_index()
    frame = frame.rename(columns={frame.columns[0]: "timestamp"})
    if frame.empty:
        return result
    groups = _buckets(frame, max_points)
    merged = _merged(frame, groups)
    last_of_bucket = np.r_[np.nonzero(np.diff(groups))[0], len(groups) - 1]
    warm = _warmup(algo, directory, end_s)
    before = db_manager.get_last_bars(stocks, algo["ticker"], warm, until=start_s) if warm else None
    if before is not None and len(before) and before.index[-1] >= frame["timestamp"].iloc[0]:
        before = before.iloc[:-1]  # get_last_bars includes the bar at ``until``
    full = pd.concat([before, frame.set_index("timestamp")]) if before is not None and len(before) else frame.set_index("timestamp")
    lines = _run_hook(algo, full, directory)
    offset = len(full) - len(frame)
    trades = system_db_manager.get_transactions_between(algo["id"], start_s, (end + pd.Timedelta(minutes=1)).strftime(TIMESTAMP_FORMAT), conn=system)
    result.update(
        start=start_s, end=end_s, bar_count=len(frame), bars_per_point=int(max(merged["bars"])),
        points=[{"timestamp": pd.Timestamp(r.timestamp).strftime(TIMESTAMP_FORMAT), "open": r.open, "high": r.high,
                 "low": r.low, "close": r.close} for r in merged.itertuples()],
        indicators={name: [values[offset + i] for i in last_of_bucket] for name, values in lines.items()},
        trades=[{k: t[k] for k in ("id", "type", "shares", "price", "timestamp")} for t in trades],
    )
    return result
