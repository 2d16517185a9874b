"""Replay an algorithm over minute bars in stocks.db, through the same code path as live trading.

    python -m scripts.backtest sma_crossover AAPL --start 2026-01-02 --end 2026-06-30 --capital 10000 [--png out.png]

Same as live: a fresh ``Algorithm(ticker, capital)`` each minute, the same requirements, the same
window of completed bars (newest last), the same read-only history and the same decision check
(``algorithms.decide``'s steps, inlined in the loop: ``check_answer``, with the stale-price rule).
Decisions are taken every market minute while the market is open, as the orchestrator does (not
after a session's last minute): a minute in which a thin ticker did not trade has no bar, and its
window ends with the newest older bar, so a buy on a price older than ``--max-price-age`` market
minutes is refused there as it is live.

Fill model: an accepted decision taken after the newest bar *i* fills at the open of the next stored
bar (*i + 1*), at that bar's time, for exactly the shares decided (no partial fills, no slippage, no
commission). A decision after the final bar of the range is not filled. The ledger lives in
memory (system.db is never opened) and values the card with ``card_calculations`` formulas.
The range is read from stocks.db once; the windows slide over it in memory.

Splits: stocks.db holds split-adjusted bars (historical pulls ask for them and the orchestrator
re-adjusts stored bars when a split happens), so a split is never a price move in a backtest.
Dividends (``--dividends``): the ticker's cash dividends in the range are read from the data API
and paid to the card at each ex-date open (shares held x rate, the rate restated for later
splits, in cents), as the live ledger does; without the flag they are ignored.
"""
from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np

from algorithms import (DEFAULT_MAX_PRICE_AGE, AlgorithmBase, AlgorithmError, AlgorithmLoadError, Bars, BarSeries,
                        ParameterError, PriceAge, available_algorithms, class_parameters, instantiate,
                        load_algorithm_class, parameters_for, parse_assignments, requirements_of)
from algorithms._checker import plain_hold
from algorithms._framework import TransactionHistory
from algorithms._runner import check_answer, on_data_error
from database import db_manager, market_calendar
from system_databse.card_calculations import calculate_pnl, to_cents, uninvested_cash, value_from_totals

PROGRESS_CHUNK = 4096
MINUTE = np.timedelta64(60, "s")
SERIES_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


class BacktestError(Exception):
    """Bad input for a backtest (dates, ticker without data): one line for the user."""


@dataclass(frozen=True)
class Trade:
    timestamp: str  # fill time: start of the bar whose open filled it
    side: str
    shares: int
    price: float
    decided_at: str  # end of the bar after which the algorithm decided
    reason: str


class MemoryLedger:
    """A card's transactions in memory; totals kept as running sums, values via card_calculations."""

    def __init__(self, initial_capital: float):
        self.initial_capital = float(initial_capital)
        self.history = TransactionHistory()  # read-only, oldest first, as algorithms receive it
        self.trades: list[Trade] = []
        self.dividends: list[DividendPaid] = []
        self.dividend_cash = 0.0

    @property
    def shares(self) -> int:
        return self.history.shares

    @property
    def invested(self) -> float:
        return self.history.invested

    @property
    def uninvested_cash(self) -> float:
        return uninvested_cash(self.initial_capital, self.history.invested - self.dividend_cash)

    def value(self, price: float) -> float:
        return value_from_totals(self.history.shares, self.history.invested - self.dividend_cash, price,
                                 self.initial_capital)

    def receive(self, dividend: Dividend) -> None:
        """A dividend on the shares held at the ex-date open becomes the card's cash (as in the ledger)."""
        if self.shares > 0:
            cash = to_cents(self.shares * dividend.rate)
            self.dividends.append(DividendPaid(dividend.ex_open, self.shares, dividend.rate, cash))
            self.dividend_cash += cash

    def record(self, trade: Trade) -> None:
        self.history = self.history.appended({"id": len(self.history) + 1, "type": trade.side,
                                              "shares": trade.shares, "price": trade.price,
                                              "timestamp": trade.timestamp})
        self.trades.append(trade)


@dataclass(frozen=True)
class Dividend:
    """A cash dividend as the replay pays it: at the ex-date open, per share of the (split-adjusted) bars."""

    ex_open: str  # UTC open of the ex-date session
    rate: float


@dataclass(frozen=True)
class DividendPaid:
    timestamp: str
    shares: int
    rate: float
    cash: float


