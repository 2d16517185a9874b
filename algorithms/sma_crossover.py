"""SMA crossover: buy with the card's cash when SMA20 crosses above SMA50, sell everything when it crosses below.

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
NO_CROSS = {1: "no cross: SMA20 above SMA50", -1: "no cross: SMA20 below SMA50", 0: "no cross: SMA20 level with SMA50"}


def _sign_at(closes: list, end: int) -> tuple[int, float, float]:
    """(sign of the spread, SMA20, SMA50) for the bar just before index ``end``."""
    fast = sum(closes[end - FAST:end]) / FAST
    slow = sum(closes[end - SLOW:end]) / SLOW
    spread = fast - slow
    if abs(spread) <= TIE_TOLERANCE * abs(slow):
        return 0, fast, slow
    return (1 if spread > 0 else -1), fast, slow


def rolling_mean(closes, period: int) -> np.ndarray:
    """Mean of the newest ``period`` closes at every bar (NaN until there are enough)."""
    values = np.asarray(closes, dtype="float64")
    out = np.full(len(values), np.nan)
    if len(values) >= period:
        sums = np.cumsum(np.concatenate([[0.0], values]))
        out[period - 1:] = (sums[period:] - sums[:-period]) / period
    return out


def crossover_signal(closes) -> tuple[int, float, float]:
    """(+1 cross up / -1 cross down / 0 none, SMA20, SMA50) on the newest of ``closes``."""
    values = closes.tolist() if hasattr(closes, "tolist") else list(closes)
    end = len(values)
    if end < SLOW + 1:
        return 0, float("nan"), float("nan")
    now, fast, slow = _sign_at(values, end)
    if now == 0:
        return 0, fast, slow
    previous = end - 1
    while previous >= SLOW and end - previous <= TIE_LOOKBACK + 1:
        before = _sign_at(values, previous)[0]
        if before != 0:
            return (now if before != now else 0), fast, slow
        previous -= 1
    return 0, fast, slow


class Algorithm(AlgorithmBase):
    """SMA20/SMA50 crossover on minute closes, all-in / all-out."""

    bars_needed = SLOW + 1 + TIE_LOOKBACK

    def on_data(self, bars, transaction_history):
        signal, fast, slow = crossover_signal(bars.close)
        if signal > 0:
            price = float(bars.close[-1])
            shares = self.affordable_shares(self.uninvested_cash(transaction_history), price)
            why = f"SMA20 {fast:.4f} crossed above SMA50 {slow:.4f}"
            return ("buy", shares, why) if shares > 0 else ("hold", 0, why + ", but the cash buys no share")
        if signal < 0:
            held = self.position(transaction_history)
            why = f"SMA20 {fast:.4f} crossed below SMA50 {slow:.4f}"
            return ("sell", held, why) if held > 0 else ("hold", 0, why + ", nothing to sell")
        spread = fast - slow
        return "hold", 0, NO_CROSS[0 if abs(spread) <= TIE_TOLERANCE * abs(slow) else 1 if spread > 0 else -1]

    def indicators(self, bars):
        """The two averages the decision compares, for the wall's chart."""
        return {"SMA20": rolling_mean(bars.close, FAST), "SMA50": rolling_mean(bars.close, SLOW)}
