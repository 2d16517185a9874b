"""What an algorithm receives and may subclass: the bars window, the base class, typed errors.

An algorithm is one file ``algorithms/<algorithm_type>.py`` defining ``class Algorithm`` with
``__init__(ticker, initial_capital)``, ``get_data_requirements(current_time) -> {"bars": n}`` and
``on_data(bars, transaction_history) -> (action, shares)``. The framework hands it read-only data
(numpy views that cannot be written, a tuple of read-only transaction mappings), so nothing an
algorithm does can change the caller's state, and nothing has to be copied per minute.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from algorithms._shares import from_nano, quantity, to_nano  # noqa: F401 - quantity: for algorithms' share arithmetic

INTERFACE_VERSION = 1
BAR_COLUMNS = ("open", "high", "low", "close", "volume")
MAX_BARS = 100_000  # ~256 trading days of minutes: beyond that a requirement is a typo
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
HISTORY_KEYS = ("id", "type", "shares", "price", "timestamp")


class AlgorithmError(Exception):
    """An algorithm misbehaved (raised, returned nonsense requirements): isolate its card.

    Carries the algorithm type and card id when known, so the caller can log and skip one card.
    """

    def __init__(self, message: str, algorithm_type: str | None = None, card_id: Any = None):
        super().__init__(message)
        self.message = message
        self.algorithm_type = algorithm_type
        self.card_id = card_id

    def __reduce__(self):  # picklable, so a worker process can hand it back
        return (type(self), (self.message, self.algorithm_type, self.card_id))

    def __str__(self) -> str:
        where = []
        if self.card_id is not None:
            where.append(f"card {self.card_id}")
        if self.algorithm_type:
            where.append(self.algorithm_type)
        return f"{' '.join(where)}: {self.message}" if where else self.message


class AlgorithmLoadError(AlgorithmError):
    """An algorithm file cannot be used: unknown or refused name, syntax error, failing import,
    no usable ``Algorithm`` class. The message says what to fix."""


# --------------------------------------------------------------------------- bars


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only copy: never flips the flags of an array the caller still owns."""
    array = np.array(array, copy=True, order="C")
    array.flags.writeable = False
    return array


