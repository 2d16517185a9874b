"""The money model's checks: each change the ledger made in a step, and the invariants after it.

``MoneyMachine.observe`` hands every change here as it finds it (an order settled, the owner's
accepted count, a corporate action applied, an order journaled); each is checked against the
broker model and the allocation rule, then written into the books. The invariants compare the
books, the ledger and the broker after every step.
"""
from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Dict, List

from orchestra import net_order
from orchestra.net_order import NetOrder
from shared.shares import NANO, from_nano, to_nano
from system_databse import card_calculations, positions, system_db_manager as ledger
from tests.money_books import STATS, Seen

if TYPE_CHECKING:
    from tests.money_model import MoneyMachine

CASH_TOLERANCE = Decimal("0.005")  # the decision checker's half cent (algorithms/_checker.py); cents rounding


class Checks:
    def __init__(self, machine: "MoneyMachine"):
        self.m = machine

    def pending(self, ticker: str) -> bool:
        """A corporate action the broker applied that the ledger has not yet (the keeper waits
        for the ticker's open orders, and runs before the next decision)."""
        return any(not a["applied"] and a["action"]["symbol"] == ticker for a in self.m.actions)

    def filled_at_broker(self, client_order_id: str) -> int:
        order = self.m.world.orders.get(client_order_id)
        return order.filled if order is not None else 0

    # ------------------------------------------------------------------ changes

    def settled(self, seen: Seen) -> None:
        """An order ended in the journal: exactly what the broker filled, split as the allocation
        says, at the broker's price, and only once the broker is done with it."""
        m, coid = self.m, seen.client_order_id
        order = net_order.load(m.observer, coid)
        broker = m.world.orders.get(coid)
        filled = broker.filled if broker is not None else 0
        assert broker is None or not broker.is_open, \
            f"{coid}: the ledger ended it ({order.state}) while the broker still works it ({broker.status})"
        assert to_nano(order.filled) == filled, f"{coid}: the ledger says {order.filled} filled, the broker " \
                                                f"{from_nano(filled)}"
        expected = {card: nano for card, nano in seen.allocation(filled).items() if nano}
        assert {card: to_nano(s) for card, s in order.fills.items()} == expected, \
            f"{coid}: cards got {order.fills}, the allocation of {from_nano(filled)} gives {expected}"
        ends = {"filled"} if filled == sum(seen.parts.values()) else {"cancelled"} if filled \
            else {"cancelled", "failed"}
        assert order.state in ends, f"{coid}: ended {order.state} with {from_nano(filled)} filled"
        for card, nano in expected.items():
            m.books.cards[card].record(seen.side, nano, float(broker.price))
        seen.open = False
        STATS["orders filled" if filled == sum(seen.parts.values()) else "orders filled in part" if filled
              else "orders ended with nothing filled"] += 1

    def journaled(self, order: NetOrder) -> None:
        """A new order: only on a ticker the daemon may trade, alone on it, each card's part and
        cross what it asked for; its crosses are in the ledger at once."""
        m = self.m
        assert order.ticker not in m.frozen_at_start, f"{order.client_order_id}: traded a frozen ticker"
        assert not self.pending(order.ticker), f"{order.client_order_id}: traded before the ticker's split/dividend"
        assert not list(m.books.open_orders(order.ticker)), f"{order.client_order_id}: a second open order"
        seen = Seen(order.client_order_id, order.ticker, order.side, order.price,
                    {card: to_nano(s) for card, s in order.parts.items()}, open=order.is_open)
        crossed = {"buy": 0, "sell": 0}
        for card in sorted(set(order.parts) | set(order.crosses)):
            side, wanted = self.intent(card)
            cross, part = to_nano(order.crosses.get(card, 0)), seen.parts.get(card, 0)
            left = wanted - cross - part
            assert (not part or side == order.side) and (left == 0 or (side == "sell" and 0 < left < NANO)), \
                f"{order.client_order_id}: card {card} wanted {side} {from_nano(wanted)}, crossed " \
                f"{from_nano(cross)} and sent {from_nano(part)} ({order.side})"
            crossed[side] += cross
            if cross:
                m.books.cards[card].record(side, cross, order.price)
                STATS["crosses"] += 1
        assert crossed["buy"] == crossed["sell"], f"{order.client_order_id}: crosses {crossed} do not match"
        m.books.orders[order.client_order_id] = seen
        STATS["orders journaled" if order.side else "minutes crossed out"] += 1
        if not order.is_open and order.side is not None:
            self.settled(seen)
        seen.open = order.is_open

    def intent(self, card: int) -> tuple:
        """What a card asked for in the minute: a stopped card sells everything it holds."""
        if card in self.m.stopped_before_trading:
            return "sell", self.m.books.cards[card].held
        assert card in self.m.intents, f"card {card} is in an order it never asked for"
        return self.m.intents[card]

    def accepted(self, card: int, made: List[dict]) -> None:
        """``--accept-broker``: one transaction, and then the cards add up to the broker."""
        m = self.m
        ticker = m.books.cards[card].ticker
        if not made:
            return
        [row] = made
        nano = to_nano(row["shares"])
        signed = nano if row["type"] == "buy" else -nano
        unsettled = self.m.books.unsettled(self.filled_at_broker)[0].get(ticker, 0)
        gap = m.world.positions.get(ticker, 0) - m.books.held_by_ticker().get(ticker, 0) - unsettled
        assert signed == gap, f"card {card} {ticker}: accepting recorded {row['type']} {row['shares']}, " \
                              f"the broker differs by {from_nano(gap)}"
        m.books.cards[card].record(row["type"], nano, row["price"])
        m.manual[ticker] = 0
        STATS["broker counts accepted"] += 1

    def corporate_actions(self) -> None:
        rows: Dict[str, List[dict]] = {}
        for row in ledger.get_corporate_action_effects(None, conn=self.m.observer):
            rows.setdefault(row["action_id"], []).append(row)
        for action in self.m.actions:
            made = rows.get(action["action"]["id"], [])
            if action["applied"]:
                assert len(made) == action.get("rows", 0), f"{action['action']['id']} applied again"
            elif made:
                self.applied(action, made)

    def applied(self, action: dict, made: List[dict]) -> None:
        """A split: every holder's shares times the ratio (each within a nano-share of the exact
        figure) adding up to the broker's, its value and P&L unchanged at the split price. A
        dividend: the broker's payment, all of it, split over the holders."""
        m, what = self.m, action["action"]
        holders = {c: card.held for c, card in m.books.cards.items() if card.ticker == what["symbol"] and card.held}
        assert {r["algorithm_id"] for r in made} == set(holders), f"{what['id']}: holders {holders}, rows {made}"
        assert sum(holders.values()) == action["held"], f"{what['id']}: the cards held {holders}, the broker " \
                                                        f"{from_nano(action['held'])}"
        for row in made:
            assert to_nano(row["shares_before"]) == holders[row["algorithm_id"]]
        if what["kind"] == "cash_dividend":
            rate = Decimal(repr(what["rate"]))
            cash = {r["algorithm_id"]: Decimal(repr(r["cash"])) for r in made}
            for card, paid in cash.items():
                assert abs(paid - Decimal(holders[card]) / NANO * rate) < Decimal("0.01")
                m.books.cards[card].cash += paid
            assert sum(cash.values()) == action["paid"], f"{what['id']}: cards got {cash}, the broker paid " \
                                                         f"{action['paid']}"
        else:
            new, old = int(what["new_rate"]), int(what["old_rate"])
            after = {r["algorithm_id"]: holders[r["algorithm_id"]] + int(r["share_change"]) * NANO
                     + to_nano(r["fractional_change"]) for r in made}
            for card, nano in after.items():
                assert abs(nano * old - holders[card] * new) < old, f"{what['id']}: card {card} {from_nano(nano)}"
                self.same_value(m.books.cards[card], holders[card], nano, action["price"], old / new)
                m.books.cards[card].held = nano
            assert sum(after.values()) == action["after"], \
                f"{what['id']}: the cards hold {from_nano(sum(after.values()))} after the split, the broker " \
                f"{from_nano(action['after'])} ({ {c: from_nano(n) for c, n in after.items()} })"
        action["applied"], action["rows"] = True, len(made)
        STATS["corporate actions applied"] += 1

    @staticmethod
    def same_value(card, before: int, after: int, price: float, factor: float) -> None:
        invested, capital = float(card.capital - card.cash), float(card.capital)
        then = card_calculations.value_from_totals(from_nano(before), invested, price, capital)
        now = card_calculations.value_from_totals(from_nano(after), invested, price * factor, capital)
        assert abs(now - then) <= price * factor * 1e-9 + 1e-6, f"card {card.card_id}: value {then} -> {now}"
        assert abs((now - capital) - (then - capital)) <= price * factor * 1e-9 + 1e-6

    # ------------------------------------------------------------------ invariants

    def ledger_matches_the_books(self) -> None:
        held = positions.positions(conn=self.m.observer)
        for card_id, card in self.m.books.cards.items():
            position = held[card_id]
            assert position.held_nano == card.held, f"card {card_id}: ledger {position.shares}, " \
                                                    f"model {from_nano(card.held)}"
            assert abs(position.uninvested_cash - float(card.cash)) <= 1e-6 * max(1.0, abs(float(card.capital))), \
                f"card {card_id}: ledger cash {position.uninvested_cash}, model {card.cash}"
            rows = ledger.get_transactions(card_id, conn=self.m.observer)
            assert Counter((t["type"], to_nano(t["shares"]), float(t["price"])) for t in rows) == card.transactions, \
                f"card {card_id}: ledger {rows}, model {card.transactions}"

    def tickers_add_up(self) -> None:
        m = self.m
        unsettled = m.books.unsettled(self.filled_at_broker)[0]
        cards = m.books.held_by_ticker()
        for ticker in m.world.prices:
            if self.pending(ticker):
                continue
            broker = m.world.positions.get(ticker, 0)
            assert broker == cards.get(ticker, 0) + unsettled.get(ticker, 0) + m.manual[ticker], \
                f"{ticker}: broker {from_nano(broker)}, cards {from_nano(cards.get(ticker, 0))}, not settled yet " \
                f"{from_nano(unsettled.get(ticker, 0))}, sold by hand {from_nano(m.manual[ticker])}"
        assert max(Counter(o.ticker for o in m.books.open_orders()).values(), default=0) <= 1

    def nobody_short(self) -> None:
        assert not self.m.world.overdrawn, f"orders the account could not cover: {self.m.world.overdrawn}"
        _, shares, cash, _ = self.m.books.unsettled(self.filled_at_broker)
        for card_id, card in self.m.books.cards.items():
            assert card.held >= 0 and card.held + shares.get(card_id, 0) >= 0, f"card {card_id} holds less than 0"
            assert card.cash + cash.get(card_id, Decimal(0)) >= -CASH_TOLERANCE, \
                f"card {card_id} spent cash it does not have: {card.cash + cash.get(card_id, Decimal(0))}"

    def available_cash(self) -> None:
        m = self.m
        _, _, cash, to_pay = m.books.unsettled(self.filled_at_broker)
        running = {c["id"] for c in ledger.get_all_algorithms("running", conn=m.observer)}
        owned = sum((card.cash + cash.get(c, Decimal(0)) if c in running else to_pay.get(c, Decimal(0))
                     for c, card in m.books.cards.items()), Decimal(0))
        available = card_calculations.available_cash(float(m.world.cash), conn=m.observer)["available_cash"]
        assert Decimal(repr(available)) <= m.world.cash - owned + CASH_TOLERANCE + Decimal("0.000001"), \
            f"available {available} but the broker's {m.world.cash} less what the cards own ({owned}) is " \
            f"{m.world.cash - owned}"