def dividends_from_actions(actions: list[dict]) -> list[Dividend]:
    """Cash dividends from corporate actions (``corporate_actions_pull``), each rate divided by the
    ratio of every later split, since the stored bars and shares are in today's units."""
    splits = [a for a in actions if a["kind"] != "cash_dividend"]
    paid = []
    for action in actions:
        if action["kind"] == "cash_dividend":
            factor = float(np.prod([s["old_rate"] / s["new_rate"] for s in splits if s["ex_date"] > action["ex_date"]]))
            paid.append(Dividend(action["effective_at"], action["rate"] * factor))
    return sorted(paid, key=lambda d: d.ex_open)


@dataclass
class BacktestResult:
    algorithm_type: str
    ticker: str
    initial_capital: float
    bars: int  # bars replayed (in the requested range)
    decisions: int  # minutes the algorithm was asked
    seconds: float  # replay time (loading excluded)
    trades: list[Trade]
    final_price: float
    final_shares: int
    final_value: float
    refused: list[tuple[str, str]] = field(default_factory=list)  # (time, reason) of refused decisions
    first_bar: str = ""
    last_bar: str = ""
    parameters: dict = field(default_factory=dict)  # every declared parameter's value in this run
    dividends: list[DividendPaid] = field(default_factory=list)  # paid with --dividends
    cpu_seconds: float = 0.0  # the replay's CPU time (steadier than wall time on a busy machine)

    @property
    def pnl(self) -> float:
        return calculate_pnl(self.final_value, self.initial_capital)

    @property
    def bars_per_second(self) -> float:
        return self.bars / self.seconds if self.seconds > 0 else float("inf")


# --------------------------------------------------------------------------- data


def parse_day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise BacktestError(f"bad {what} date {text!r}: use YYYY-MM-DD") from None


def day_bounds(start: date, end: date) -> tuple[str, str]:
    """UTC bounds of New York trading days start..end (sessions never cross a UTC midnight)."""
    if end < start:
        raise BacktestError(f"end date {end} is before start date {start}")
    return f"{start.isoformat()}T00:00:00Z", f"{end.isoformat()}T23:59:59Z"


def load_series(conn: sqlite3.Connection, ticker: str, start: str, end: str, warmup: int) -> tuple[BarSeries, int]:
    """(series, index of the first bar in range): ``warmup`` earlier bars, then every bar in range.

    Two queries for the whole run; the per-minute windows are then views into these arrays.
    """
    in_range = db_manager.get_bar_arrays(conn, ticker, start, end)
    if not len(in_range["close"]):
        raise BacktestError(f"no bars for {ticker} in stocks.db between {start[:10]} and {end[:10]}; "
                            f"pull them with: python -m database.historical_pull {ticker} --start ... --end ...")
    before_start = market_calendar.parse_utc(start) - timedelta(seconds=1)
    earlier = db_manager.get_last_bar_arrays(conn, ticker, warmup, until=market_calendar.to_utc_string(before_start))
    columns = [np.concatenate([earlier[c], in_range[c]]) for c in SERIES_COLUMNS]
    return BarSeries(Bars.from_columns(*columns)), len(earlier["close"])


class DecisionPoints(NamedTuple):
    """The minutes the live loop would decide in, and the newest bar it would see at each one."""

    minutes: np.ndarray  # datetime64[s]: start of the minute just closed
    index: np.ndarray  # int64: the newest bar at or before that minute (the window ends there)
    age: np.ndarray  # int64: market minutes from that bar to the minute (0: the bar is that minute)
    same_session: np.ndarray  # bool: that bar is from the minute's own session

    def __len__(self) -> int:
        return len(self.minutes)


def decision_points(timestamps: np.ndarray, first: int) -> DecisionPoints:
    """Every market minute the live loop would decide in, from the first bar in range to the last.

    Live trading runs each card every market minute, also when its ticker had no trade that minute
    (the window then ends with an older bar), and not after a session's last minute. A decision
    needs a later bar to fill at, so the minutes stop before the last bar.
    """
    empty = np.array([], dtype="datetime64[s]")
    if len(timestamps) <= first + 1:
        return DecisionPoints(empty, np.array([], dtype=np.int64), np.array([], dtype=np.int64),
                              np.array([], dtype=bool))
    stamps = timestamps.astype("datetime64[s]")
    every = market_calendar.minutes_index(_as_utc(stamps[0]), _as_utc(stamps[-1])).tz_localize(None) \
        .to_numpy().astype("datetime64[s]")  # every market minute the series spans, from the sessions table
    lo, hi = np.searchsorted(every, [stamps[first], stamps[-1]])
    minutes = every[lo:hi]
    minutes = minutes[every[lo + 1:hi + 1] - minutes == MINUTE]  # not a session's last minute: nothing runs after the close
    index = np.searchsorted(stamps, minutes, side="right") - 1
    age = np.searchsorted(every, minutes) - np.searchsorted(every, stamps[index])
    same_session = minutes.astype("datetime64[D]") == stamps[index].astype("datetime64[D]")  # sessions keep to one UTC day
    return DecisionPoints(minutes, index.astype(np.int64), age.astype(np.int64), same_session)


