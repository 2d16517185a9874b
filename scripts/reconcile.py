"""Show where the cards and the broker disagree, and let the owner accept the broker's count.

Usage:
  python -m scripts.reconcile                                 # each ticker: broker vs cards, per card
  python -m scripts.reconcile --ticker AAPL --card 7 --accept-broker

While a ticker's cards and the broker disagree the orchestrator makes no trades on it (the wall
shows a red banner). After checking the account (a manual sale, a split, an exchange that lost
its state...), ``--accept-broker`` records one buy or sell of the difference on the chosen card
at the latest price, so the cards add up to what the broker holds and trading resumes. It is
stamped by the trading clock (``AUTOTRADER_CLOCK``: the broker's with the simulated exchange).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional

from database import db_manager
from orchestra.alpaca_wrapper import AlpacaWrapper, BrokerError
from shared.clock import ClockError, ClockUnavailable, make_clock
from shared.config import ConfigError, Settings, load_env
from orchestra.trader import card_positions_by_ticker, position_mismatches
from system_databse import system_db_manager as ledger

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.reconcile", description=__doc__.splitlines()[0])
    parser.add_argument("--ticker", help="the ticker to reconcile")
    parser.add_argument("--card", type=int, help="the card that takes the difference")
    parser.add_argument("--accept-broker", action="store_true", help="record the broker's count on --card")
    return parser


def report_lines(broker_positions: dict, conn) -> list[str]:
    """One line per ticker that disagrees, and its cards with their shares."""
    cards = ledger.get_all_algorithms(conn=conn)
    totals = ledger.get_all_position_totals(conn=conn)
    mismatches = position_mismatches(broker_positions, card_positions_by_ticker(conn, cards))
    if not mismatches:
        return ["the cards agree with the broker on every ticker"]
    lines = []
    for m in mismatches:
        lines.append(f"{m['ticker']}: broker holds {m['broker']} shares, the cards {m['cards']}")
        for card in (c for c in cards if c["ticker"] == m["ticker"]):
            shares = totals.get(card["id"], {"shares": 0})["shares"]
            lines.append(f"  card {card['id']} {card['display_name']} ({card['status']}): {shares} shares")
    return lines


def accept(broker_positions: dict, conn, market, ticker: str, card_id: int, at: str) -> str:
    """Record the broker's count of ``ticker`` on ``card_id``, stamped ``at`` (the trading clock's)."""
    card = ledger.get_algorithm(card_id, conn=conn)
    if card is None or card["ticker"] != ticker:
        raise ValueError(f"card {card_id} is not a {ticker} card")
    latest = db_manager.get_latest_price(market, ticker)
    if latest is None:
        raise ValueError(f"no price for {ticker} in stocks.db to record the difference at")
    broker = int(broker_positions.get(ticker, 0))
    cards = card_positions_by_ticker(conn).get(ticker, 0)
    tx = ledger.record_broker_count(card_id, broker, cards, latest["price"], at=at, conn=conn)
    if tx is None:
        return f"{ticker}: the cards already add up to the broker's {broker} shares; nothing recorded"
    side = "buy" if broker > cards else "sell"
    return (f"card {card_id} {ticker}: recorded a {side} of {abs(broker - cards)} shares at ${latest['price']:,.2f} "
            f"(transaction {tx}); the cards now add up to the broker's {broker}")


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.accept_broker and (not args.ticker or args.card is None):
        print("reconcile: --accept-broker needs --ticker and --card", file=sys.stderr)
        return 2
    load_env()
    try:
        settings = Settings.from_env(os.environ)
        broker = AlpacaWrapper(settings.broker)
        clock = make_clock(settings.daemon.clock, lambda: broker.get_clock().timestamp)
        broker_positions = broker.get_positions()
        at = clock.stamp() if args.accept_broker else ""
        conn = ledger.get_connection(settings.databases.system_db)
        market = db_manager.get_connection(settings.databases.stocks_db)
    except (ConfigError, ClockError, ClockUnavailable, BrokerError, FileNotFoundError) as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        return 1
    try:
        if args.accept_broker:
            print(accept(broker_positions, conn, market, args.ticker.strip().upper(), args.card, at))
        else:
            print("\n".join(report_lines(broker_positions, conn)))
    except (ValueError, ledger.LedgerError) as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
        market.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
