"""SMA crossover: buy with the card's cash when SMA20 crosses above SMA50, sell everything when it crosses below.

The windows are parameters (``fast``, default 20; ``slow``, default 50); SMA20/SMA50 below stand for them.

Definitions (precise, because with cent prices the two averages are often exactly equal):
- spread(t) = SMA20(t) - SMA50(t) over closes; its sign is 0 (a tie) when
  |spread| <= TIE_TOLERANCE * |SMA50|, which absorbs float rounding, whatever the summation order.
- A cross up happens on bar t when sign(t) = +1 and the last non-zero sign before t is -1
  (a cross down: the reverse). Ties never fire and never reset the last sign.
- Statelessly, "crossed on this bar" needs SMA50 on this bar and the previous one: 51 bars.
  To see through ties on the previous bars we ask for TIE_LOOKBACK more (61 in all); a run of
  more than TIE_LOOKBACK ties in a row (never seen in practice) counts as no cross.
"""
from __future__ import annotations

import functools

import numpy as np

from algorithms._framework import AlgorithmBase

FAST = 20
SLOW = 50
TIE_LOOKBACK = 10
TIE_TOLERANCE = 1e-9


def rolling_mean(closes, period: int) -> np.ndarray:
    """Mean of the newest ``period`` closes at every bar (NaN until there are enough)."""
    values = np.asarray(closes, dtype="float64")
    out = np.full(len(values), np.nan)
    if len(values) >= period:
        sums = np.cumsum(np.concatenate([[0.0], values]))
        out[period - 1:] = (sums[period:] - sums[:-period]) / period
    return out


def crossover_signal(closes, fast: int = FAST, slow: int = SLOW) -> tuple[int, float, float]:
    """(+1 cross up / -1 cross down / 0 none, fast SMA, slow SMA) on the newest of ``closes``."""
    signal, _now, fast_sma, slow_sma = _cross(closes, fast, slow)
    return signal, fast_sma, slow_sma


def _cross(closes, fast: int, slow: int) -> tuple[int, int, float, float]:
    """(cross signal, sign of the newest spread, fast SMA, slow SMA).

    The four sums the usual minute needs (both windows on the newest bar and on the bar before)
    are one matrix-vector product: one C call instead of 50 floats added in Python (the rounding
    differs from a plain sum by ~1e-14, far inside TIE_TOLERANCE). A tie on the bar before (rare)
    is looked through bar by bar, at most TIE_LOOKBACK bars back.
    """
    values = closes if closes.__class__ is np.ndarray and closes.dtype is _FLOAT else \
        np.asarray(closes, dtype="float64")
    end = len(values)
    if values.ndim != 1 or end <= (fast if fast > slow else slow):
        return 0, 0, float("nan"), float("nan")
    fast_sum, slow_sum, fast_before, slow_before = _sum_weights(fast, slow, end).dot(values).tolist()
    fast_sma, slow_sma = fast_sum / fast, slow_sum / slow
    spread, tolerance = fast_sma - slow_sma, TIE_TOLERANCE * abs(slow_sma)  # _sign(), inlined
    if -tolerance <= spread <= tolerance:
        return 0, 0, fast_sma, slow_sma
    now = 1 if spread > 0 else -1
    before = _sign(fast_before / fast, slow_before / slow) or _sign_through_ties(values, fast, slow)
    return (now if before == -now else 0), now, fast_sma, slow_sma


_FLOAT = np.dtype("float64")


@functools.lru_cache(maxsize=64)
def _sum_weights(fast: int, slow: int, length: int) -> np.ndarray:
    """Rows of 0/1 that sum, over ``length`` closes: the fast and the slow window ending on the
    newest bar, then both ending on the bar before (read-only, made once per window shape)."""
    weights = np.zeros((4, length))
    weights[0, length - fast:] = 1.0
    weights[1, length - slow:] = 1.0
    weights[2, length - 1 - fast:length - 1] = 1.0
    weights[3, length - 1 - slow:length - 1] = 1.0
    weights.flags.writeable = False
    return weights