def _as_utc(value: np.datetime64) -> datetime:
    return datetime.fromisoformat(str(value.astype("datetime64[s]"))).replace(tzinfo=timezone.utc)


def _stamps(values: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(values.astype("datetime64[s]"), unit="s"), "Z")


# --------------------------------------------------------------------------- replay


def requirements_vary(algorithm_class: type) -> bool:
    """Whether a replay asks ``get_data_requirements`` every minute, as live trading does.

    Not for an algorithm that keeps ``AlgorithmBase``'s: its answer is ``bars_needed``, which is
    not told the minute (each minute's instance has the same ticker, capital and parameters), so
    a pure algorithm answers the same every minute; the replay asks once and saves a call a minute.
    """
    return getattr(algorithm_class, "get_data_requirements", None) is not AlgorithmBase.get_data_requirements


def replay(algorithm_class: type, series: BarSeries, first: int, *, ticker: str, initial_capital: float,
           algorithm_type: str = "", progress: Optional[Callable[[int], None]] = None,
           points: Optional[DecisionPoints] = None, params=None, dividends: tuple[Dividend, ...] = (),
           max_price_age: int = DEFAULT_MAX_PRICE_AGE) -> BacktestResult:
    """Run the algorithm after every decision point of ``series`` and fill at the next bar's open.

    ``params``: the algorithm's read-only parameter values (``parameters_for``), as a card gets them.
    ``dividends``: paid on the shares held when the replay reaches their ex-date open.
    """
    ledger = MemoryLedger(initial_capital)
    initial_capital = float(initial_capital)
    if params is None:
        params = parameters_for(algorithm_class, None, algorithm_type=algorithm_type)
    points = decision_points(series.timestamp, first) if points is None else points
    decided_at = _stamps(points.minutes + MINUTE).tolist()  # plain str, as live passes
    fill_times = _stamps(series.timestamp[points.index + 1]).tolist()
    bar_times = _stamps(series.timestamp[points.index]).tolist()
    ages, same_sessions = points.age.tolist(), points.same_session.tolist()
    opens, closes = series.open.tolist(), series.close.tolist()
    refused: list[tuple[str, str]] = []
    asked, needed = object(), 0  # the last get_data_requirements answer (none yet) and its validated bars
    collecting = gc.isenabled()
    gc.disable()  # the loop makes no reference cycles; the collector's passes only cost time
    bar_starts = _stamps(points.minutes).tolist()  # the minute each decision is taken in
    due = list(sorted(dividends, key=lambda d: d.ex_open))
    started, cpu_started = time.perf_counter(), time.process_time()
    done = 0
    current_time = ""
    history, cash, position = ledger.history, ledger.uninvested_cash, 0  # change only when a trade is recorded
    window, has_params = series.window, bool(params)
    asks_each_minute = requirements_vary(algorithm_class)
    try:
        for k, i in enumerate(points.index.tolist()):
            while due and due[0].ex_open <= bar_starts[k]:
                ledger.receive(due.pop(0))
                cash = ledger.uninvested_cash
            try:  # instantiate(), inlined: this loop runs once per bar
                algorithm = algorithm_class(ticker, initial_capital)
                if has_params:
                    algorithm.params = params
            except Exception:  # noqa: BLE001 - instantiate() raises the AlgorithmError that says why
                algorithm = instantiate(algorithm_class, ticker, initial_capital, algorithm_type=algorithm_type,
                                        params=params)
            current_time = decided_at[k]
            if asks_each_minute or not needed:
                try:
                    raw = algorithm.get_data_requirements(current_time)
                except Exception as exc:  # noqa: BLE001 - user code
                    raise AlgorithmError(f"get_data_requirements raised {type(exc).__name__}: {exc}",
                                         algorithm_type) from exc
                if raw != asked:  # same answer as last minute: already validated
                    needed = requirements_of(algorithm, current_time, algorithm_type=algorithm_type)["bars"]
                    asked = raw
            # decide(), inlined: the window holds exactly ``needed`` bars once there are that many
            # (fewer: decide() holds, waiting for data, and calls nothing), and a plain hold, the
            # answer of most minutes, is accepted and records nothing, so it is not checked further.
            if i >= needed - 1:
                try:
                    raw = algorithm.on_data(window(i + 1, needed), history)
                except Exception as exc:  # noqa: BLE001 - user code
                    raise on_data_error(exc, algorithm_type) from exc
                if plain_hold(raw) is None:
                    checked = check_answer(raw, position=position, uninvested_cash=cash, price=closes[i],
                                           price_age=PriceAge(bar_times[k], ages[k], same_sessions[k]),
                                           max_price_age=max_price_age)
                    if checked.action != "hold":  # accepted buy or sell (a refusal is always a hold)
                        ledger.record(Trade(fill_times[k], checked.action, checked.shares, opens[i + 1],
                                            current_time, checked.reason))
                        history, cash, position = ledger.history, ledger.uninvested_cash, ledger.shares
                    elif not checked.accepted:
                        refused.append((current_time, checked.reason))
            if progress is not None and k - done >= PROGRESS_CHUNK:
                progress(k - done)
                done = k
    except AlgorithmError as exc:
        raise AlgorithmError(f"after the bar ending {current_time}: {exc.message}", algorithm_type) from exc
    finally:
        if collecting:
            gc.enable()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    if progress is not None:
        progress(len(points) - done)
    final_price = closes[-1]
    return BacktestResult(
        algorithm_type=algorithm_type, ticker=ticker, initial_capital=float(initial_capital),
        bars=len(series) - first, decisions=len(points), seconds=seconds, trades=ledger.trades,
        final_price=final_price, final_shares=ledger.shares, final_value=to_cents(ledger.value(final_price)),
        refused=refused, first_bar=series.window(first + 1, 1).last_timestamp or "",
        last_bar=series.window(len(series), 1).last_timestamp or "", parameters=dict(params),
        dividends=ledger.dividends, cpu_seconds=cpu_seconds)


