"""Issue #23's proof: the real money core driven through random sequences against a small broker.

``MoneyMachine`` (a Hypothesis ``RuleBasedStateMachine``) runs the daemon's own parts — the
cycle, the trader, the net order, allocation, the ledger, the corporate-action keeper and
``scripts.reconcile.accept`` — on a temp ``system.db`` file against ``ModelBroker``
(``tests/money_broker.py``). Rules are what can happen: a card is added or stopped; a minute
trades (every running card decides, the real checker checks it, the cycle nets, crosses and
sends, the broker fills, fills in part, late or never, rejects, loses an answer; a card stops
mid-cycle; the process may die at any broker call or any slice of SQLite work); the broker moves
an order between the daemon's looks and the trade stream tells it (once, twice, stale first,
or not at all); the day closes and a split (2:1, 3:2, 1:10, 1:3) or a dividend comes; the owner
deposits into or withdraws from a card, sells at the broker by hand and later accepts the
broker's count; the daemon restarts.

After every step the model (``tests/money_books.py``) checks what the issue lists: per ticker the
cards add up to the broker exactly, but for what the broker did of orders not settled yet and
what the owner sold by hand (the ticker is frozen then); nobody holds negative shares or spends
cash it does not have; every broker fill is in the ledger once, on the cards the allocation
gives it to; available cash never hands out what the cards still own; and a split leaves each
card's value and P&L where they were.
"""
from __future__ import annotations

import shutil
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Dict, List, Optional

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, precondition, rule

from database import db_manager
from orchestra import net_order
from shared.clock import stamp
from orchestra.net_order import BrokerUpdate, Missing
from orchestra.trader import Trader
from scripts import reconcile
from shared.shares import NANO
from system_databse import card_calculations, system_db_manager as ledger
from system_databse.orders import OPEN_STATES
from tests.money_books import STATS, Books
from tests.money_broker import MOODS, Dead, Fate, ModelBroker
from tests.money_checks import Checks
from tests.money_daemon import Daemon, fast_tmp, templates

TICKERS = ("AAPL", "KO", "F")
START = datetime(2026, 11, 23, 14, 30, tzinfo=timezone.utc)  # a Monday's open
ACCOUNT = Decimal("60000")
SPLITS = ((2, 1), (3, 2), (1, 10), (1, 3))
RATES = (Decimal("0.125"), Decimal("0.33"), Decimal("0.07"))

WISHES = st.tuples(st.sampled_from(["buy", "buy", "sell", "sell_all", "hold"]), st.floats(0.05, 1.3))
CRASH = st.one_of(st.none(), st.none(), st.none(), st.tuples(st.just("broker"), st.integers(1, 12)),
                  st.tuples(st.just("sqlite"), st.integers(1, 400)))  # where the process dies (a minute: ~10 broker
                                                                        # calls, ~20-300 slices of SQLite work)


