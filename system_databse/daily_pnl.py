"""Account-level P&L per trading day, from the ledger's fills and each day's closing prices.

A card's mark at a day's close is what it has gained so far:

    mark(card, D) = shares held after D's fills x close(D) - net invested after D's fills

(its P&L, since current value - initial capital = shares x price - invested). The account's P&L
of day D is the change of the sum of marks since the previous trading day, so the bars add up to
the total P&L (open and realized) at the last close. A day without a bar of the ticker reuses its
last close; before the first close the last fill price stands in. Fills are dated by their UTC date,
which is the session's date for every regular-session minute. Corporate actions count from their
ex-date: a split changes the shares, a dividend lowers the net invested (``corporate_action_effects``
rows in ``actions_by_card``). Over split-adjusted closes (stocks.db's), pass the trades in today's
share units (``card_calculations.split_adjusted``) and only the dividends. Pure: callers read the rows.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence


def _in_todays_units(day: Mapping[str, Any], actions: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """A day's fill totals as a net buy (or sell) row, its shares restated through later splits.

    A split takes effect at its ex-date's open, before that day's fills, so a day's fills are
    multiplied by every split with a later ex-date; the money is unchanged.
    """
    factor = 1.0
    for a in actions:
        if a["kind"] != "cash_dividend" and a["ex_date"] > day["day"]:
            factor *= a["new_rate"] / a["old_rate"]
    shares = day["shares"] * factor
    return {"timestamp": day["last_at"], "type": "buy" if shares >= 0 else "sell", "shares": abs(shares),
            "invested": day["invested"], "last_price": day["last_price"] / factor}


def _changes(trades: Sequence[Mapping[str, Any]], actions: Sequence[Mapping[str, Any]]) -> list:
    """(day, shares change, invested change, fill price or None), in time order."""
    out = []
    for t in trades:
        if "invested" in t:  # a day's totals (``_in_todays_units``)
            sign = 1 if t["type"] == "buy" else -1
            out.append((t["timestamp"], sign * t["shares"], t["invested"], t["last_price"]))
            continue
        sign = 1 if t["type"] == "buy" else -1
        out.append((t["timestamp"], sign * t["shares"], sign * t["shares"] * float(t["price"]), float(t["price"])))
    for a in actions:
        out.append((a["effective_at"], int(a.get("share_change", 0)) + float(a.get("fractional_change", 0.0)),
                    -float(a.get("cash", 0.0)), None))
    return sorted(out, key=lambda c: c[0])


def _card_marks(changes: list, closes: Mapping[str, float], days: Sequence[str]) -> List[float]:
    """One card's mark at each day's close (``changes`` oldest first, ``closes`` by day)."""
    marks = []
    shares, invested, last_price, i = 0.0, 0.0, None, 0
    close_days = sorted(closes)
    for day in days:
        while i < len(changes) and changes[i][0][:10] <= day:
            _, share_change, invested_change, price = changes[i]
            shares += share_change
            invested += invested_change
            last_price = price if price is not None else last_price
            i += 1
        at = bisect_right(close_days, day)
        price = closes[close_days[at - 1]] if at else last_price
        marks.append(shares * price - invested if price is not None else -invested)
    return marks


def daily_pnl(trades_by_card: Mapping[int, Sequence[Mapping[str, Any]]], ticker_of: Mapping[int, str],
              closes: Mapping[str, Mapping[str, float]], days: Iterable[str],
              actions_by_card: Mapping[int, Sequence[Mapping[str, Any]]] | None = None) -> List[Dict[str, Any]]:
    """``[{"date", "pnl", "cumulative"}]`` for each of ``days`` (sorted "YYYY-MM-DD"), rounded to cents."""
    days = sorted(set(days))
    totals = [0.0] * len(days)
    for card_id, trades in trades_by_card.items():
        changes = _changes(trades, (actions_by_card or {}).get(card_id, ()))
        for k, mark in enumerate(_card_marks(changes, closes.get(ticker_of[card_id], {}), days)):
            totals[k] += mark
    result, previous = [], 0.0
    for day, total in zip(days, totals):
        result.append({"date": day, "pnl": round(total - previous + 0.0, 2), "cumulative": round(total + 0.0, 2)})
        previous = total
    return result


def account_daily_pnl(system, *, sessions: Callable[[str, str], List[str]],
                      daily_closes: Callable[[str, str, str], Mapping[str, float]],
                      last_bar: Callable[[str], Optional[str]], max_days: int = 60) -> List[Dict[str, Any]]:
    """The account's days from the first card's creation to the newest bar, the last ``max_days``.

    Market data comes in through the three callables (``database.daily_closes.market_inputs``), so
    the ledger never imports it: ``sessions(first, last)`` trading days, ``daily_closes(ticker,
    first, last)`` each day's last close, ``last_bar(ticker)`` the newest bar's time.
    """
    from system_databse import system_db_manager

    algos = system_db_manager.get_all_algorithms(conn=system)
    if not algos:
        return []
    tickers = {a["ticker"] for a in algos}
    first = min(a["created_at"][:10] for a in algos)
    last = max([t[:10] for t in (last_bar(ticker) for ticker in tickers) if t] + [first])
    days = sessions(first, last)
    if not days:
        return []
    actions = {a["id"]: system_db_manager.get_corporate_action_effects(a["id"], conn=system) for a in algos}
    trades: Dict[int, list] = {a["id"]: [] for a in algos}
    for row in system_db_manager.get_daily_trade_totals(conn=system):  # one row per card and day, summed in SQL
        trades[row["algorithm_id"]].append(_in_todays_units(row, actions[row["algorithm_id"]]))
    # stored bars are split-adjusted: each day's shares in today's units, so the splits are built in
    actions = {card: [a for a in rows if a["kind"] == "cash_dividend"] for card, rows in actions.items()}
    closes = {t: daily_closes(t, days[0], days[-1]) for t in tickers}
    return daily_pnl(trades, {a["id"]: a["ticker"] for a in algos}, closes, days, actions)[-max_days:]
