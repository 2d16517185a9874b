"""Try every combination of an algorithm's parameters on stored bars, on every core, and check the
best ones on days they were not chosen on.

    python -m scripts.sweep sma_crossover AAPL --start 2026-01-02 --end 2026-06-30 \\
        --param fast=10:30:5 --param slow=40:80:10 [--metric return] [--split 0.7] [--top 10] [--workers N]

``--param name=a:b:step`` is the range a, a+step, ... up to b (inclusive); ``name=a,b,c`` a list;
``name=v`` one value. Every value is checked against the algorithm's declaration.

The range's trading days are cut in two: the first ``--split`` (70%) is where combinations are
ranked (in-sample); the best ``--top`` are then replayed on the remaining days (out-of-sample,
warmed up on the bars before them), so an owner sees whether the winner still wins on days it was
not picked on, or was only fitted to noise. Every replay is ``scripts.backtest``'s (the CLI's) code
path; the bars are read once and shared with the worker processes.
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Optional

import numpy as np

from algorithms import (AlgorithmError, AlgorithmLoadError, Bars, BarSeries, ParameterError, class_parameters,
                        instantiate, load_algorithm_class, parameters_for, requirements_of)
from algorithms._params import split_assignment
from database import db_manager
from scripts import backtest
from scripts.backtest_metrics import Metrics, metrics

METRICS = {  # name -> (Metrics field, higher is better)
    "return": ("total_return", True),
    "drawdown": ("max_drawdown", False),
    "win_rate": ("win_rate", True),
    "trades": ("trades", True),
}
MAX_COMBINATIONS = 100_000

_shared: dict = {}  # the parent's data, inherited by forked workers (never pickled per task)


@dataclass(frozen=True)
class Outcome:
    values: tuple            # parameter values, in --param order
    metrics: Metrics
    bars: int
    seconds: float


# --------------------------------------------------------------------------- grids


def expand(specs, name: str, text: str) -> list:
    """The values of one ``--param``: ``a:b:step``, ``a,b,c`` or ``v``, each checked by the declaration."""
    if name not in specs:
        allowed = ", ".join(specs) or "none (this algorithm takes no parameters)"
        raise ParameterError(f"unknown parameter {name!r}; allowed: {allowed}", name)
    spec = specs[name]
    if ":" in text and spec.type != "choice":
        parts = text.split(":")
        if len(parts) != 3:
            raise ParameterError(f"--param {name}={text}: a range is start:stop:step", name)
        try:
            start, stop, step = (Decimal(p) for p in parts)
        except InvalidOperation:
            raise ParameterError(f"--param {name}={text}: start, stop and step must be numbers", name) from None
        if step <= 0 or stop < start:
            raise ParameterError(f"--param {name}={text}: needs step > 0 and stop >= start", name)
        count = int((stop - start) / step) + 1
        if count > MAX_COMBINATIONS:
            raise ParameterError(f"--param {name}={text}: {count:,} values is too many", name)
        texts = [str(start + step * i) for i in range(count)]
    else:
        texts = text.split(",")
    values = []
    for item in texts:
        value = spec.parse(item)
        if value not in values:
            values.append(value)
    return values


def grid(algorithm_class: type, assignments: list[str]) -> tuple[list[str], list[tuple]]:
    """(names, every combination of values) from the ``--param`` texts."""
    specs = {spec.name: spec for spec in class_parameters(algorithm_class)}
    names, axes = [], []
    for text in assignments:
        name, value = split_assignment(text)
        if name in names:
            raise ParameterError(f"--param {name} given twice", name)
        names.append(name)
        axes.append(expand(specs, name, value))
    combinations = list(itertools.product(*axes))
    if len(combinations) > MAX_COMBINATIONS:
        raise ParameterError(f"{len(combinations):,} combinations; at most {MAX_COMBINATIONS:,}")
    return names, combinations


# --------------------------------------------------------------------------- data


def split_index(series: BarSeries, first: int, fraction: float) -> int:
    """Index of the first out-of-sample bar: the first bar of the day after the in-sample days."""
    days = (series.timestamp[first:] - np.timedelta64(5, "h")).astype("datetime64[D]")  # New York dates
    unique = np.unique(days)
    if len(unique) < 2:
        raise backtest.BacktestError("the range has one trading day: nothing is left to check out of sample")
    keep = min(len(unique) - 1, max(1, int(round(len(unique) * fraction))))
    return first + int(np.searchsorted(days, unique[keep]))


def head(series: BarSeries, end: int) -> BarSeries:
    return BarSeries(Bars(*(getattr(series, c)[:end] for c in ("timestamp", "open", "high", "low", "close",
                                                                "volume"))))


# --------------------------------------------------------------------------- work


def _run(task: tuple) -> Outcome:
    """One replay in a worker: ``task`` = (values, which part: "in" or "out")."""
    values, part = task
    data = _shared
    cls, names = data["class"], data["names"]
    series, first = (data["in_series"], data["first"]) if part == "in" else (data["series"], data["split"])
    params = parameters_for(cls, dict(zip(names, values)), algorithm_type=data["algorithm_type"])
    started = time.perf_counter()
    result = backtest.replay(cls, series, first, ticker=data["ticker"], initial_capital=data["capital"],
                             algorithm_type=data["algorithm_type"], params=params)
    return Outcome(values, metrics(result, series, first)[0], result.bars, time.perf_counter() - started)


def run_all(tasks: list, workers: int, progress: bool, what: str) -> list[Outcome]:
    """Every task on ``workers`` processes (forked: the bars are shared, not copied per task)."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), unit="combo", desc=what, file=sys.stderr, leave=False)
    out = []
    try:
        if workers <= 1:
            for task in tasks:
                out.append(_run(task))
                if bar is not None:
                    bar.update(1)
            return out
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for outcome in pool.imap_unordered(_run, tasks, chunksize=1):
                out.append(outcome)
                if bar is not None:
                    bar.update(1)
        return out
    finally:
        if bar is not None:
            bar.close()


