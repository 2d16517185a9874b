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


def _sign_at(closes: list, end: int, fast: int = FAST, slow: int = SLOW) -> tuple[int, float, float]:
    """(sign of the spread, fast SMA, slow SMA) for the bar just before index ``end``."""
    fast_sma = sum(closes[end - fast:end]) / fast
    slow_sma = sum(closes[end - slow:end]) / slow
    spread = fast_sma - slow_sma
    if abs(spread) <= TIE_TOLERANCE * abs(slow_sma):
        return 0, fast_sma, slow_sma
    return (1 if spread > 0 else -1), fast_sma, slow_sma


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
    values = closes.tolist() if hasattr(closes, "tolist") else list(closes)
    end = len(values)
    if end < slow + 1:
        return 0, float("nan"), float("nan")
    now, fast_sma, slow_sma = _sign_at(values, end, fast, slow)
    if now == 0:
        return 0, fast_sma, slow_sma
    previous = end - 1
    while previous >= slow and end - previous <= TIE_LOOKBACK + 1:
        before = _sign_at(values, previous, fast, slow)[0]
        if before != 0:
            return (now if before != now else 0), fast_sma, slow_sma
        previous -= 1
    return 0, fast_sma, slow_sma


class Algorithm(AlgorithmBase):
    """SMA fast/slow crossover on minute closes, all-in / all-out."""

    parameters = {
        "fast": {"type": "int", "default": 20, "min": 2, "max": 200,
                 "help": "fast moving average, in minute bars (shorter than slow)"},
        "slow": {"type": "int", "default": 50, "min": 3, "max": 400, "help": "slow moving average, in minute bars"},
    }

    def get_data_requirements(self, current_time):
        return {"bars": max(self.params["fast"], self.params["slow"]) + 1 + TIE_LOOKBACK}

    def on_data(self, bars, transaction_history):
        fast, slow = self.params["fast"], self.params["slow"]
        if fast >= slow:
            return "hold", 0, f"fast window {fast} is not shorter than slow window {slow}: never trades"
        signal, fast_sma, slow_sma = crossover_signal(bars.close, fast, slow)
        names = f"SMA{fast}", f"SMA{slow}"
        if signal > 0:
            price = float(bars.close[-1])
            shares = self.affordable_shares(self.uninvested_cash(transaction_history), price)
            why = f"{names[0]} {fast_sma:.4f} crossed above {names[1]} {slow_sma:.4f}"
            return ("buy", shares, why) if shares > 0 else ("hold", 0, why + ", but the cash buys no share")
        if signal < 0:
            held = self.position(transaction_history)
            why = f"{names[0]} {fast_sma:.4f} crossed below {names[1]} {slow_sma:.4f}"
            return ("sell", held, why) if held > 0 else ("hold", 0, why + ", nothing to sell")
        spread = fast_sma - slow_sma
        side = "level with" if abs(spread) <= TIE_TOLERANCE * abs(slow_sma) else "above" if spread > 0 else "below"
        return "hold", 0, f"no cross: {names[0]} {side} {names[1]}"

    def indicators(self, bars):
        """The two averages the decision compares, for the wall's chart."""
        fast, slow = self.params["fast"], self.params["slow"]
        return {f"SMA{fast}": rolling_mean(bars.close, fast), f"SMA{slow}": rolling_mean(bars.close, slow)}
