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

    The sums for the bars before the newest are slid by one bar each (add the bar entering at the
    window's start, drop the newest): rounding differs from a fresh sum by ~1e-14, far inside
    TIE_TOLERANCE, and a backtest minute costs two sums instead of four. Signs are inlined and the
    closes read through a memoryview: this runs every minute of every backtest.
    """
    lowest = fast if fast > slow else slow
    try:  # a memoryview reads the numpy column's floats in place: no list of the window per minute
        values = memoryview(closes)
        if values.ndim != 1:
            raise TypeError("not a column")
    except TypeError:
        values = [float(v) for v in closes]
    end = len(values)
    if end <= lowest:
        return 0, 0, float("nan"), float("nan")
    fast_sum = sum(values[end - fast:])
    slow_sum = sum(values[end - slow:])
    fast_sma, slow_sma = fast_sum / fast, slow_sum / slow
    spread, tolerance = fast_sma - slow_sma, TIE_TOLERANCE * abs(slow_sma)
    if -tolerance <= spread <= tolerance:
        return 0, 0, fast_sma, slow_sma
    now = 1 if spread > 0 else -1
    previous = end - 1
    while previous >= lowest and end - previous <= TIE_LOOKBACK + 1:
        dropped = values[previous]
        fast_sum += values[previous - fast] - dropped
        slow_sum += values[previous - slow] - dropped
        before_slow = slow_sum / slow
        spread, tolerance = fast_sum / fast - before_slow, TIE_TOLERANCE * abs(before_slow)
        if not -tolerance <= spread <= tolerance:
            return (0 if (spread > 0) == (now > 0) else now), now, fast_sma, slow_sma
        previous -= 1
    return 0, now, fast_sma, slow_sma


_WORDS: dict = {}  # (fast, slow) -> the names and hold reasons, built once per pair


def _words(fast: int, slow: int) -> tuple[str, str, dict]:
    found = _WORDS.get((fast, slow))
    if found is None:
        a, b = f"SMA{fast}", f"SMA{slow}"
        found = (a, b, {1: f"no cross: {a} above {b}", -1: f"no cross: {a} below {b}", 0: f"no cross: {a} level with {b}",
                        None: f"fast window {fast} is not shorter than slow window {slow}: never trades"})
        _WORDS[(fast, slow)] = found
    return found


class Algorithm(AlgorithmBase):
    """SMA fast/slow crossover on minute closes, all-in / all-out."""

    parameters = {
        "fast": {"type": "int", "default": 20, "min": 2, "max": 200,
                 "help": "fast moving average, in minute bars (shorter than slow)"},
        "slow": {"type": "int", "default": 50, "min": 3, "max": 400, "help": "slow moving average, in minute bars"},
    }

    def get_data_requirements(self, current_time):
        params = self.params
        return {"bars": max(params["fast"], params["slow"]) + 1 + TIE_LOOKBACK}

    def on_data(self, bars, transaction_history):
        params = self.params
        fast, slow = params["fast"], params["slow"]
        fast_name, slow_name, holds = _words(fast, slow)
        if fast >= slow:
            return "hold", 0, holds[None]
        signal, now, fast_sma, slow_sma = _cross(bars.close, fast, slow)
        if signal > 0:
            price = float(bars.close[-1])
            shares = self.affordable_shares(self.uninvested_cash(transaction_history), price)
            why = f"{fast_name} {fast_sma:.4f} crossed above {slow_name} {slow_sma:.4f}"
            return ("buy", shares, why) if shares > 0 else ("hold", 0, why + ", but the cash buys no share")
        if signal < 0:
            held = self.position(transaction_history)
            why = f"{fast_name} {fast_sma:.4f} crossed below {slow_name} {slow_sma:.4f}"
            return ("sell", held, why) if held > 0 else ("hold", 0, why + ", nothing to sell")
        return "hold", 0, holds[now]

    def indicators(self, bars):
        """The two averages the decision compares, for the wall's chart."""
        fast, slow = self.params["fast"], self.params["slow"]
        return {f"SMA{fast}": rolling_mean(bars.close, fast), f"SMA{slow}": rolling_mean(bars.close, slow)}
