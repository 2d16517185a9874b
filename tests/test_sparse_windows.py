"""Windows with missing minutes: a thin ticker has no bar for minutes without a trade.

Every market minute each card decides on the bars that exist (no invented bars); a buy on a price
older than the limit (or from an earlier session) is refused with its age in the reason, sells
still go through, and the three shipped algorithms decide exactly the same live and in a backtest
over the same sparse bars.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from database import db_manager, market_calendar
from orchestra.card_runner import CardRunner
from orchestra.cycle import preview
from scripts import backtest
from system_databse import system_db_manager as ledger_db

MINUTE = timedelta(minutes=1)
ALWAYS_BUY = '''"""Buys one share every minute."""
from algorithms._framework import AlgorithmBase


class Algorithm(AlgorithmBase):
    bars_needed = 1

    def on_data(self, bars, transaction_history):
        return "buy", 1, "always buying"
'''
ALWAYS_SELL = ALWAYS_BUY.replace("Buys one share", "Sells one share").replace('"buy", 1, "always buying"',
                                                                               '"sell", 1, "always selling"')


def at(stamp: str) -> datetime:
    return market_calendar.parse_utc(stamp).to_pydatetime()


def bar(ticker: str, stamp: str, close: float, open_: float | None = None) -> dict:
    open_ = close if open_ is None else open_
    return {"ticker": ticker, "timestamp": stamp, "open": open_, "high": max(open_, close), "low": min(open_, close),
            "close": close, "volume": 100}


@pytest.fixture
def runner(tmp_path, ledger, market):
    (tmp_path / "always_buy.py").write_text(ALWAYS_BUY)
    (tmp_path / "always_sell.py").write_text(ALWAYS_SELL)
    return CardRunner(market, ledger, directory=tmp_path, max_price_age=5)


def card_on(ledger, kind: str, ticker: str = "KO") -> dict:
    return ledger_db.get_algorithm(ledger_db.create_algorithm(ticker, kind, 10_000.0, conn=ledger), conn=ledger)


def test_a_buy_on_a_price_older_than_the_limit_is_refused_with_its_age(runner, ledger, market):
    db_manager.upsert_bars(market, [bar("KO", "2026-11-23T15:00:00Z", 62.10)])  # then KO stops trading
    card = card_on(ledger, "always_buy")

    fresh = runner.decide(card, at("2026-11-23T15:00:00Z"))
    five = runner.decide(card, at("2026-11-23T15:05:00Z"))
    six = runner.decide(card, at("2026-11-23T15:06:00Z"))

    assert fresh.decision.action == "buy" and fresh.price_age.minutes == 0
    assert "(price $62.10 from the 2026-11-23T15:00:00Z bar, 0 market minutes old)" in fresh.decision.reason
    assert five.decision.action == "buy" and "5 market minutes old" in five.decision.reason
    assert (six.decision.accepted, six.decision.action, six.decision.requested_action) == (False, "hold", "buy")
    assert ("refused: stale price: price $62.10 from the 2026-11-23T15:00:00Z bar, 6 market minutes old, "
            "older than the 5-minute limit (a thin ticker may simply not have traded") in six.decision.reason


def test_sells_go_through_on_an_old_price(runner, ledger, market):
    db_manager.upsert_bars(market, [bar("KO", "2026-11-23T15:00:00Z", 62.10)])
    card = card_on(ledger, "always_sell")
    ledger_db.record_buy(card["id"], 10, 62.0, timestamp="2026-11-23T14:50:00Z", conn=ledger)

    late = runner.decide(card, at("2026-11-23T16:00:00Z"))

    assert (late.decision.accepted, late.decision.action, late.decision.shares) == (True, "sell", 1)
    assert "60 market minutes old" in late.decision.reason


def test_at_the_open_yesterdays_close_never_sizes_a_buy(runner, ledger, market):
    db_manager.upsert_bars(market, [bar("KO", "2026-11-23T20:59:00Z", 62.40)])  # Monday's last minute
    card = card_on(ledger, "always_buy")

    opening = runner.decide(card, at("2026-11-24T14:30:00Z"))  # Tuesday's first minute: no KO trade yet

    assert opening.price_age.minutes == 1 and not opening.price_age.same_session
    assert not opening.decision.accepted
    assert "from the 2026-11-23T20:59:00Z bar, from an earlier session" in opening.decision.reason


def test_the_dry_run_shows_the_refusal_and_its_reason(runner, ledger, market):
    db_manager.upsert_bars(market, [bar("KO", "2026-11-23T15:00:00Z", 62.10)])
    card_on(ledger, "always_buy")

    [line] = preview(runner, ledger, market, at("2026-11-23T15:09:00Z"))

    assert line.startswith("card 1 KO always_buy: REFUSED buy 1 - always buying")
    assert "9 market minutes old, older than the 5-minute limit" in line


# --------------------------------------------------------------------------- live == backtest

DAYS = ("2026-11-23", "2026-11-24")


def sparse_day_bars(ticker: str, seed: int = 11, empty_share: float = 0.4) -> list[dict]:
    """Two sessions of a thin ticker: a volatile random walk, ~40% of the minutes without a bar."""
    rng = np.random.default_rng(seed)
    minutes = [m for day in DAYS for m in market_calendar.minutes_between(f"{day}T00:00:00Z", f"{day}T23:59:00Z")]
    closes = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.0025, len(minutes)))), 2)
    opens = np.concatenate(([100.0], closes[:-1]))
    keep = rng.random(len(minutes)) >= empty_share
    return [bar(ticker, m, float(c), float(o)) for m, c, o, k in zip(minutes, closes, opens, keep) if k]


def live_minutes(first: str, last: str) -> list[datetime]:
    """Every market minute from ``first`` to before ``last``, except a session's last minute."""
    closes = {market_calendar.session_bounds(day)[1] for day in DAYS}
    stamps = market_calendar.minutes_between(first, last)[:-1]
    return [at(s) for s in stamps if market_calendar.parse_utc(s) + MINUTE not in closes]