def run_backtest(algorithm_type: str, ticker: str, start: str, end: str, capital: float, *,
                 conn: sqlite3.Connection, progress: bool = False, parameters: Optional[dict] = None,
                 directory: Optional[Path] = None,
                 dividends: tuple[Dividend, ...] = (),
                 max_price_age: int = DEFAULT_MAX_PRICE_AGE) -> tuple[BacktestResult, BarSeries, int]:
    """Load once, replay, and return (result, series, first index in range) for reports and plots.

    ``parameters``: ``{name: value}`` checked against the algorithm's declaration (others: defaults).
    ``dividends``: cash dividends to pay during the replay (``--dividends``).
    ``max_price_age``: market minutes after which a bar is too old to size a buy (as live).
    """
    if not (capital > 0) or capital == float("inf"):
        raise BacktestError(f"capital must be a positive amount, got {capital}")
    algorithm_class = load_algorithm_class(algorithm_type, directory)
    params = parameters_for(algorithm_class, parameters, algorithm_type=algorithm_type)
    probe = instantiate(algorithm_class, ticker, capital, algorithm_type=algorithm_type, params=params)
    warmup = requirements_of(probe, start, algorithm_type=algorithm_type)["bars"]
    series, first = load_series(conn, ticker, start, end, warmup)
    points = decision_points(series.timestamp, first)
    bar = _progress_bar(len(points), enabled=progress)
    try:
        result = replay(algorithm_class, series, first, ticker=ticker, initial_capital=capital,
                        algorithm_type=algorithm_type, points=points, params=params,
                        max_price_age=max_price_age, progress=bar.update if bar is not None else None,
                        dividends=tuple(dividends))
    finally:
        if bar is not None:
            bar.close()
    return result, series, first


def _progress_bar(total: int, *, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="bar", unit_scale=True, desc="replay", file=sys.stderr, leave=False)


# --------------------------------------------------------------------------- report