class Bars:
    """A window of completed minute bars, oldest first, newest last (``bars.close[-1]``).

    Columns are read-only numpy arrays: ``timestamp`` (``datetime64[s]``, bar start, UTC),
    ``open``, ``high``, ``low``, ``close``, ``volume`` (float64). ``bars.df`` builds a pandas
    DataFrame indexed by UTC timestamps on first use, for algorithms that prefer pandas.
    Building a ``Bars`` is a handful of slices, cheap enough for every minute of a backtest.
    """

    __slots__ = ("timestamp", "open", "high", "low", "close", "volume", "_df")

    def __init__(self, timestamp, open, high, low, close, volume):  # noqa: A002 - column names
        self.timestamp = timestamp
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self._df = None

    def __len__(self) -> int:
        return len(self.close)

    def __getitem__(self, column: str) -> np.ndarray:
        if column not in BAR_COLUMNS and column != "timestamp":
            raise KeyError(f"bars have no column {column!r}; columns: timestamp, {', '.join(BAR_COLUMNS)}")
        return getattr(self, column)

    def __repr__(self) -> str:
        if not len(self):
            return "Bars(empty)"
        return f"Bars({len(self)} bars, {self.first_timestamp} .. {self.last_timestamp})"

    def __getstate__(self):
        return {name: getattr(self, name) for name in ("timestamp",) + BAR_COLUMNS}

    def __setstate__(self, state):
        for name, value in state.items():
            setattr(self, name, _read_only(np.array(value)))
        self._df = None

    @property
    def first_timestamp(self) -> str | None:
        return _stamp(self.timestamp[0]) if len(self) else None

    @property
    def last_timestamp(self) -> str | None:
        """Start of the newest bar as "YYYY-MM-DDTHH:MM:SSZ" (None when empty)."""
        return _stamp(self.timestamp[-1]) if len(self) else None

    @property
    def df(self):
        """The window as a pandas DataFrame (a copy: writing to it changes nothing else)."""
        if self._df is None:
            import pandas as pd

            index = pd.DatetimeIndex(self.timestamp.astype("datetime64[ns]"), name="timestamp").tz_localize("UTC")
            self._df = pd.DataFrame({c: np.array(getattr(self, c)) for c in BAR_COLUMNS}, index=index)
        return self._df

    def tail(self, count: int) -> "Bars":
        """The newest ``count`` bars (views, no copy)."""
        if count >= len(self):
            return self
        start = len(self) - count
        return Bars(self.timestamp[start:], self.open[start:], self.high[start:], self.low[start:],
                    self.close[start:], self.volume[start:])

    @classmethod
    def from_columns(cls, timestamp: Iterable, open: Iterable, high: Iterable, low: Iterable,  # noqa: A002
                     close: Iterable, volume: Iterable | None = None) -> "Bars":
        """Bars from plain sequences (UTC timestamps as "...Z" strings, datetimes or datetime64)."""
        stamps = _to_datetime64(timestamp)
        columns = [np.asarray(c, dtype="float64") for c in (open, high, low, close)]
        vol = np.zeros(len(stamps)) if volume is None else np.asarray(volume, dtype="float64")
        lengths = {len(stamps), len(vol), *(len(c) for c in columns)}
        if len(lengths) != 1:
            raise ValueError(f"bar columns differ in length: {sorted(lengths)}")
        if len(stamps) > 1 and not (np.diff(stamps.astype("int64")) > 0).all():
            raise ValueError("bar timestamps must be strictly increasing (oldest first)")
        return cls(*(_read_only(a) for a in (stamps, *columns, vol)))

    @classmethod
    def from_frame(cls, frame) -> "Bars":
        """Bars from a DataFrame like ``db_manager.get_last_bars`` returns (UTC DatetimeIndex)."""
        index = frame.index
        if getattr(index, "tz", None) is None:
            if "timestamp" in frame.columns:
                index = frame["timestamp"]
            else:
                raise ValueError("bars frame needs a UTC DatetimeIndex or a 'timestamp' column")
        missing = [c for c in ("open", "high", "low", "close") if c not in frame.columns]
        if missing:
            raise ValueError(f"bars frame lacks column(s) {', '.join(missing)}")
        volume = frame["volume"].to_numpy() if "volume" in frame.columns else None
        return cls.from_columns(index, frame["open"].to_numpy(), frame["high"].to_numpy(),
                                frame["low"].to_numpy(), frame["close"].to_numpy(), volume)


def _to_datetime64(values: Iterable) -> np.ndarray:
    """UTC instants as naive ``datetime64[s]`` (numpy has no zones; UTC by convention here)."""
    import pandas as pd

    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[s]")
    index = pd.DatetimeIndex(pd.to_datetime(list(values) if not hasattr(values, "dtype") else values, utc=True))
    return index.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]")


def _stamp(value: np.datetime64) -> str:
    return str(value.astype("datetime64[s]")) + "Z"


class BarSeries:
    """A whole range of bars loaded once; ``window(end, count)`` slides over it without copying.

    The backtest builds one of these per run, so the per-minute ``Bars`` are views, never queries.
    """

    __slots__ = ("timestamp", "open", "high", "low", "close", "volume")

    def __init__(self, bars: Bars):
        for name in ("timestamp",) + BAR_COLUMNS:
            setattr(self, name, getattr(bars, name))

    def __len__(self) -> int:
        return len(self.close)

    def window(self, end: int, count: int) -> Bars:
        """Bars ``end - count`` .. ``end - 1`` (``end`` exclusive), views into the series.

        Each column is sliced when first read: most algorithms read one or two of the six.
        """
        start = end - count
        return _SeriesWindow(self, start if start > 0 else 0, end)


def _column(name: str) -> property:
    def read(self):
        return getattr(self._series, name)[self._start:self._end]
    return property(read, doc=f"the window's {name} column (a read-only view)")


