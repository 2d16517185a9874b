"""The add dialog's "try it first": a backtest over the last N trading days, in its own process.

    echo '{"algorithm_type": "sma_crossover", "ticker": "AAPL", "initial_capital": 10000,
           "parameters": {"fast": 10}, "days": 20, "now": "2026-11-23T15:00:00Z"}' | python -m scripts.preview_worker

The web process starts this as a child (it never runs algorithm code itself) and stops it at its
time limit. It reads one JSON request on stdin, fetches the range's missing minutes through the
data API (and the session before it, for the algorithm's warm-up), replays the algorithm through
``scripts.backtest`` (the CLI's code path, so the figures match ``python -m scripts.backtest`` on
the same dates) and writes JSON lines to stdout: ``{"phase": "fetching"|"replaying", "done", "total"}``
while it works, then ``{"result": {...}}`` or ``{"error": "..."}``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
from typing import Any, Callable

import numpy as np

from algorithms import AlgorithmError, instantiate, load_algorithm_class, parameters_for, requirements_of
from database import db_manager, market_calendar
from scripts import backtest
from scripts.backtest_metrics import metrics
from shared.config import Settings

logger = logging.getLogger(__name__)

SESSION_MINUTES = 390
CURVE_POINTS = 300


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def sessions_before(now: str, days: int, extra: int = 0) -> list[tuple[Any, Any]]:
    """(open, close) of the last ``days`` + ``extra`` sessions that have opened by ``now`` (UTC, oldest first)."""
    calendar = market_calendar.nyse()
    at = market_calendar.parse_utc(now)
    opens, closes = calendar.opens, calendar.closes
    started = opens[opens <= at]
    chosen = started.index[-(days + extra):]
    return [(opens[day], closes[day]) for day in chosen]


def fetch_missing(conn, ticker: str, sessions, now: str, settings, progress: Callable[[int, int], None]) -> int:
    """Pull each session's missing minutes (up to the last complete minute) through the data API.

    ``settings.broker`` is asked for only when a minute is missing: without keys, stored bars
    still preview, and a missing minute fails with the key's name.
    """
    from database.historical_pull import pull_bars

    last_complete = market_calendar.parse_utc(now).floor("min") - np.timedelta64(1, "m")
    written = 0
    for done, (opened, closed) in enumerate(sessions):
        end = min(closed - np.timedelta64(1, "m"), last_complete)
        start_text, end_text = market_calendar.to_utc_string(opened), market_calendar.to_utc_string(end)
        if end >= opened and db_manager.find_gaps(conn, ticker, start_text, end_text):
            written += pull_bars(conn, [ticker], start_text, end_text, now=now, settings=settings.broker)
        progress(done + 1, len(sessions))
    return written


def run(request: dict, *, settings: Settings) -> dict:
    """Fetch, replay and summarise; raises BacktestError / AlgorithmError / PullError for the user."""
    algorithm_type, ticker = request["algorithm_type"], request["ticker"]
    capital, days, now = float(request["initial_capital"]), int(request["days"]), request["now"]
    directory = request.get("algorithms_dir")
    cls = load_algorithm_class(algorithm_type, directory)
    params = parameters_for(cls, request.get("parameters") or {}, algorithm_type=algorithm_type)
    probe = instantiate(cls, ticker, capital, algorithm_type=algorithm_type, params=params)
    warmup = requirements_of(probe, now, algorithm_type=algorithm_type)["bars"]
    warmup_sessions = math.ceil(warmup / SESSION_MINUTES)
    sessions = sessions_before(now, days, warmup_sessions)
    in_range = sessions[-days:]
    start_day = in_range[0][0].tz_convert("America/New_York").date()
    end_day = in_range[-1][0].tz_convert("America/New_York").date()
    conn = db_manager.get_connection(request.get("stocks_db"))
    try:
        if request.get("fetch", True):
            fetch_missing(conn, ticker, sessions, now, settings,
                          lambda done, total: emit({"phase": "fetching", "done": done, "total": total}))
        emit({"phase": "replaying", "done": 0, "total": 1})
        start, end = backtest.day_bounds(start_day, end_day)
        result, series, first = backtest.run_backtest(algorithm_type, ticker, start, end, capital, conn=conn,
                                                      parameters=dict(params), directory=directory)
    finally:
        conn.close()
    return summary(result, series, first, start_day, end_day, days, request.get("points", CURVE_POINTS))


def summary(result, series, first: int, start_day, end_day, days: int, points: int) -> dict:
    """The figures and curves the dialog draws (curves thinned to about ``points`` points)."""
    figures, equity, hold = metrics(result, series, first)
    times = backtest._stamps(series.timestamp[first:])
    keep = np.unique(np.linspace(0, len(equity) - 1, min(len(equity), max(2, points))).round().astype(int))
    return {
        "algorithm_type": result.algorithm_type, "ticker": result.ticker, "initial_capital": result.initial_capital,
        "parameters": result.parameters, "days": days, "start": start_day.isoformat(), "end": end_day.isoformat(),
        "first_bar": result.first_bar, "last_bar": result.last_bar, "bars": result.bars,
        **figures.to_dict(), "pnl": round(result.pnl, 2),
        "trade_list": [{"timestamp": t.timestamp, "side": t.side, "shares": t.shares, "price": t.price}
                       for t in result.trades[-50:]],
        "curve": {"timestamp": times[keep].tolist(), "equity": np.round(equity[keep], 2).tolist(),
                  "buy_hold": np.round(hold[keep], 2).tolist()},
    }


def main(stdin=None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        request = json.loads((stdin or sys.stdin).read())
        if request.get("seconds"):  # a backstop: never outlive the limits, even if the web process is gone
            signal.alarm(int(math.ceil(float(request["seconds"]))) + 5)
        emit({"result": run(request, settings=Settings.from_env(os.environ))})  # the API's environment
    except AlgorithmError as exc:
        emit({"error": f"{exc.algorithm_type or 'algorithm'}: {exc.message}"})
        return 1
    except Exception as exc:  # noqa: BLE001 - one line for the dialog, whatever went wrong
        logger.exception("preview failed")
        emit({"error": str(exc) or type(exc).__name__})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