def _sign(fast_sma: float, slow_sma: float) -> int:
    """+1 / -1 for the fast average above / below the slow one, 0 for a tie."""
    spread, tolerance = fast_sma - slow_sma, TIE_TOLERANCE * abs(slow_sma)
    if -tolerance <= spread <= tolerance:
        return 0
    return 1 if spread > 0 else -1


def _sign_through_ties(values: np.ndarray, fast: int, slow: int) -> int:
    """After a tie on the bar before the newest: the sign on the newest earlier bar that is not a
    tie, at most TIE_LOOKBACK bars before the newest (0: only ties, or the window ends)."""
    closes = values.tolist()
    end = len(closes)
    for stop in range(end - 2, max(fast, slow, end - TIE_LOOKBACK - 1) - 1, -1):  # the windows end before ``stop``
        sign = _sign(sum(closes[stop - fast:stop]) / fast, sum(closes[stop - slow:stop]) / slow)
        if sign:
            return sign
    return 0


@functools.lru_cache(maxsize=None)  # a C-level lookup every minute; one entry per (fast, slow) pair
def _words(fast: int, slow: int) -> tuple[str, str, dict]:
    """The averages' names and the hold reasons for a pair of windows, built once per pair."""
    a, b = f"SMA{fast}", f"SMA{slow}"
    return a, b, {1: f"no cross: {a} above {b}", -1: f"no cross: {a} below {b}", 0: f"no cross: {a} level with {b}",
                  None: f"fast window {fast} is not shorter than slow window {slow}: never trades"}


@functools.lru_cache(maxsize=None)
def _hold_reason(fast: int, slow: int, sign: int | None) -> str:
    """Why there is no trade: the averages' order (``sign`` of the spread; None: unusable windows)."""
    return _words(fast, slow)[2][sign]


class Algorithm(AlgorithmBase):
    """SMA fast/slow crossover on minute closes, all-in / all-out."""

    parameters = {
        "fast": {"type": "int", "default": 20, "min": 2, "max": 200,
                 "help": "fast moving average, in minute bars (shorter than slow)"},
        "slow": {"type": "int", "default": 50, "min": 3, "max": 400, "help": "slow moving average, in minute bars"},
    }

    @property
    def bars_needed(self):
        """Slow + 1 bars to see a cross on the newest bar, plus TIE_LOOKBACK to look through ties
        (61 by default); AlgorithmBase answers ``get_data_requirements`` with it."""
        params = self.params
        fast, slow = params["fast"], params["slow"]
        return (fast if fast > slow else slow) + 1 + TIE_LOOKBACK

    def on_data(self, bars, transaction_history):
        params = self.params
        fast, slow = params["fast"], params["slow"]
        if fast >= slow:
            return "hold", 0, _hold_reason(fast, slow, None)
        signal, now, fast_sma, slow_sma = _cross(bars.close, fast, slow)
        if not signal:  # most minutes
            return "hold", 0, _hold_reason(fast, slow, now)
        fast_name, slow_name, _holds = _words(fast, slow)
        if signal > 0:
            price = float(bars.close[-1])
            shares = self.affordable_shares(self.uninvested_cash(transaction_history), price)
            why = f"{fast_name} {fast_sma:.4f} crossed above {slow_name} {slow_sma:.4f}"
            return ("buy", shares, why) if shares > 0 else ("hold", 0, why + ", but the cash buys no share")
        held = self.position(transaction_history)  # signal < 0: a cross down
        why = f"{fast_name} {fast_sma:.4f} crossed below {slow_name} {slow_sma:.4f}"
        return ("sell", held, why) if held > 0 else ("hold", 0, why + ", nothing to sell")

    def indicators(self, bars):
        """The two averages the decision compares, for the wall's chart."""
        fast, slow = self.params["fast"], self.params["slow"]
        return {f"SMA{fast}": rolling_mean(bars.close, fast), f"SMA{slow}": rolling_mean(bars.close, slow)}
