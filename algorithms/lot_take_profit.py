"""Lot trader: buys a lot on each 1% dip below the 30-minute high and exits every lot at its own +2% take-profit or -1% stop-loss.

Each buy in the card's transaction history is a lot with its own entry price ("the $150.50 lot
vs the $145.25 lot"), so two lots bought at different prices are exited at different prices.
A sell in the history is matched to lots the way this algorithm sells: first the lots whose
take-profit or stop-loss is hit at the sell's price, oldest first, then any remainder oldest
first (a liquidation or a partial fill); a lot may be partly sold.

Entry: fewer than MAX_LOTS lots open, the close at least DIP below the highest high of the last
LOOKBACK minutes, and no buy in the last COOLDOWN_MINUTES; the lot is LOT_FRACTION of the initial
capital (at most the uninvested cash), in whole shares.
Both spans are clock minutes, read from the bars' timestamps: a thin ticker's minutes without a
trade have no bar, so the LOOKBACK-minute high is taken over the bars that exist in those minutes
(asking for LOOKBACK bars always covers them), never over an older stretch of LOOKBACK bars. TAKE_PROFIT, STOP_LOSS and LOT_FRACTION are
the defaults of the parameters ``take_profit``, ``stop_loss`` and ``lot_size``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms._framework import AlgorithmBase, quantity

LOOKBACK = 30
DIP = 0.01
TAKE_PROFIT = 0.02
STOP_LOSS = 0.01
LOT_FRACTION = 0.25
MAX_LOTS = 4
COOLDOWN_MINUTES = 10


@dataclass
class Lot:
    id: int
    price: float
    shares: int | float  # a float only after a split left a fraction
    timestamp: str
    take_profit_pct: float = TAKE_PROFIT
    stop_loss_pct: float = STOP_LOSS

    @property
    def take_profit(self) -> float:
        return self.price * (1 + self.take_profit_pct)

    @property
    def stop_loss(self) -> float:
        return self.price * (1 - self.stop_loss_pct)

    def exit_reason(self, price: float) -> str | None:
        if price >= self.take_profit:
            return f"${self.price:.2f} lot hit its take-profit ${self.take_profit:.2f}"
        if price <= self.stop_loss:
            return f"${self.price:.2f} lot hit its stop-loss ${self.stop_loss:.2f}"
        return None


def _consume(lots: list[Lot], shares: int, price: float) -> None:
    """Take ``shares`` out of the open lots as this algorithm would have sold them at ``price``."""
    triggered = [lot for lot in lots if lot.exit_reason(price)]
    others = [lot for lot in lots if not lot.exit_reason(price)]
    for lot in triggered + others:
        taken = min(lot.shares, shares)
        lot.shares = quantity(lot.shares - taken)  # exact to the ninth decimal, like the ledger
        shares = quantity(shares - taken)
        if shares == 0:
            break
    lots[:] = [lot for lot in lots if lot.shares > 0]


def open_lots(transaction_history, take_profit: float = TAKE_PROFIT, stop_loss: float = STOP_LOSS) -> list[Lot]:
    """The lots still (partly) held, oldest first, rebuilt from the history."""
    lots: list[Lot] = []
    for row in transaction_history:
        if row["type"] == "buy":
            lots.append(Lot(row["id"], float(row["price"]), row["shares"], row["timestamp"],
                            take_profit, stop_loss))
        else:
            _consume(lots, row["shares"], float(row["price"]))
    return lots


def _lookback_start(timestamps) -> int:
    """Index of the first bar inside the LOOKBACK minutes that end with the newest bar."""
    return int(np.searchsorted(timestamps, timestamps[-1] - np.timedelta64(LOOKBACK - 1, "m"), side="left"))


def _minutes_between(earlier: str, later: str) -> float:
    span = np.datetime64(later.rstrip("Z")) - np.datetime64(earlier.rstrip("Z"))
    return span / np.timedelta64(1, "m")


class Algorithm(AlgorithmBase):
    """Buys dips in lots; each lot has its own take-profit and stop-loss."""

    bars_needed = LOOKBACK
    parameters = {
        "take_profit": {"type": "float", "default": 0.02, "min": 0.001, "max": 0.5,
                        "help": "sell a lot this far above its price (0.02 = +2%)"},
        "stop_loss": {"type": "float", "default": 0.01, "min": 0.001, "max": 0.5,
                      "help": "sell a lot this far below its price (0.01 = -1%)"},
        "lot_size": {"type": "float", "default": 0.25, "min": 0.01, "max": 1.0,
                     "help": "each lot, as a fraction of the initial capital"},
    }

    def on_data(self, bars, transaction_history):
        close = float(bars.close[-1])
        lots = open_lots(transaction_history, self.params["take_profit"], self.params["stop_loss"])
        exits = [(lot, lot.exit_reason(close)) for lot in lots if lot.exit_reason(close)]
        if exits:
            shares, held = quantity(sum(lot.shares for lot, _ in exits)), self.position(transaction_history)
            if shares >= held:  # every lot exits: sell everything, a split's fraction included
                return "sell", held, "; ".join(reason for _, reason in exits)
            if int(shares):  # the whole shares of these lots; a fraction goes with the last lot
                return "sell", int(shares), "; ".join(reason for _, reason in exits)
        return self._entry(bars, close, lots, transaction_history)

    def _entry(self, bars, close, lots, transaction_history):
        high = float(np.max(bars.high[_lookback_start(bars.timestamp):]))
        if len(lots) >= MAX_LOTS:
            return "hold", 0, f"{len(lots)} lots open, the most allowed"
        if close > high * (1 - DIP):
            return "hold", 0, f"close {close:.2f} not {DIP:.0%} below the {LOOKBACK}-minute high {high:.2f}"
        buys = [row for row in transaction_history if row["type"] == "buy"]
        if buys and _minutes_between(buys[-1]["timestamp"], bars.last_timestamp) < COOLDOWN_MINUTES:
            return "hold", 0, f"dip, but the last lot was bought less than {COOLDOWN_MINUTES} minutes ago"
        budget = min(self.initial_capital * self.params["lot_size"], self.uninvested_cash(transaction_history))
        shares = self.affordable_shares(budget, close)
        why = f"close {close:.2f} is {1 - close / high:.1%} below the {LOOKBACK}-minute high {high:.2f}: new lot"
        return ("buy", shares, why) if shares > 0 else ("hold", 0, why + ", but the cash buys no share")
