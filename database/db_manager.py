"""All SQL for stocks.db: minute bars in, windows of bars and latest prices out.

Functions take an explicit connection from ``get_connection``. Timestamps are bar-start UTC
strings ("YYYY-MM-DDTHH:MM:SSZ"), which sort chronologically as text, so every window query is
a range scan of the (ticker, timestamp) primary key.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional

if TYPE_CHECKING:  # imported where used: the API reads prices and charts without pandas or numpy
    import numpy as np
    import pandas as pd

from database.market_calendar import to_utc_string
from shared.config import DatabasePaths
from shared.sqlite import open_database

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
_BAR_FIELDS = ("ticker", "timestamp", "open", "high", "low", "close", "volume", "vwap", "trade_count")


def default_db_path() -> Path:
    """stocks.db's path: ``AUTOTRADER_STOCKS_DB`` if set, else beside this file (``shared.config``)."""
    return DatabasePaths.from_env(os.environ).stocks_db


def get_connection(db_path: str | Path | None = None, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection to an existing stocks.db (autocommit; ``read_only`` never takes a write lock).

    Bars lost to a power cut are fetched again by the start-up backfill: no fsync per commit.
    """
    return open_database(Path(db_path) if db_path else default_db_path(), what="stocks database",
                         create_with="python -m database.create_stocks_db", durability="NORMAL",
                         read_only=read_only)


def _bar_row(bar: Mapping[str, Any]) -> tuple:
    missing = [f for f in ("ticker", "timestamp", "open", "high", "low", "close") if bar.get(f) is None]
    if missing:
        raise ValueError(f"bar is missing {', '.join(missing)}: {dict(bar)!r}")
    return (
        str(bar["ticker"]).upper(),
        to_utc_string(bar["timestamp"]),
        float(bar["open"]), float(bar["high"]), float(bar["low"]), float(bar["close"]),
        int(bar.get("volume") or 0),
        None if bar.get("vwap") is None else float(bar["vwap"]),
        None if bar.get("trade_count") is None else int(bar["trade_count"]),
    )


def upsert_bars(conn: sqlite3.Connection, bars: Iterable[Mapping[str, Any]]) -> int:
    """Insert bars, replacing any stored bar of the same ticker and minute; returns the count.

    A re-delivered or "updated" bar replaces the row, so re-running a pull never duplicates.
    All rows are written in one transaction.
    """
    rows = [_bar_row(b) for b in bars]
    if not rows:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            f"INSERT OR REPLACE INTO bars ({', '.join(_BAR_FIELDS)}) VALUES ({', '.join('?' * len(_BAR_FIELDS))})",
            rows,
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return len(rows)


def _frame(rows: List[tuple]) -> pd.DataFrame:
    """Rows of (timestamp, open, high, low, close, volume), oldest first, as a UTC-indexed frame."""
    import numpy as np
    import pandas as pd

    if not rows:
        index = pd.DatetimeIndex([], tz="UTC", name="timestamp")
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in BAR_COLUMNS}, index=index)
    stamps, *columns = zip(*rows)
    index = pd.DatetimeIndex(pd.to_datetime(stamps, format="%Y-%m-%dT%H:%M:%SZ", utc=True), name="timestamp")
    data = {name: np.asarray(col, dtype="float64") for name, col in zip(BAR_COLUMNS, columns)}
    return pd.DataFrame(data, index=index)


def _until(until: Optional[str]) -> str:
    """The newest bar start a "last bars" read may return: ``until``, or any (None)."""
    return to_utc_string(until) if until is not None else "9999-12-31T23:59:59Z"


def get_last_bars(conn: sqlite3.Connection, ticker: str, count: int, until: Optional[str] = None) -> pd.DataFrame:
    """The last ``count`` bars of ``ticker`` starting at or before ``until`` (default: all), oldest first."""
    if count <= 0:
        return _frame([])
    bound = _until(until)
    rows = conn.execute(
        "SELECT timestamp, open, high, low, close, volume FROM bars"
        " WHERE ticker = ? AND timestamp <= ? ORDER BY timestamp DESC LIMIT ?",
        (ticker.upper(), bound, int(count)),
    ).fetchall()
    return _frame([tuple(r) for r in reversed(rows)])


def get_bars_between(conn: sqlite3.Connection, ticker: str, start: str, end: str) -> pd.DataFrame:
    """Every bar of ``ticker`` with start <= timestamp <= end, oldest first, in one query."""
    rows = conn.execute(
        "SELECT timestamp, open, high, low, close, volume FROM bars"
        " WHERE ticker = ? AND timestamp BETWEEN ? AND ? ORDER BY timestamp",
        (ticker.upper(), to_utc_string(start), to_utc_string(end)),
    ).fetchall()
    return _frame([tuple(r) for r in rows])


def get_bar_arrays(conn: sqlite3.Connection, ticker: str, start: str, end: str) -> Dict[str, np.ndarray]:
    """Every bar of ``ticker`` with start <= timestamp <= end as numpy columns, oldest first.

    The backtest's one bulk read: SQLite converts the timestamps to epoch seconds, so no string is
    parsed in Python (~3x faster than ``get_bars_between``). ``timestamp`` is ``datetime64[s]``
    (UTC); open/high/low/close/volume are float64.
    """
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples straight into numpy
    rows = cursor.execute(
        f"SELECT {_EPOCH_COLUMNS} FROM bars WHERE ticker = ? AND timestamp BETWEEN ? AND ? ORDER BY timestamp",
        (ticker.upper(), to_utc_string(start), to_utc_string(end)),
    ).fetchall()
    return _arrays(rows)


def get_last_bar_arrays(conn: sqlite3.Connection, ticker: str, count: int,
                        until: Optional[str] = None) -> Dict[str, np.ndarray]:
    """The last ``count`` bars of ``ticker`` starting at or before ``until`` as numpy columns,
    oldest first (as ``get_bar_arrays``): what the live cycle hands the algorithms every minute,
    without building a DataFrame per ticker."""
    rows: list = []
    if count > 0:
        cursor = conn.cursor()
        cursor.row_factory = None
        rows = cursor.execute(
            f"SELECT {_EPOCH_COLUMNS} FROM bars WHERE ticker = ? AND timestamp <= ? ORDER BY timestamp DESC LIMIT ?",
            (ticker.upper(), _until(until), int(count)),
        ).fetchall()
        rows.reverse()
    return _arrays(rows)


_EPOCH_COLUMNS = "CAST(strftime('%s', timestamp) AS INTEGER), " + ", ".join(BAR_COLUMNS)


def _arrays(rows: List[tuple]) -> Dict[str, np.ndarray]:
    """Rows of (epoch seconds, open, high, low, close, volume) as numpy columns."""
    import numpy as np

    table = np.array(rows, dtype="float64").reshape(len(rows), 1 + len(BAR_COLUMNS))
    columns = {name: np.ascontiguousarray(table[:, i + 1]) for i, name in enumerate(BAR_COLUMNS)}
    return {"timestamp": table[:, 0].astype("int64").astype("datetime64[s]"), **columns}


_SAMPLED_CLOSES_SQL = """
SELECT timestamp, close, n FROM (
    SELECT timestamp, close, ROW_NUMBER() OVER (ORDER BY timestamp) - 1 AS i, COUNT(*) OVER () AS n
    FROM bars WHERE ticker = :ticker AND timestamp BETWEEN :start AND :end
) WHERE i = n - 1 OR i % (CASE WHEN n <= :points THEN 1 ELSE (n + :points - 2) / (:points - 1) END) = 0
ORDER BY timestamp
"""


def get_sampled_closes(conn: sqlite3.Connection, ticker: str, start: str, end: str,
                       max_points: int) -> tuple[int, List[tuple[str, float]]]:
    """(number of bars in [start, end], at most ``max_points`` of their (timestamp, close)).

    For charts: every k-th bar plus the last one, thinned inside SQLite in one statement, so a
    year of minutes returns a few hundred rows instead of ~100,000. ``max_points`` >= 2.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    cursor = conn.cursor()
    cursor.row_factory = None
    rows = cursor.execute(_SAMPLED_CLOSES_SQL, {"ticker": ticker.upper(), "start": to_utc_string(start),
                                                "end": to_utc_string(end), "points": int(max_points)}).fetchall()
    return (int(rows[0][2]) if rows else 0), [(r[0], float(r[1])) for r in rows]


def get_latest_price(conn: sqlite3.Connection, ticker: str) -> Optional[Dict[str, Any]]:
    """``{"price": close, "timestamp": bar start}`` of the newest stored bar, or None."""
    row = conn.execute(
        "SELECT close, timestamp FROM bars WHERE ticker = ? ORDER BY timestamp DESC LIMIT 1", (ticker.upper(),)
    ).fetchone()
    return {"price": float(row["close"]), "timestamp": row["timestamp"]} if row else None


def get_latest_prices(conn: sqlite3.Connection, tickers: Iterable[str]) -> Dict[str, Optional[Dict[str, Any]]]:
    return {t.upper(): get_latest_price(conn, t) for t in set(tickers)}


def get_last_timestamp(conn: sqlite3.Connection, ticker: str) -> Optional[str]:
    latest = get_latest_price(conn, ticker)
    return latest["timestamp"] if latest else None


def get_market_minutes(conn: sqlite3.Connection, start: str, end: str) -> List[str]:
    """Regular-session minutes with start <= minute <= end, from the timestamps table."""
    rows = conn.execute(
        "SELECT timestamp FROM timestamps WHERE timestamp BETWEEN ? AND ? ORDER BY timestamp",
        (to_utc_string(start), to_utc_string(end)),
    ).fetchall()
    return [r[0] for r in rows]


def find_gaps(conn: sqlite3.Connection, ticker: str, start: str, end: str) -> List[str]:
    """Market minutes in [start, end] for which ``ticker`` has no stored bar."""
    rows = conn.execute(
        "SELECT t.timestamp FROM timestamps t"
        " WHERE t.timestamp BETWEEN ? AND ?"
        " AND NOT EXISTS (SELECT 1 FROM bars b WHERE b.ticker = ? AND b.timestamp = t.timestamp)"
        " ORDER BY t.timestamp",
        (to_utc_string(start), to_utc_string(end), ticker.upper()),
    ).fetchall()
    return [r[0] for r in rows]


def count_bars(conn: sqlite3.Connection, ticker: str) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM bars WHERE ticker = ?", (ticker.upper(),)).fetchone()[0])


def list_tickers(conn: sqlite3.Connection) -> List[str]:
    """Tickers with at least one stored bar (a skip-scan over the primary key)."""
    tickers, last = [], ""
    while True:
        row = conn.execute("SELECT ticker FROM bars WHERE ticker > ? ORDER BY ticker LIMIT 1", (last,)).fetchone()
        if row is None:
            return tickers
        last = row[0]
        tickers.append(last)


# --------------------------------------------------------------------------- daily closes (daily P&L)


def get_daily_closes(conn: sqlite3.Connection, ticker: str, start_day: str, end_day: str) -> Dict[str, float]:
    """``{"YYYY-MM-DD": close of the day's last stored bar}`` for days start_day..end_day (UTC dates).

    A regular session lies within one UTC date, so the UTC date is the trading day.
    """
    # SQLite takes a bare column (close) from the row that holds the MAX(): the day's last bar.
    rows = conn.execute(
        "SELECT substr(timestamp, 1, 10) AS day, MAX(timestamp), close FROM bars"
        " WHERE ticker = ? AND timestamp >= ? AND timestamp <= ? GROUP BY day ORDER BY day",
        (ticker.upper(), f"{start_day}T00:00:00Z", f"{end_day}T23:59:59Z"),
    ).fetchall()
    return {r[0]: float(r[2]) for r in rows}


# --------------------------------------------------------------------------- checked minutes
# A thin ticker has no bar for minutes without a trade: the per-ticker watermark says up to which
# minute the source was asked, so empty minutes are not asked for
# again and "no trade" can be told from "missing".


def get_checked_through(conn: sqlite3.Connection, ticker: str) -> Optional[str]:
    row = conn.execute("SELECT checked_through FROM checked_minutes WHERE ticker = ?", (ticker.upper(),)).fetchone()
    return row[0] if row else None


def set_checked_through(conn: sqlite3.Connection, ticker: str, minute: str) -> None:
    """Move ``ticker``'s watermark forward to ``minute`` (never back)."""
    conn.execute(
        "INSERT INTO checked_minutes (ticker, checked_through) VALUES (?, ?)"
        " ON CONFLICT (ticker) DO UPDATE SET checked_through = excluded.checked_through"
        " WHERE excluded.checked_through > checked_minutes.checked_through",
        (ticker.upper(), to_utc_string(minute)),
    )


def minute_coverage(conn: sqlite3.Connection, ticker: str, start: str, end: str) -> Dict[str, Any]:
    """Market minutes in [start, end] of ``ticker``: with a bar, without a trade (checked, no bar)
    and missing (not checked yet, no bar), plus the watermark."""
    checked = get_checked_through(conn, ticker) or ""
    row = conn.execute(
        "SELECT COUNT(*), COUNT(b.timestamp),"
        " SUM(b.timestamp IS NULL AND t.timestamp <= :checked), SUM(b.timestamp IS NULL AND t.timestamp > :checked)"
        " FROM timestamps t LEFT JOIN bars b ON b.ticker = :ticker AND b.timestamp = t.timestamp"
        " WHERE t.timestamp BETWEEN :start AND :end",
        {"ticker": ticker.upper(), "checked": checked, "start": to_utc_string(start), "end": to_utc_string(end)},
    ).fetchone()
    return {"minutes": int(row[0]), "bars": int(row[1]), "no_trade": int(row[2] or 0), "missing": int(row[3] or 0),
            "checked_through": checked or None}

# --------------------------------------------------------------------------- corporate actions (splits)

_ADJUSTMENTS_TABLE = """CREATE TABLE IF NOT EXISTS bar_adjustments (action_id TEXT PRIMARY KEY, ticker TEXT NOT NULL,
    ex_date TEXT NOT NULL, price_factor REAL NOT NULL, rows_adjusted INTEGER NOT NULL, adjusted_at TEXT NOT NULL)"""


def adjust_bars_for_split(conn: sqlite3.Connection, action_id: str, ticker: str, ex_date: str, before: str,
                          price_factor: float, adjusted_at: str) -> Optional[int]:
    """Scale ``ticker``'s bars before ``before`` (the ex-date open) by ``price_factor`` (volume by its
    inverse), so a split is no price move; returns the rows scaled, or None if this split was already
    applied. One transaction: after a crash either every bar is scaled and the split recorded, or none.
    """
    if not price_factor > 0:
        raise ValueError(f"price_factor must be positive, got {price_factor!r}")
    conn.execute(_ADJUSTMENTS_TABLE)  # stocks.db files created before this table existed
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM bar_adjustments WHERE action_id = ?", (action_id,)).fetchone():
            conn.execute("ROLLBACK")
            return None
        cur = conn.execute(
            "UPDATE bars SET open = ROUND(open * :f, 4), high = ROUND(high * :f, 4), low = ROUND(low * :f, 4),"
            " close = ROUND(close * :f, 4), vwap = ROUND(vwap * :f, 4), volume = CAST(ROUND(volume / :f) AS INTEGER)"
            " WHERE ticker = :ticker AND timestamp < :before",
            {"f": float(price_factor), "ticker": ticker, "before": before})
        conn.execute("INSERT INTO bar_adjustments (action_id, ticker, ex_date, price_factor, rows_adjusted, adjusted_at)"
                     " VALUES (?, ?, ?, ?, ?, ?)", (action_id, ticker, ex_date, float(price_factor), cur.rowcount,
                                                     adjusted_at))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return cur.rowcount


def note_split_reflected(conn: sqlite3.Connection, action_id: str, ticker: str, ex_date: str, price_factor: float,
                         noted_at: str) -> None:
    """Bars fetched split-adjusted already reflect this split: record it without scaling anything."""
    conn.execute(_ADJUSTMENTS_TABLE)
    conn.execute("INSERT OR IGNORE INTO bar_adjustments (action_id, ticker, ex_date, price_factor, rows_adjusted,"
                 " adjusted_at) VALUES (?, ?, ?, ?, 0, ?)", (action_id, ticker, ex_date, float(price_factor), noted_at))


def get_bar_adjustments(conn: sqlite3.Connection, ticker: str) -> List[Dict[str, Any]]:
    """Splits applied to ``ticker``'s stored bars, oldest ex-date first (none in an older stocks.db)."""
    try:
        rows = conn.execute("SELECT * FROM bar_adjustments WHERE ticker = ? ORDER BY ex_date", (ticker,)).fetchall()
    except sqlite3.OperationalError:  # no such table yet: nothing was adjusted
        return []
    return [dict(r) for r in rows]


def get_first_timestamp(conn: sqlite3.Connection, ticker: str) -> Optional[str]:
    row = conn.execute("SELECT MIN(timestamp) AS t FROM bars WHERE ticker = ?", (ticker,)).fetchone()
    return row["t"] if row else None


# --------------------------------------------------------------- retention: pruning old minute bars

def nth_newest_timestamp(conn: sqlite3.Connection, ticker: str, n: int) -> Optional[str]:
    """The start of ``ticker``'s ``n``-th newest stored bar (1 = newest), or None if it has fewer."""
    row = conn.execute("SELECT timestamp FROM bars WHERE ticker = ? ORDER BY timestamp DESC LIMIT 1 OFFSET ?",
                       (ticker.upper(), max(0, int(n) - 1))).fetchone()
    return row[0] if row else None


def prune_bars(conn: sqlite3.Connection, ticker: str, before: str, *, batch_rows: int = 5000,
               keep_going: Callable[[], bool] = lambda: True) -> int:
    """Delete ``ticker``'s bars older than ``before``, oldest first, ``batch_rows`` per transaction.

    Small transactions keep the WAL (and the SD-card writes of one commit) small and never hold
    the write lock long; ``keep_going`` is asked between them (a stopping daemon). Returns rows deleted.
    """
    symbol, bound, deleted = ticker.upper(), to_utc_string(before), 0
    while keep_going():
        row = conn.execute("SELECT timestamp FROM bars WHERE ticker = ? AND timestamp < ? ORDER BY timestamp"
                           " LIMIT 1 OFFSET ?", (symbol, bound, max(0, int(batch_rows) - 1))).fetchone()
        if row is None and conn.execute("SELECT 1 FROM bars WHERE ticker = ? AND timestamp < ? LIMIT 1",
                                        (symbol, bound)).fetchone() is None:
            break  # nothing (left) to delete: no transaction, nothing written
        conn.execute("BEGIN IMMEDIATE")
        try:
            if row is None:
                cursor = conn.execute("DELETE FROM bars WHERE ticker = ? AND timestamp < ?", (symbol, bound))
            else:
                cursor = conn.execute("DELETE FROM bars WHERE ticker = ? AND timestamp <= ?", (symbol, row[0]))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        deleted += cursor.rowcount
        if row is None:
            break
    return deleted


# --------------------------------------------------------------------------- stream gaps after a reconnect


def rewind_checked_through(conn: sqlite3.Connection, ticker: str, minute: str) -> None:
    """Move ``ticker``'s watermark back to ``minute`` if it is later: a dropped stream may have
    lost bars of minutes it had counted as watched."""
    conn.execute("UPDATE checked_minutes SET checked_through = ? WHERE ticker = ? AND checked_through > ?",
                 (to_utc_string(minute), ticker.upper(), to_utc_string(minute)))