class _SeriesWindow(Bars):
    """A ``Bars`` over a slice of a ``BarSeries`` whose columns are views made on access."""

    __slots__ = ("_series", "_start", "_end")
    timestamp, open, high, low, close, volume = (_column(c) for c in ("timestamp",) + BAR_COLUMNS)

    def __init__(self, series: "BarSeries", start: int, end: int):  # noqa: D107 - see BarSeries.window
        self._series, self._start, self._end = series, start, end
        self._df = None

    def __len__(self) -> int:
        return self._end - self._start


# --------------------------------------------------------------------------- time


def parse_utc(value: str | datetime) -> datetime:
    """A tz-aware UTC datetime from "YYYY-MM-DDTHH:MM:SSZ" or an aware datetime."""
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise ValueError(f"expected a UTC timestamp, got {value!r}")
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone; use UTC ('...Z')")
    return parsed.astimezone(timezone.utc)


def last_completed_bar_start(current_time: str | datetime) -> str:
    """Start of the newest bar that has closed by ``current_time``: the ``until`` for a bars query.

    At 14:31:00Z (or 14:31:05Z) the 14:30 bar is complete and the 14:31 bar is not.
    """
    now = parse_utc(current_time).replace(second=0, microsecond=0)
    return (now - timedelta(minutes=1)).strftime(TIMESTAMP_FORMAT)


# --------------------------------------------------------------------------- history


class TransactionHistory(tuple):
    """A card's transactions as algorithms see them: a tuple of read-only mappings, oldest first.

    ``shares`` is an int when whole, else a float of nine decimals at most: after a split whose
    ratio is not whole (3:2 on 5 shares: 7.5) or a reverse split (1:3 on 10: 3.333333333) the
    rows and the position carry the fraction, exactly as the ledger and the broker hold it.
    Carries the running totals (``shares``, ``invested``) so position and cash are O(1) however
    long the history; ``appended`` makes the next one without recomputing. The daemon gives the
    ledger's own totals (``totals``), so ``position`` is exactly what the card holds.
    """

    def __new__(cls, rows: Iterable[Mapping[str, Any]] = (), *, totals: tuple[Any, float] | None = None):
        history = super().__new__(cls, rows)
        nano, invested = (to_nano(totals[0]), totals[1]) if totals is not None else _sum_totals(history)
        object.__setattr__(history, "_totals", (nano, invested))
        return history

    def __setattr__(self, name, value):
        raise TypeError("the transaction history is read-only")

    def __delattr__(self, name):
        raise TypeError("the transaction history is read-only")

    def __reduce__(self):  # plain dicts travel with their totals; the receiver freezes them again
        return (_thaw, ([dict(row) for row in self], self.shares, self.invested))

    @property
    def shares(self) -> int | float:
        """Shares held after these transactions (a float only when a fraction is held)."""
        return from_nano(self._totals[0])

    @property
    def invested(self) -> float:
        """Net cash put into shares (buy costs minus sell proceeds, minus dividends received)."""
        return self._totals[1]

    def appended(self, row: Mapping[str, Any]) -> "TransactionHistory":
        frozen = MappingProxyType(dict(row))
        nano, invested = _sum_totals((frozen,))
        return TransactionHistory(self + (frozen,), totals=(from_nano(self._totals[0] + nano), self.invested + invested))


def _thaw(rows, shares, invested) -> TransactionHistory:
    return freeze_history(rows, totals=(shares, invested))