def equity_curve(result: BacktestResult, series: BarSeries, first: int) -> np.ndarray:
    """The card's value at every bar close in range (shares x close + uninvested cash)."""
    times = series.timestamp[first:]
    closes = series.close[first:]
    shares = np.zeros(len(times))
    invested = np.zeros(len(times))
    fill_index = np.searchsorted(times, np.array([t.timestamp.rstrip("Z") for t in result.trades],
                                                 dtype="datetime64[s]"))
    for trade, index in zip(result.trades, fill_index):
        sign = 1 if trade.side == "buy" else -1
        shares[index] += sign * trade.shares
        invested[index] += sign * trade.shares * trade.price
    paid_index = np.searchsorted(times, np.array([d.timestamp.rstrip("Z") for d in result.dividends],
                                                 dtype="datetime64[s]"))
    for paid, index in zip(result.dividends, paid_index):
        invested[index] -= paid.cash  # a dividend is cash back to the card
    return value_from_totals(np.cumsum(shares), np.cumsum(invested), closes, result.initial_capital)


def format_report(result: BacktestResult, *, max_trades: int | None = None) -> str:
    lines = [f"{result.algorithm_type} on {result.ticker}: {result.bars:,} bars "
             f"{result.first_bar} .. {result.last_bar}, capital ${result.initial_capital:,.2f}"]
    if result.parameters:
        lines.append("parameters    " + ", ".join(f"{k}={v}" for k, v in result.parameters.items()))
    lines.append("")
    if result.trades:
        lines.append(f"{'filled at':<21} {'side':<4} {'shares':>7} {'price':>10} {'amount':>12}  reason")
        shown = result.trades if max_trades is None else result.trades[:max_trades]
        for t in shown:
            lines.append(f"{t.timestamp:<21} {t.side:<4} {t.shares:>7,} {t.price:>10.2f} "
                         f"{t.shares * t.price:>12,.2f}  {t.reason}")
        if len(shown) < len(result.trades):
            lines.append(f"... {len(result.trades) - len(shown):,} more trades")
    else:
        lines.append("no trades")
    if result.refused:
        lines += ["", f"{len(result.refused):,} decisions refused by the checker, first: "
                      f"{result.refused[0][0]} {result.refused[0][1]}"]
    for paid in result.dividends:
        lines.append(f"{paid.timestamp:<21} dividend ${paid.rate:g}/share on {paid.shares:,} shares: "
                     f"+${paid.cash:,.2f}")
    pct = result.pnl / result.initial_capital * 100
    lines += ["",
              f"trades        {len(result.trades):,}",
              f"final shares  {result.final_shares:,} at ${result.final_price:,.2f}",
              f"final value   ${result.final_value:,.2f}"
              + (f" (dividends ${sum(d.cash for d in result.dividends):,.2f})" if result.dividends else ""),
              f"P&L           {'+' if result.pnl >= 0 else '-'}${abs(result.pnl):,.2f} ({pct:+.2f}%)",
              f"bars          {result.bars:,} ({result.decisions:,} decisions)",
              f"replay        {result.seconds:.2f} s, {result.bars_per_second:,.0f} bars/s"]
    return "\n".join(lines)