class MoneyMachine(RuleBasedStateMachine):
    cards = Bundle("cards")
    orders = Bundle("orders")

    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="money-model-", dir=fast_tmp()))
        self.system_db, self.stocks_db = self.dir / "system.db", self.dir / "stocks.db"
        shutil.copyfile(templates()["system"], self.system_db)
        shutil.copyfile(templates()["stocks"], self.stocks_db)
        self.minute, self.now = START - timedelta(minutes=1), START
        self.world = ModelBroker(ACCOUNT, lambda: self.now)
        self.world.prices = {"AAPL": 200.0, "KO": 60.0, "F": 10.0}
        self.api = ledger.get_connection(self.system_db)       # the wall's process: adds and stops cards
        self.feed = db_manager.get_connection(self.stocks_db)  # the market data stream: writes bars
        self.observer = ledger.get_connection(self.system_db, read_only=True)
        self.books = Books()
        self.checks = Checks(self)
        self.actions: List[dict] = []                     # announced at the broker, with what it did
        self.manual: Dict[str, int] = {t: 0 for t in TICKERS}  # sold by hand, not accepted yet (nano)
        self.frozen_at_start: set = set()
        self.intents: Dict[int, tuple] = {}                   # card -> (side, nano) it asked for this minute
        self.stopped_before_trading: set = set()
        self.accepted: Optional[tuple] = None
        self.crashed_mid_minute = False
        self.minutes, self.last = 0, {}  # minutes run, and the minute each other kind of step last ran
        self.daemon = Daemon(self)
        STATS["examples"] += 1

    def teardown(self):
        self.daemon.close()
        for conn in (self.api, self.feed, self.observer):
            conn.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ the daemon's process

    def restart(self) -> None:
        """The process died (or was stopped): new objects on the same files, start-up again."""
        STATS["crashes"] += 1
        self.daemon.close()
        self.daemon = Daemon(self)

    def as_daemon(self, work, crash) -> bool:
        """``work`` in the daemon's process, which may die at ``crash``; True if it died (and started again)."""
        died = self.daemon.run(work, crash)
        if died:
            self.restart()
        return died

    def due(self, kind: str, every: int) -> bool:
        """Whether ``kind`` of step may come now: at most once every ``every`` minutes, so most
        steps are minutes (Hypothesis picks evenly among the rules it may run)."""
        return self.minutes - self.last.get(kind, -every) >= every

    def ran(self, kind: str) -> None:
        self.last[kind] = self.minutes
        STATS["steps"] += 1

    def stop(self, card_id: int) -> None:
        ledger.stop_algorithm(card_id, conn=self.api)
        STATS["stops"] += 1

    # ------------------------------------------------------------------ rules

    # Preconditions keep the mix of steps like a day's: mostly minutes, now and then the rest.

    @precondition(lambda self: self.due("add", 2) and len(ledger.get_all_algorithms("running", conn=self.observer)) < 6)
    @rule(target=cards, ticker=st.sampled_from(TICKERS), capital=st.sampled_from([500, 1_000, 2_500, 10_000]))
    def the_owner_adds_a_card(self, ticker, capital):
        """As the API does: only with cash no card owns."""
        self.ran("add")
        available = card_calculations.available_cash(float(self.world.cash), conn=self.api)["available_cash"]
        if capital > available:
            return multiple()
        card = ledger.create_algorithm(ticker, "model", capital, conn=self.api)
        self.books.open_card(card, ticker, capital)
        STATS["cards"] += 1
        return card

    @precondition(lambda self: self.due("capital", 4))
    @rule(card=cards, deposit=st.booleans(), amount=st.sampled_from([0.01, 25.5, 100, 1_000, 5_000]))
    def the_owner_moves_capital(self, card, deposit, amount):
        """A deposit only from cash no card owns (the API's check); a withdrawal never beyond what
        the card may give back (the ledger refuses it)."""
        self.ran("capital")
        try:
            if deposit:
                available = card_calculations.available_cash(float(self.world.cash), conn=self.api)["available_cash"]
                if amount > available:
                    return
                ledger.deposit(card, amount, at=stamp(self.now), conn=self.api)
            else:
                ledger.withdraw(card, amount, at=stamp(self.now), conn=self.api)
        except ledger.LedgerError as exc:  # a stopped card, or more than it may give back
            assert "stopped" in str(exc) or isinstance(exc, ledger.WithdrawalTooLarge), exc
            return
        self.books.cards[card].move_capital(Decimal(repr(float(amount))) * (1 if deposit else -1))
        STATS["deposits" if deposit else "withdrawals"] += 1

    @precondition(lambda self: self.due("stop", 6))
    @rule(card=cards)
    def the_owner_stops_a_card(self, card):
        self.ran("stop")
        self.stop(card)

    @rule(target=orders, data=st.data())
    def a_minute_trades(self, data):
        self.ran("minute")
        running = ledger.get_all_algorithms("running", conn=self.observer)
        repeat = self.crashed_mid_minute and data.draw(st.booleans(), label="the restart runs that minute again")
        if not repeat:
            self.minute += timedelta(minutes=1)
            for ticker in TICKERS:
                move = data.draw(st.integers(-3, 3), label=f"{ticker} moves %")
                self.world.prices[ticker] = max(1.0, round(self.world.prices[ticker] * (1 + move / 100), 2))
        self.now = max(self.now + timedelta(seconds=5), self.minute + timedelta(minutes=1, seconds=5))
        db_manager.upsert_bars(self.feed, [{"ticker": t, "timestamp": stamp(self.minute), "open": p, "high": p,
                                            "low": p, "close": p, "volume": 100} for t, p in self.world.prices.items()])
        runner, ids = self.daemon.runner, [c["id"] for c in running]
        runner.wishes = {card: data.draw(WISHES, label=f"card {card} wants") for card in ids}
        self.intents = {}
        runner.stop_after_deciding = [data.draw(st.sampled_from(ids), label="stopped after deciding")] \
            if ids and data.draw(st.integers(0, 9), label="a STOP lands mid-cycle if 0") == 0 else []
        stop_at_submit = data.draw(st.sampled_from(ids), label="stopped as its order is sent") \
            if ids and data.draw(st.integers(0, 9), label="a STOP lands as an order is sent if 0") == 0 else None
        self.world.moods = {t: data.draw(st.sampled_from(MOODS), label=f"{t} order goes") for t in TICKERS}
        self.world.partial = {t: data.draw(st.floats(0.0, 1.0), label=f"{t} fills in part") for t in TICKERS}
        self.world.on_submit = lambda ticker: self.stop(stop_at_submit) if stop_at_submit and self.books.cards[
            stop_at_submit].ticker == ticker else None
        self.frozen_at_start = {t for t in TICKERS if self.manual[t]}
        self.stopped_before_trading = {c["id"] for c in ledger.get_all_algorithms("stopped", conn=self.observer)} \
            | set(runner.stop_after_deciding)
        cycle = self.daemon.cycle
        self.crashed_mid_minute = self.as_daemon(lambda: cycle.run(self.minute), data.draw(CRASH, label="dies"))
        self.world.on_submit = lambda ticker: None
        self.minutes += 1
        STATS["minutes"] += 1
        return multiple(*self.observe())

    @precondition(lambda self: self.due("stream", 1) and (self.books.open_orders() or self.world.open_orders()))
    @rule(coid=orders, what=st.sampled_from(["fill_more", "fill", "cancel", "expire", "replay"]),
          deliver=st.sampled_from(["nothing", "once", "twice", "stale_first"]), crash=CRASH)
    def the_broker_moves_an_order_and_the_stream_tells(self, coid, what, deliver, crash):
        self.ran("stream")
        self.now += timedelta(seconds=3)
        order = self.world.orders.get(coid)
        if order is None:
            events = [Missing()]  # a look-up by its id finds nothing at the broker
        else:
            if what != "replay":
                self.world.progress(order, what)
            events = [BrokerUpdate.of(order.result())]
            if deliver == "stale_first":
                events.insert(0, BrokerUpdate("new", 0, None, None, order.broker_order_id))
            STATS[f"broker {what}"] += 1
        events = [] if deliver == "nothing" else events * (2 if deliver == "twice" else 1)

        def tell(conn=self.daemon.conn):
            for event in events:
                net_order.apply(conn, coid, event, now=stamp(self.now))
        self.as_daemon(tell, crash)
        self.observe()

    @precondition(lambda self: self.due("close", 8))
    @rule(data=st.data(), action=st.one_of(st.none(), st.sampled_from(SPLITS), st.sampled_from(RATES)))
    def the_day_closes_and_a_corporate_action_comes(self, data, action):
        """Day orders expire at the close; the next open applies the action at the broker (mostly
        to a ticker someone holds)."""
        self.ran("close")
        held = [t for t in TICKERS if self.world.positions.get(t)]
        ticker = data.draw(st.sampled_from(held or TICKERS), label="the action's ticker")
        self.world.close_of_day()
        day = (self.now + timedelta(days=1)).date()
        opening = datetime(day.year, day.month, day.day, 14, 30, tzinfo=timezone.utc)
        self.minute, self.now = opening - timedelta(minutes=1), opening + timedelta(seconds=1)
        if action is not None and not self.manual[ticker]:  # (a hand sale is accepted before the model splits it)
            self.announce(ticker, action, stamp(opening))
        self.observe()

    @precondition(lambda self: self.due("hand sale", 8) and any(self.world.positions.values()))
    @rule(ticker=st.sampled_from(TICKERS), share=st.floats(0.1, 1.0), everything=st.booleans())
    def the_owner_sells_at_the_broker_by_hand(self, ticker, share, everything):
        self.ran("hand sale")
        held = self.world.positions.get(ticker, 0)
        qty = held if everything else int(held // NANO * share) * NANO
        if qty <= 0:
            return
        self.world.manual_sale(ticker, qty)
        self.manual[ticker] -= qty
        STATS["hand sales"] += 1

    @precondition(lambda self: self.due("accept", 2) and (any(self.manual.values()) or self.books.open_orders()))
    @rule(card=cards, later=st.integers(0, 90), crash=st.one_of(st.none(), st.integers(1, 200)))
    def the_owner_accepts_the_brokers_count(self, card, later, crash):
        """``scripts.reconcile --accept-broker``, ``later`` seconds on: its own process, connection and trader."""
        self.ran("accept")
        self.now += timedelta(seconds=later)
        ticker = self.books.cards[card].ticker
        if self.checks.pending(ticker):
            return
        cli, market = ledger.get_connection(self.system_db), db_manager.get_connection(self.stocks_db)
        daemon_fate, self.world.fate = self.world.fate, Fate(crash, "sqlite")
        self.world.fate.watch(cli)
        before = {t["id"] for t in ledger.get_transactions(card, conn=self.observer)}
        try:
            trader = Trader(self.world, cli, now=lambda: self.now, fill_timeout=30, workers=1)
            reconcile.accept(cli, market, ticker, card, trader=trader, now=lambda: self.now)
            STATS["accepts"] += 1
        except (ValueError, ledger.LedgerError, sqlite3.Error, Dead) as exc:
            refusals = ("still open", "cannot give up", "no price")  # what the CLI answers with exit code 2
            if not (self.world.fate.dead or any(words in str(exc) for words in refusals)):
                raise
        finally:
            self.world.fate = daemon_fate
            cli.close()
            market.close()
        made = [t for t in ledger.get_transactions_between(card, conn=self.observer)
                if t["id"] not in before and t["client_order_id"] is None]  # not an order's fill: the count
        self.accepted = (card, made)
        self.observe()

    @precondition(lambda self: self.due("restart", 5))
    @rule()
    def the_daemon_restarts(self):
        self.ran("restart")
        STATS["restarts"] += 1
        self.restart()
        self.observe()

    # ------------------------------------------------------------------ the broker's corporate actions

    def announce(self, ticker: str, action, effective_at: str) -> None:
        price = self.world.prices[ticker]
        held = self.world.positions.get(ticker, 0)
        record = {"id": f"{ticker}-{len(self.actions) + 1}", "symbol": ticker, "ex_date": effective_at[:10],
                  "effective_at": effective_at}
        if isinstance(action, tuple):
            new, old = action
            if not 1.0 <= price * old / new <= 2_000.0:  # (companies split to bring the price back in range)
                return
            record.update(kind="forward_split" if new > old else "reverse_split", new_rate=float(new),
                          old_rate=float(old))
            after, paid = self.world.split(ticker, new, old), Decimal(0)
            self.world.prices[ticker] = price * old / new
            STATS[f"split {new}:{old}"] += 1
        else:
            record.update(kind="cash_dividend", rate=float(action))
            after, paid = held, self.world.dividend(ticker, action)
            STATS["dividends"] += 1
        self.actions.append({"action": record, "held": held, "after": after, "paid": paid, "price": price,
                             "applied": held == 0})

    # ------------------------------------------------------------------ what the ledger did, checked

    def observe(self) -> List[str]:
        """Read the journal and the ledger after a step and check every change against the model:
        orders settled (what the broker filled, split as the allocation must), the owner's accepted
        count, corporate actions applied, orders journaled (with their crosses)."""
        journal = {o["client_order_id"]: o for o in ledger.get_net_orders(conn=self.observer)}
        for seen in list(self.books.open_orders()):
            if journal[seen.client_order_id]["status"] not in OPEN_STATES:
                self.checks.settled(seen)
        if self.accepted is not None:
            self.checks.accepted(*self.accepted)
            self.accepted = None
        self.checks.corporate_actions()
        new = [coid for coid in journal if coid not in self.books.orders]
        for coid in new:
            self.checks.journaled(net_order.load(self.observer, coid))
        return new

    # ------------------------------------------------------------------ invariants (after every step)

    @invariant()
    def every_broker_fill_is_recorded_once_on_the_right_cards(self):
        self.checks.ledger_matches_the_books()

    @invariant()
    def cards_add_up_to_the_broker_or_the_ticker_is_frozen(self):
        self.checks.tickers_add_up()

    @invariant()
    def no_card_holds_negative_shares_or_spends_cash_it_does_not_have(self):
        self.checks.nobody_short()

    @invariant()
    def available_cash_never_hands_out_what_the_cards_own(self):
        self.checks.available_cash()


__all__ = ["MoneyMachine", "STATS"]
