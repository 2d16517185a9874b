"""The orchestrator's process as the money model runs it (``tests/money_model.py``): the daemon's
own parts (trader, cycle, corporate-action keeper) on the example's ``system.db`` and
``stocks.db``, a stand-in for the card runner whose decisions the real checker checks, and the
process dying at a chosen event and starting again on the same files.
"""
from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional

from algorithms import check_decision
from database import db_manager
from database.create_stocks_db import SCHEMA as STOCKS_SCHEMA
from orchestra.card_runner import CardDecision
from shared.clock import stamp
from orchestra.corporate_actions import CorporateActionKeeper
from orchestra.cycle import Cycle
from orchestra.heartbeat import ErrorLog
from orchestra.trader import Trader
from shared.shares import to_nano
from system_databse import positions, system_db_manager as ledger
from system_databse.create_system_db import create_system_db
from tests.money_books import STATS
from tests.money_broker import Dead, Fate

if TYPE_CHECKING:
    from tests.money_model import MoneyMachine

_TEMPLATES: Dict[str, Path] = {}


def fast_tmp() -> Optional[str]:
    """A memory-backed temp directory when there is one (the ledger fsyncs every commit)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and shm.stat().st_mode & 0o002 else None


def templates() -> Dict[str, Path]:
    """An empty system.db and stocks.db made once per process; each example copies them."""
    if not _TEMPLATES:
        where = Path(tempfile.mkdtemp(prefix="money-model-templates-", dir=fast_tmp()))
        create_system_db(where / "system.db")
        with sqlite3.connect(where / "stocks.db") as conn:  # the bars table only: no calendar needed here
            conn.executescript(STOCKS_SCHEMA.read_text())
        _TEMPLATES.update({"system": where / "system.db", "stocks": where / "stocks.db"})
    return _TEMPLATES


class ModelRunner:
    """Stands in for the CardRunner: the machine says what each card wants, the real checker
    checks it against the card's real position (as the runner does), the wall's STOP may land
    right after the decisions."""

    def __init__(self, machine: "MoneyMachine", conn: sqlite3.Connection):
        self.machine, self.conn = machine, conn
        self.wishes: Dict[int, tuple] = {}
        self.stop_after_deciding: List[int] = []

    def decide_all(self, cards, minute):
        held = positions.positions(conn=self.conn, cards=cards, open_orders=False)
        made = []
        for card in cards:
            position, price = held[card["id"]], self.machine.world.prices[card["ticker"]]
            decision = check_decision(wanted(self.wishes.get(card["id"], ("hold",)), position, price),
                                      position=position.shares, uninvested_cash=position.uninvested_cash, price=price)
            if decision.is_trade:
                self.machine.intents[card["id"]] = (decision.action, to_nano(decision.shares))
            made.append((card, CardDecision(card, decision, price, 1, stamp(minute), None)))
        for card_id in self.stop_after_deciding:
            self.machine.stop(card_id)
        return made


def wanted(wish: tuple, position: positions.Position, price: float) -> tuple:
    """A decision as an algorithm would return it (some too big: the checker refuses those)."""
    if wish[0] == "sell_all" and position.has_shares:
        return ("sell", float(position.shares) if position.fraction else int(position.shares), "sell everything")
    shares = 0
    if wish[0] == "buy":
        shares = int(wish[1] * max(0.0, position.uninvested_cash) / price)
    elif wish[0] == "sell":
        shares = int(wish[1] * position.whole)
    return (wish[0], shares) if shares else ("hold", 0)


class Daemon:
    """New objects on the same files, then what start-up runs: settle the orders left open and
    apply the day's corporate actions (``orchestra.daemon.Daemon.start``)."""

    def __init__(self, machine: "MoneyMachine"):
        self.machine = machine
        self.fate = machine.world.fate = Fate()
        self.conn = ledger.get_connection(machine.system_db)
        self.market = db_manager.get_connection(machine.stocks_db)
        self.runner = ModelRunner(machine, self.conn)
        self.trader = Trader(machine.world, self.conn, now=lambda: machine.now, fill_timeout=30, workers=1)
        self.cycle = Cycle(ledger_conn=self.conn, market_conn=self.market, broker=machine.world, trader=self.trader,
                           runner=self.runner, errors=ErrorLog())
        self.cycle.now = lambda: machine.now
        self.keeper = CorporateActionKeeper(self.conn, self.market, self._fetch_actions)
        self.cycle.after_reconcile = self.apply_corporate_actions
        self.cycle.reconcile()
        self.apply_corporate_actions()

    def close(self) -> None:
        """The process ends: its connections close (a transaction still open is lost)."""
        self.conn.close()
        self.market.close()

    def run(self, work, crash) -> bool:
        """Run ``work`` in this process, which dies at ``crash`` ((where, n): the n-th broker call
        or slice of SQLite work) if given; True if it died."""
        if crash is not None:
            self.fate = self.machine.world.fate = Fate(crash[1], crash[0])
            if crash[0] == "sqlite":
                self.fate.watch(self.conn)
                self.fate.watch(self.market)
        try:
            work()
        except Dead:
            pass
        except (sqlite3.Error, ledger.LedgerError):
            if not self.fate.dead:
                raise
        if self.fate.dead:
            STATS[f"died at a {self.fate.where} event"] += 1
            return True
        for conn in (self.conn, self.market):
            conn.set_progress_handler(None, 0)
        self.fate = self.machine.world.fate = Fate()
        return False

    def apply_corporate_actions(self) -> None:
        try:  # as the daemon does: a failure waits for the next cycle
            self.keeper.check(self.machine.now)
        except (sqlite3.Error, ledger.LedgerError):
            if self.fate.dead:
                raise

    def _fetch_actions(self, tickers, start, end):
        return [dict(a["action"]) for a in self.machine.actions if a["action"]["symbol"] in tickers]
