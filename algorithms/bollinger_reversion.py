"""Bollinger mean reversion: buy when the close drops below the lower band (20-bar mean - 2 sd), sell all back at the mean.

The window (PERIOD, default 20) and the width (default 2 sd) are parameters. The bands are computed
over the newest PERIOD closes, the current one included, with the
population standard deviation. One position at a time: it buys only when flat, with all the
card's uninvested cash, and sells the whole position once the close is back at or above the mean.
"""
from __future__ import annotations

import numpy as np

from algorithms._framework import AlgorithmBase

PERIOD = 20
WIDTH = 2.0


def bands(closes, period: int = PERIOD, width: float = WIDTH) -> tuple[float, float, float]:
    """(lower, mean, upper) over the newest ``period`` closes."""
    window = np.asarray(closes[-period:], dtype="float64")
    mean = float(window.mean())
    spread = width * float(window.std())
    return mean - spread, mean, mean + spread


class Algorithm(AlgorithmBase):
    """Buys a dip below the lower Bollinger band, exits at the middle band."""

    parameters = {
        "window": {"type": "int", "default": 20, "min": 2, "max": 400, "help": "bars in the mean and the bands"},
        "width": {"type": "float", "default": 2.0, "min": 0.1, "max": 5.0,
                  "help": "band width, in standard deviations"},
    }

    def get_data_requirements(self, current_time):
        return {"bars": self.params["window"]}

    def on_data(self, bars, transaction_history):
        close = float(bars.close[-1])
        lower, mean, _upper = bands(bars.close, self.params["window"], self.params["width"])
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
        """The bands at every bar, computed exactly as ``on_data`` does (NaN for the first window-1)."""
        period, width = self.params["window"], self.params["width"]
        closes = np.asarray(bars.close, dtype="float64")
        lower, mean, upper = (np.full(len(closes), np.nan) for _ in range(3))
        if len(closes) >= period:
            windows = np.lib.stride_tricks.sliding_window_view(closes, period)
            mean[period - 1:] = windows.mean(axis=1)
            spread = width * windows.std(axis=1)
            lower[period - 1:], upper[period - 1:] = mean[period - 1:] - spread, mean[period - 1:] + spread
        return {"lower band": lower, "mean": mean, "upper band": upper}