def freeze_history(transactions: Iterable[Mapping[str, Any]], *,
                   totals: tuple[Any, float] | None = None) -> TransactionHistory:
    """The history an algorithm sees: oldest first, read-only mappings of the documented keys.

    Accepts rows in any order (``system_db_manager.get_transactions`` returns newest first) and
    sorts by (timestamp, id). ``totals`` (shares, invested): the ledger's own figures for the card,
    used instead of summing the rows (the two agree except for a reverse split's rounding in the
    ninth decimal of restated rows; the ledger's are the card's)."""
    if isinstance(transactions, TransactionHistory) and totals is None:
        return transactions
    rows = []
    for row in transactions:
        entry = {key: row[key] for key in HISTORY_KEYS if key in row}
        entry["shares"] = quantity(entry["shares"])
        entry["price"] = float(entry["price"])
        rows.append(entry)
    rows.sort(key=lambda r: (r.get("timestamp") or "", r.get("id") or 0))
    return TransactionHistory((MappingProxyType(r) for r in rows), totals=totals)


def _sum_totals(rows: Iterable[Mapping[str, Any]]) -> tuple[int, float]:
    """(nano-shares held, net invested) of ``rows``: shares summed exactly."""
    nano, invested = 0, 0.0
    for row in rows:
        shares = row["shares"]
        amount = shares * row["price"]
        if row["type"] == "buy":
            nano += to_nano(shares)
            invested += amount
        else:
            nano -= to_nano(shares)
            invested -= amount
    return nano, invested


def history_totals(transaction_history: Iterable[Mapping[str, Any]]) -> tuple[int | float, float]:
    """(shares held, net invested cash) from a history: the ledger's formulas, in Python."""
    if isinstance(transaction_history, TransactionHistory):
        return transaction_history.shares, transaction_history.invested
    nano, invested = _sum_totals(transaction_history)
    return from_nano(nano), invested


# --------------------------------------------------------------------------- base class


class AlgorithmBase:
    """Optional base for ``class Algorithm``: stores ticker and capital, declares ``bars_needed``.

    Subclasses set ``bars_needed`` (or override ``get_data_requirements``) and implement
    ``on_data``. Algorithms are stateless between minutes: a fresh instance is made every time.
    """

    interface_version = INTERFACE_VERSION
    bars_needed: int = 1
    parameters: dict = {}  # {name: {"type", "default", "min"/"max" or "choices", "help"}}: see _params

    def __init__(self, ticker: str, initial_capital: float):
        self.ticker = ticker
        self.initial_capital = float(initial_capital)

    def __getattr__(self, name: str):
        """``self.params`` before the framework set it (an instance made by hand): the defaults."""
        if name == "params":
            from algorithms._params import declared

            return declared(type(self))[1]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_data_requirements(self, current_time) -> dict:
        return {"bars": self.bars_needed}

    def on_data(self, bars: Bars, transaction_history: Sequence[Mapping[str, Any]]):
        raise NotImplementedError("an Algorithm must implement on_data(bars, transaction_history)")

    # helpers every algorithm needs -----------------------------------------------------------
    def position(self, transaction_history) -> int | float:
        """Shares this card holds now: an int, or a float when it holds a fraction (7.5 after a 3:2
        split of 5). Selling exactly this sells everything, the fraction included."""
        return history_totals(transaction_history)[0]

    def uninvested_cash(self, transaction_history) -> float:
        """The card's allocation not currently in shares (initial capital minus net invested)."""
        return self.initial_capital - history_totals(transaction_history)[1]

    def affordable_shares(self, cash: float, price: float) -> int:
        """Whole shares ``cash`` buys at ``price`` (0 for a missing or non-positive price)."""
        if not (price > 0) or not math.isfinite(price) or cash <= 0:
            return 0
        return int(math.floor(cash / price + 1e-9))


def validate_requirements(requirements: Any) -> dict:
    """Check an algorithm's ``get_data_requirements`` answer; raise with what to fix."""
    if not isinstance(requirements, Mapping):
        raise ValueError(f"get_data_requirements must return a dict like {{'bars': 51}}, got {requirements!r}")
    unknown = sorted(set(requirements) - {"bars"})
    if unknown:
        raise ValueError(f"get_data_requirements returned unknown key(s) {unknown}; supported: 'bars'")
    count = requirements.get("bars")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= MAX_BARS:
        raise ValueError(f"requirements['bars'] must be an integer from 1 to {MAX_BARS}, got {count!r}")
    return {"bars": int(count)}