def ranked(outcomes: list[Outcome], metric: str) -> list[Outcome]:
    field, higher = METRICS[metric]

    def key(o: Outcome):
        value = getattr(o.metrics, field)
        missing = value is None
        value = 0.0 if missing else float(value)
        return (missing, -value if higher else value, o.values)

    return sorted(outcomes, key=key)


# --------------------------------------------------------------------------- report


def _pct(value: Optional[float]) -> str:
    return "—" if value is None else f"{value * 100:+.2f}%"


def table(names: list[str], rows: list[Outcome], extra: Optional[dict] = None) -> list[str]:
    """Aligned rows: parameters, return, max drawdown, trades, win rate, time in market (+ extra columns)."""
    extra = extra or {}
    head_cells = names + ["return", "max dd", "trades", "win rate", "in market"] + list(extra)
    lines = [[str(c) for c in head_cells]]
    for row in rows:
        m = row.metrics
        cells = [str(v) for v in row.values] + [_pct(m.total_return), f"{m.max_drawdown * 100:.2f}%", str(m.trades),
                                                "—" if m.win_rate is None else f"{m.win_rate * 100:.1f}%",
                                                f"{m.time_in_market * 100:.1f}%"]
        cells += [fn(row) for fn in extra.values()]
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head_cells))]
    return ["  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in lines]


def sweep(algorithm_type: str, ticker: str, start: str, end: str, capital: float, assignments: list[str], *,
          conn: sqlite3.Connection, metric: str = "return", split: float = 0.7, top: int = 10,
          workers: Optional[int] = None, progress: bool = False) -> dict:
    """Rank every combination in-sample and replay the best ``top`` out-of-sample; returns the figures."""
    if not 0 < split < 1:
        raise backtest.BacktestError(f"--split must be between 0 and 1, got {split}")
    cls = load_algorithm_class(algorithm_type)
    names, combinations = grid(cls, assignments)
    warmup = max(requirements_of(instantiate(cls, ticker, capital, algorithm_type=algorithm_type,
                                             params=parameters_for(cls, dict(zip(names, values)))),
                                 start, algorithm_type=algorithm_type)["bars"] for values in combinations)
    series, first = backtest.load_series(conn, ticker, start, end, warmup)
    cut = split_index(series, first, split)
    workers = workers or os.cpu_count() or 1
    _shared.update({"class": cls, "names": names, "series": series, "in_series": head(series, cut),
                    "first": first, "split": cut, "ticker": ticker, "capital": capital,
                    "algorithm_type": algorithm_type})
    started = time.perf_counter()
    inside = ranked(run_all([(v, "in") for v in combinations], workers, progress, "in-sample"), metric)
    seconds = time.perf_counter() - started
    best = inside[:top]
    outside = {o.values: o for o in run_all([(o.values, "out") for o in best], workers, progress, "out-of-sample")}
    return {"names": names, "inside": inside, "outside": outside, "seconds": seconds, "workers": workers,
            "combinations": len(combinations), "in_bars": cut - first, "out_bars": len(series) - cut,
            "split_at": backtest._stamps(series.timestamp[cut:cut + 1])[0],
            "hold": _buy_and_hold(series, first, cut, capital)}


def _buy_and_hold(series: BarSeries, first: int, cut: int, capital: float) -> tuple[float, float]:
    from scripts.backtest_metrics import buy_and_hold_curve

    inside = buy_and_hold_curve(capital, series.open[first:cut], series.close[first:cut])
    outside = buy_and_hold_curve(capital, series.open[cut:], series.close[cut:])
    return float(inside[-1]) / capital - 1, float(outside[-1]) / capital - 1


def report(found: dict, metric: str, top: int) -> str:
    names, inside, outside = found["names"], found["inside"], found["outside"]
    rate = found["combinations"] * found["in_bars"] / found["seconds"] if found["seconds"] else float("inf")
    lines = [f"{found['combinations']:,} combinations x {found['in_bars']:,} in-sample bars in "
             f"{found['seconds']:.1f} s on {found['workers']} worker(s): {rate:,.0f} combination-bars/s", "",
             f"in-sample (before {found['split_at']}), best {min(top, len(inside))} by {metric}; "
             f"buy and hold {_pct(found['hold'][0])}:"]
    lines += table(names, inside[:top])
    rank_out = {o.values: i + 1 for i, o in enumerate(ranked(list(outside.values()), metric))}
    rows = [outside[o.values] for o in inside[:top]]
    lines += ["", f"out-of-sample ({found['out_bars']:,} bars from {found['split_at']}), the same combinations; "
                  f"buy and hold {_pct(found['hold'][1])}:"]
    in_return = {o.values: o.metrics.total_return for o in inside}
    lines += table(names, rows, {"in-sample return": lambda o: _pct(in_return[o.values]),
                                 "rank out": lambda o: str(rank_out[o.values])})
    best_in, best_out = inside[0], outside[inside[0].values]
    verdict = ("holds up" if best_out.metrics.total_return > 0 and rank_out[best_in.values] <= max(1, len(rows) // 2)
               else "does not hold up: likely fitted to the in-sample days")
    lines += ["", f"best in-sample {dict(zip(names, best_in.values))}: {_pct(best_in.metrics.total_return)} in, "
                  f"{_pct(best_out.metrics.total_return)} out (rank {rank_out[best_in.values]} of {len(rows)} "
                  f"out of sample) - {verdict}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"error: {message} (see python -m scripts.sweep --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m scripts.sweep", description="Sweep an algorithm's parameters over stored bars.")
    parser.add_argument("algorithm")
    parser.add_argument("ticker")
    parser.add_argument("--start", required=True, help="first trading day, YYYY-MM-DD (New York)")
    parser.add_argument("--end", required=True, help="last trading day, YYYY-MM-DD (New York)")
    parser.add_argument("--capital", type=float, default=10_000.0)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=A:B:STEP|A,B|V",
                        help="values to try (repeatable); parameters not given keep their default")
    parser.add_argument("--metric", choices=sorted(METRICS), default="return", help="rank by (default return)")
    parser.add_argument("--split", type=float, default=0.7, help="in-sample share of the days (default 0.7)")
    parser.add_argument("--top", type=int, default=10, help="combinations shown and checked out of sample")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    parser.add_argument("--db", help="stocks.db path (default: AUTOTRADER_STOCKS_DB or database/stocks.db)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.top < 1 or (args.workers is not None and args.workers < 1):
            raise backtest.BacktestError("--top and --workers must be at least 1")
        start, end = backtest.day_bounds(backtest.parse_day(args.start, "start"), backtest.parse_day(args.end, "end"))
        conn = db_manager.get_connection(args.db, read_only=True)
        try:
            found = sweep(args.algorithm, args.ticker.strip().upper(), start, end, args.capital, args.param,
                          conn=conn, metric=args.metric, split=args.split, top=args.top, workers=args.workers,
                          progress=not args.no_progress and sys.stderr.isatty())
        finally:
            conn.close()
        print(report(found, args.metric, args.top))
    except (backtest.BacktestError, ParameterError, AlgorithmLoadError, AlgorithmError, FileNotFoundError,
            sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