def write_png(path: Path, result: BacktestResult, series: BarSeries, first: int) -> None:
    """Equity curve with buy/sell markers; needs matplotlib (pip install -r bench/requirements.txt)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BacktestError("--png needs matplotlib, which is not part of the runtime set: "
                            ".venv/bin/pip install -r bench/requirements.txt") from None
    times = series.timestamp[first:].astype("datetime64[s]")
    equity = equity_curve(result, series, first)
    figure, axis = plt.subplots(figsize=(12, 5))
    axis.plot(times, equity, linewidth=0.8, color="black", label="card value")
    for side, marker, color in (("buy", "^", "green"), ("sell", "v", "red")):
        stamps = np.array([t.timestamp.rstrip("Z") for t in result.trades if t.side == side], dtype="datetime64[s]")
        index = np.searchsorted(times, stamps)
        axis.scatter(stamps, equity[index], marker=marker, color=color, s=18, label=side, zorder=3)
    axis.set_title(f"{result.algorithm_type} {result.ticker}: P&L ${result.pnl:,.2f}")
    axis.set_ylabel("value ($)")
    axis.legend(loc="best")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --------------------------------------------------------------------------- CLI


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not the usage block
        self.exit(2, f"error: {message} (see python -m scripts.backtest --help)\n")


def _minutes(raw: str) -> int:
    if not (raw.strip().isascii() and raw.strip().isdigit()):
        raise argparse.ArgumentTypeError(f"must be a whole number of minutes, got {raw!r}")
    return int(raw)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m scripts.backtest",
                                     description="Replay an algorithm over minute bars in stocks.db.")
    parser.add_argument("algorithm", help="algorithm type: a file name in algorithms/ (e.g. sma_crossover)")
    parser.add_argument("ticker", help="symbol with bars in stocks.db, e.g. AAPL")
    parser.add_argument("--start", required=True, help="first trading day, YYYY-MM-DD (New York)")
    parser.add_argument("--end", required=True, help="last trading day, YYYY-MM-DD (New York)")
    parser.add_argument("--capital", type=float, default=10_000.0, help="the card's initial capital (default 10000)")
    parser.add_argument("--max-price-age", type=_minutes, default=DEFAULT_MAX_PRICE_AGE,
                        help="market minutes after which a bar is too old to size a buy "
                             f"(default {DEFAULT_MAX_PRICE_AGE}, as AUTOTRADER_MAX_PRICE_AGE_MINUTES live)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter the algorithm declares, e.g. --param fast=10 (repeatable)")
    parser.add_argument("--png", type=Path, help="write the equity curve with trade markers (needs matplotlib)")
    parser.add_argument("--db", type=Path, help="stocks.db path (default: AUTOTRADER_STOCKS_DB or database/stocks.db)")
    parser.add_argument("--max-trades", type=int, default=200, help="trades listed (default 200, 0 for all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--dividends", action="store_true",
                        help="pay the ticker's cash dividends (read from the data API, ALPACA_* settings) "
                             "at each ex-date open")
    return parser


def _known(name: str) -> str:
    names = ", ".join(info.name for info in available_algorithms()) or "none"
    return f"unknown algorithm {name!r}; available: {names}"


def cli_parameters(algorithm_type: str, assignments: list[str], directory: Optional[Path] = None) -> dict:
    """``--param name=value`` texts as checked values; BacktestError (one line) when one does not fit."""
    if not assignments:
        return {}
    specs = class_parameters(load_algorithm_class(algorithm_type, directory))
    try:
        return parse_assignments(specs, assignments)
    except ParameterError as exc:
        raise BacktestError(str(exc)) from None


def read_dividends(ticker: str, start: str, end: str) -> tuple[Dividend, ...]:
    """``--dividends``: the ticker's cash dividends in the range, and the splits since (to restate them)."""
    from database import corporate_actions_pull
    from database.historical_pull import PullError
    from shared.config import ConfigError, Settings

    first = market_calendar.parse_utc(start).tz_convert("America/New_York").date()
    from shared.clock import computer_now  # a shell tool: "today" only bounds the look-up

    today = market_calendar.parse_utc(computer_now()).tz_convert("America/New_York").date()
    try:
        client = corporate_actions_pull.actions_client(Settings.from_env(os.environ).broker)
        actions = corporate_actions_pull.fetch_corporate_actions(client, [ticker], first, max(first, today))
    except (PullError, ConfigError) as exc:
        raise BacktestError(f"--dividends: {exc}") from None
    last = market_calendar.parse_utc(end).tz_convert("America/New_York").strftime("%Y-%m-%d")
    return tuple(d for d in dividends_from_actions(actions) if d.ex_open[:10] <= last)


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.max_trades < 0:
            raise BacktestError(f"--max-trades must be 0 (all) or more, got {args.max_trades}")
        start, end = day_bounds(parse_day(args.start, "start"), parse_day(args.end, "end"))
        if args.png is not None and not args.png.parent.exists():
            raise BacktestError(f"cannot write {args.png}: folder {args.png.parent} does not exist")
        ticker = args.ticker.strip().upper()
        parameters = cli_parameters(args.algorithm, args.param)
        dividends = read_dividends(ticker, start, end) if args.dividends else ()
        conn = db_manager.get_connection(args.db, read_only=True)
        try:
            result, series, first = run_backtest(args.algorithm, ticker, start, end, args.capital, conn=conn,
                                                 progress=not args.no_progress and sys.stderr.isatty(),
                                                 parameters=parameters, dividends=dividends,
                                                 max_price_age=args.max_price_age)
        finally:
            conn.close()
        print(format_report(result, max_trades=args.max_trades or None))
        if args.png is not None:
            write_png(args.png, result, series, first)
            print(f"equity curve written to {args.png}")
    except AlgorithmLoadError as exc:
        message = _known(args.algorithm) if exc.message.startswith("unknown algorithm") else exc.message
        print(f"error: {message}", file=sys.stderr)
        return 2
    except (BacktestError, AlgorithmError, FileNotFoundError, sqlite3.Error, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1 if not isinstance(exc, BacktestError) else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
