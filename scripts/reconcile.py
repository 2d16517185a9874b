"""Show where the cards and the broker disagree, and let the owner accept the broker's count.

Usage:
  python -m scripts.reconcile                                 # each ticker: broker vs cards, per card
  python -m scripts.reconcile --ticker AAPL --card 7 --accept-broker

While a ticker's cards and the broker disagree the orchestrator makes no trades on it (the wall
shows a red banner). After checking the account (a manual sale, a split, an exchange that lost
its state...), ``--accept-broker`` first settles the ticker's open orders with the broker (the
same order object the orchestrator uses; an order still open refuses the accept, so its fill is
never counted twice), then records one buy or sell of the exact difference (a fraction of a
share included) on the chosen card at the latest price, stamped by the trading clock, so the
cards add up to what the broker holds and trading resumes.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Optional

from database import db_manager
from orchestra.alpaca_wrapper import AlpacaWrapper, BrokerError
from shared.clock import ClockError, ClockUnavailable, make_clock, stamp
from orchestra.exceptions import OrchestratorError
from orchestra.trader import Trader
from shared.config import ConfigError, Settings, load_env
from system_databse import positions, system_db_manager as ledger

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.reconcile", description=__doc__.splitlines()[0])
    parser.add_argument("--ticker", help="the ticker to reconcile")
    parser.add_argument("--card", type=int, help="the card that takes the difference")
    parser.add_argument("--accept-broker", action="store_true", help="record the broker's count on --card")
    return parser


def report_lines(broker_positions: dict, conn) -> list[str]:
    """One line per ticker that disagrees, its cards with their shares (a fraction included), and
    its orders still open (they are settled before anything is accepted)."""
    held = positions.positions(conn=conn)
    mismatches = positions.mismatches(broker_positions, positions.by_ticker(held.values()))
    if not mismatches:
        return ["the cards agree with the broker on every ticker"]
    cards = {card["id"]: card for card in ledger.get_all_algorithms(conn=conn)}
    open_orders = ledger.get_open_orders(conn=conn)
    lines = []
    for m in mismatches:
        lines.append(f"{m['ticker']}: broker holds {m['broker']} shares, the cards {m['cards']}")
        for position in (p for p in held.values() if p.ticker == m["ticker"]):
            card = cards[position.card_id]
            lines.append(f"  card {card['id']} {card['display_name']} ({card['status']}): {position.shares} shares")
        for order in (o for o in open_orders if o["ticker"] == m["ticker"]):
            lines.append(f"  order {order['client_order_id']} ({order['side']} {order['shares']}) is still "
                         f"{order['status']}: it is settled first")
    return lines


def accept(conn, market, ticker: str, card_id: int, *, trader: Trader, now: Callable) -> str:
    """Settle the ticker's open orders through the order object, then record the exact difference
    (a fraction included) between the broker and the cards on ``card_id``. The broker's count is
    read after the orders are settled: settling one may cancel it, and the cancel may find it
    filled (a count read before would record that fill a second time, the other way)."""
    card = ledger.get_algorithm(card_id, conn=conn)
    if card is None or card["ticker"] != ticker:
        raise ValueError(f"card {card_id} is not a {ticker} card")
    trader.reconcile({ticker})  # an order the broker has finished is settled first, never counted twice
    latest = db_manager.get_latest_price(market, ticker)
    if latest is None:
        raise ValueError(f"no price for {ticker} in stocks.db to record the difference at")
    broker = trader.broker.get_positions().get(ticker, 0)
    cards = positions.by_ticker(positions.positions(conn=conn, open_orders=False).values()).get(ticker, 0)
    tx = ledger.record_broker_count(card_id, broker, cards, latest["price"], at=stamp(now()), conn=conn)
    if tx is None:
        return f"{ticker}: the cards already add up to the broker's {broker} shares; nothing recorded"
    [row] = [t for t in ledger.get_recent_transactions(card_id, 5, conn=conn) if t["id"] == tx]
    return (f"card {card_id} {ticker}: recorded a {row['type']} of {row['shares']} shares at ${latest['price']:,.2f} "
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
        clock = make_clock(settings.daemon.clock, lambda: broker.get_clock().timestamp)  # the daemon's trading clock
        broker_positions = broker.get_positions()
        conn = ledger.get_connection(settings.databases.system_db)
        market = db_manager.get_connection(settings.databases.stocks_db)
    except (ConfigError, ClockError, BrokerError, FileNotFoundError, OrchestratorError) as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        return 1
    try:
        if args.accept_broker:
            trader = Trader(broker, conn, now=clock.now)
            print(accept(conn, market, args.ticker.strip().upper(), args.card, trader=trader, now=clock.now))
        else:
            print("\n".join(report_lines(broker_positions, conn)))
    except (ValueError, ledger.LedgerError, OrchestratorError, BrokerError, ClockUnavailable) as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
        market.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