def replay_live(runner, ledger, market, card, minutes):
    """The live path minute by minute; a trade fills like the backtest's: next bar's open, at its time."""
    trades, refused = [], []
    for minute in minutes:
        made = runner.decide(card, minute)
        decided_at = market_calendar.to_utc_string(minute + MINUTE)
        decision = made.decision
        if decision.is_trade:
            [fill] = db_manager.get_bars_between(market, card["ticker"], decided_at, "2026-12-31T00:00:00Z").head(1)\
                .itertuples()
            stamp = fill.Index.strftime("%Y-%m-%dT%H:%M:%SZ")
            record = ledger_db.record_buy if decision.action == "buy" else ledger_db.record_sell
            record(card["id"], decision.shares, fill.open, timestamp=stamp, conn=ledger)
            trades.append((stamp, decision.action, decision.shares, fill.open, decided_at, decision.reason))
        elif not decision.accepted:
            refused.append((decided_at, decision.reason))
    return trades, refused


@pytest.mark.parametrize("algorithm, max_age", [("sma_crossover", 5), ("bollinger_reversion", 5),
                                                ("lot_take_profit", 5), ("always_buy", 1)])
def test_algorithms_decide_the_same_live_and_in_a_backtest_on_sparse_bars(algorithm, max_age, tmp_path, ledger, market):
    (tmp_path / "always_buy.py").write_text(ALWAYS_BUY)  # buys on stale windows too: the rule at work
    directory = None if algorithm != "always_buy" else tmp_path
    bars = sparse_day_bars("KO")
    db_manager.upsert_bars(market, bars)
    card = card_on(ledger, algorithm)
    runner = CardRunner(market, ledger, directory=directory, max_price_age=max_age)

    result, series, first = backtest.run_backtest(algorithm, "KO", f"{DAYS[1]}T00:00:00Z", f"{DAYS[1]}T23:59:59Z",
                                                  10_000.0, conn=market, directory=directory, max_price_age=max_age)
    first_bar = series.window(first + 1, 1).last_timestamp
    last_bar = series.window(len(series), 1).last_timestamp
    trades, refused = replay_live(runner, ledger, market, card, live_minutes(first_bar, last_bar))

    assert 0.3 < 1 - len(bars) / 780 < 0.5  # the ticker really is thin
    assert [(t.timestamp, t.side, t.shares, t.price, t.decided_at, t.reason) for t in result.trades] == trades
    assert result.refused == refused
    assert len(trades) >= 2 and result.decisions == len(live_minutes(first_bar, last_bar))
    assert result.decisions > len(series) - first  # minutes without a bar were decided too
    if algorithm == "always_buy":
        assert sum("stale price" in reason for _, reason in refused) >= 5
