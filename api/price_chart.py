"""The detail view's price chart: a card's ticker over a zoom window, its fills and its indicators.

Zoom presets: ``today`` (the session of the newest bar), ``5d`` (the last five sessions) and
``all`` (since the card was created). Bars of a long window are merged into at most
``max_points`` buckets (open of the first bar, high/low over the bucket, close of the last), so
the chart keeps the shape of the day without sending 100,000 minutes. Indicator lines come from
the algorithm's optional ``indicators(bars)`` hook, computed on the full minute bars (warmed up
with up to ``WARMUP_BARS`` bars before the window) and sampled at each bucket's last bar. The web
process never runs algorithm code: the hook runs in ``scripts.indicators_worker``, a child process
under a time limit; an algorithm without the hook, or one that fails or hangs, just has no lines.
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from database import db_manager
from database.market_calendar import TIMESTAMP_FORMAT, nyse, parse_utc
from shared.config import REPO_ROOT
from system_databse import card_calculations, system_db_manager

logger = logging.getLogger(__name__)

ZOOMS = ("today", "5d", "all")
INDICATOR_SECONDS = 10.0   # the child's limit (a Pi starts Python and numpy in about a second)
WARMUP_BARS = 2000         # bars before the window given to the hook, so its lines start defined


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


def _run_hook(card: Dict[str, Any], stocks_db: str, start: str, end: str, pick: List[int],
              directory: Optional[Path]) -> Dict[str, List[Optional[float]]]:
    """The algorithm's indicators at the ``pick`` bars, from a child process under a time limit; {} on any failure."""
    request = {"card": {k: card[k] for k in ("id", "algorithm_type", "ticker", "initial_capital", "parameters")},
               "stocks_db": str(stocks_db), "start": start, "end": end, "warmup": WARMUP_BARS, "pick": pick,
               "directory": str(directory) if directory else None}
    try:
        done = subprocess.run([sys.executable, "-m", "scripts.indicators_worker"], cwd=REPO_ROOT,
                              input=json.dumps(request), capture_output=True, text=True, timeout=INDICATOR_SECONDS)
        output = done.stdout.strip()
        answer = json.loads(output.splitlines()[-1]) if output else {"error": f"no answer (exit {done.returncode})"}
    except subprocess.TimeoutExpired:
        answer = {"error": f"indicators did not return within {INDICATOR_SECONDS:g}s"}
    except (OSError, ValueError) as exc:
        answer = {"error": str(exc)}
    lines = answer.get("indicators") if isinstance(answer, dict) else None
    if not isinstance(lines, dict) or any(not isinstance(v, list) or len(v) != len(pick) for v in lines.values()):
        logger.warning("card %s: chart drawn without indicator lines: %s", card["id"], answer.get("error", "bad answer"))
        return {}
    return lines


def price_chart(system, stocks, algo: Dict[str, Any], zoom: str, max_points: int,
                directory: Optional[Path] = None, stocks_db: Optional[str] = None) -> Dict[str, Any]:
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
    lines = _run_hook(algo, stocks_db or db_manager.default_db_path(), start_s, end_s,
                      [int(i) for i in last_of_bucket], directory)
    trades = system_db_manager.get_transactions_between(algo["id"], start_s, (end + pd.Timedelta(minutes=1)).strftime(TIMESTAMP_FORMAT), conn=system)
    trades = [t for t in card_calculations.split_adjusted(  # the bars are split-adjusted: so are the markers
        trades, system_db_manager.get_corporate_action_effects(algo["id"], conn=system)) if t["type"] != "dividend"]
    result.update(
        start=start_s, end=end_s, bar_count=len(frame), bars_per_point=int(max(merged["bars"])),
        points=[{"timestamp": pd.Timestamp(r.timestamp).strftime(TIMESTAMP_FORMAT), "open": r.open, "high": r.high,
                 "low": r.low, "close": r.close} for r in merged.itertuples()],
        indicators=lines,
        trades=[{k: t[k] for k in ("id", "type", "shares", "price", "timestamp")} for t in trades],
    )
    return result
