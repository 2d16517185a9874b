"""Bollinger mean reversion: buy when the close drops below the lower band (20-bar mean - 2 sd), sell all back at the mean.

The bands are computed over the newest PERIOD closes, the current one included, with the
population standard deviation. One position at a time: it buys only when flat, with all the
card's uninvested cash, and sells the whole position once the close is back at or above the mean.
"""
from __future__ import annotations

import numpy as np

from algorithms._framework import AlgorithmBase

PERIOD = 20
WIDTH = 2.0


def bands(closes) -> tuple[float, float, float]:
    """(lower, mean, upper) over the newest PERIOD closes."""
    window = np.asarray(closes[-PERIOD:], dtype="float64")
    mean = float(window.mean())
    spread = WIDTH * float(window.std())
    return mean - spread, mean, mean + spread


class Algorithm(AlgorithmBase):
    """Buys a dip below the lower Bollinger band, exits at the middle band."""

    bars_needed = PERIOD

    def on_data(self, bars, transaction_history):
        close = float(bars.close[-1])
        lower, mean, _upper = bands(bars.close)
        held = self.position(transaction_history)
        if held > 0:
            if close >= mean:
                return "sell", held, f"close {close:.2f} is back at the mean {mean:.2f}"
            return "hold", 0, f"holding {held}: close {close:.2f} still below the mean {mean:.2f}"
        if close < lower:
            shares = self.affordable_shares(self.uninvested_cash(transaction_history), close)
            why = f"close {close:.2f} below the lower band {lower:.2f}"
            return ("buy", shares, why) if shares > 0 else ("hold", 0, why + ", but the cash buys no share")
        return "hold", 0, f"close {close:.2f} inside the bands ({lower:.2f} .. {mean:.2f})"

    def indicators(self, bars):
        """The bands at every bar, computed exactly as ``on_data`` does (NaN for the first PERIOD-1)."""
        closes = np.asarray(bars.close, dtype="float64")
        lower, mean, upper = (np.full(len(closes), np.nan) for _ in range(3))
        if len(closes) >= PERIOD:
            windows = np.lib.stride_tricks.sliding_window_view(closes, PERIOD)
            mean[PERIOD - 1:] = windows.mean(axis=1)
            spread = WIDTH * windows.std(axis=1)
            lower[PERIOD - 1:], upper[PERIOD - 1:] = mean[PERIOD - 1:] - spread, mean[PERIOD - 1:] + spread
        return {"lower band": lower, "mean": mean, "upper band": upper}
