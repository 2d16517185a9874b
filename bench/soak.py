"""Soak: the real orchestrator and API on the paper exchange, with faults and SIGKILLs, for days.

    .venv/bin/python -m bench.soak --days 20 --speed 300 --seed 7        # the benchmark
    .venv/bin/python -m bench.soak --days 2 --speed 600 --kills 3        # what the suite runs

Every process is a real subprocess on 127.0.0.1 ports, with its own state in a temp folder:
the paper exchange (``--state``, so it survives its own SIGKILLs), ``orchestrator.py`` and
``api_server.py``. While the simulated market trades, the harness injects the exchange's faults
(5xx bursts, answers lost after processing, dropped and silent streams, slow and partial fills,
rejections), SIGKILLs the daemon at random moments and now and then the whole box (all three at
once, then starts them again as the services would), stops one card midway, announces a split and
a dividend on held tickers the evening before their ex-dates (``soak_actions``), and polls the API
as the wall does. Nights are skipped by setting the exchange's clock to just before the next open.
At the end it prints one JSON summary (see ``summarize``).

The pieces (``Box``, ``Faults``, ``ApiPoller``, ``summarize``) are meant to be reused by other
long-running checks.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Dict, Optional

import requests

from bench import soak_actions
from bench.ports import free_port
from database import db_manager, market_calendar
from database.create_stocks_db import create_stocks_db
from shared.config import REPO_ROOT
from shared.shares import quantity, to_nano
from system_databse.positions import cards_by_ticker
from system_databse import system_db_manager as ledger
from system_databse.create_system_db import create_system_db

logger = logging.getLogger("soak")

KEY, SECRET = "soak-key", "soak-secret"
ROLES = ("exchange", "orchestrator", "api")
COMPRESSED_TIME_BUDGET = "1000000"  # requests a minute: a day compressed into minutes is not throttled
# The churn cards send ~300 net orders a day on purpose (the faults need traffic): the account's daily
# order limit (200, proven on its own in test_orchestrator_pause) would pause the soak's trading midday.
DAILY_ORDER_LIMIT = "1000000"
# A card that trades often: buys 3 early in every 4-minute block (up to 9), sells all mid-block.
CHURN = '''"""Soak trader: buys 3 shares in the first minutes of each 4-minute block, sells all after."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        minute = int(str(bars.timestamp[-1])[14:16])
        held = sum(t["shares"] if t["type"] == "buy" else -t["shares"] for t in transaction_history)
        if minute % 4 < 2 and held < 9:
            return ("buy", 3)
        if minute % 4 >= 2 and held > 0:
            return ("sell", held)
        return ("hold", 0)
'''
CARDS = (("AAPL", "churn"), ("MSFT", "churn"), ("NVDA", "churn"), ("NVDA", "sma_crossover"),
         ("TSLA", "lot_take_profit"), ("KO", "bollinger_reversion")) + soak_actions.HOLDERS


def rss_kib(pid: int) -> Optional[int]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return None


# ---------------------------------------------------------------------------------------- the box
@dataclass
class Box:
    """Exchange, orchestrator and API as processes on fixed ports with their files in ``workdir``."""

    workdir: Path
    start: str
    speed: float
    seed: int = 42
    cash: str = "1000000"
    extra_env: dict = field(default_factory=dict)
    stocks_template: Optional[Path] = None  # an empty stocks.db to copy instead of building one (~5 s)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.system_db, self.stocks_db = self.workdir / "system.db", self.workdir / "stocks.db"
        self.exchange_db, self.logs = self.workdir / "paper_exchange.db", self.workdir / "logs"
        self.algorithms = self.workdir / "algorithms"
        self.rest_port, self.stream_port, self.api_port = free_port(), free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.rest_port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.rss: dict[str, list[dict]] = {r: [] for r in ROLES}  # per process start: pid, start/end KiB
        self.starts = {r: 0 for r in ROLES}
        self._session = requests.Session()

    # -- setting up
    def create(self, cards=CARDS, capital: float = 20_000.0) -> list[int]:
        """Fresh databases, the soak algorithm beside the project's, and the cards."""
        create_system_db(self.system_db)
        if self.stocks_template:
            shutil.copyfile(self.stocks_template, self.stocks_db)
        else:
            create_stocks_db(self.stocks_db)
        self.algorithms.mkdir(exist_ok=True)
        for source in (REPO_ROOT / "algorithms").glob("*.py"):
            (self.algorithms / source.name).write_bytes(source.read_bytes())
        (self.algorithms / "churn.py").write_text(CHURN)
        (self.algorithms / "hold.py").write_text(soak_actions.HOLD)
        conn = ledger.get_connection(self.system_db)
        try:
            return [ledger.create_algorithm(t, a, capital, conn=conn) for t, a in cards]
        finally:
            conn.close()

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ALPACA_", "AUTOTRADER_", "PAPER_EXCHANGE_", "API_", "NOTIFY_SOCKET", "WATCHDOG_"))}
        env.update({
            "ALPACA_API_KEY": KEY, "ALPACA_SECRET": SECRET, "ALPACA_PAPER": "True", "ALPACA_FEED": "iex",
            "ALPACA_TRADING_URL": self.base_url, "ALPACA_DATA_URL": self.base_url,
            "ALPACA_STREAM_URL": f"ws://127.0.0.1:{self.stream_port}", "AUTOTRADER_CLOCK": "broker",
            "AUTOTRADER_SYSTEM_DB": str(self.system_db), "AUTOTRADER_STOCKS_DB": str(self.stocks_db),
            "AUTOTRADER_ALGORITHMS_DIR": str(self.algorithms), "AUTOTRADER_LOG_DIR": str(self.logs),
            "AUTOTRADER_ALGORITHM_TIMEOUT": "5", "AUTOTRADER_FILL_TIMEOUT": "10", "AUTOTRADER_BAR_WAIT": "5",
            "API_HOST": "127.0.0.1", "API_PORT": str(self.api_port), "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1", "PAPER_EXCHANGE_KEY": KEY, "PAPER_EXCHANGE_SECRET": SECRET,
            "AUTOTRADER_DAILY_ORDER_LIMIT": DAILY_ORDER_LIMIT,
        })
        if self.speed > 1:  # see _compress_the_request_budget
            env["AUTOTRADER_REQUESTS_PER_MINUTE"] = COMPRESSED_TIME_BUDGET
        env.update(self.extra_env)
        return env

    def _argv(self, role: str) -> list[str]:
        if role == "exchange":
            return [sys.executable, "-m", "paper_exchange", "--port", str(self.rest_port), "--stream-port",
                    str(self.stream_port), "--start", self.start, "--speed", f"{self.speed:g}", "--seed",
                    str(self.seed), "--cash", self.cash, "--state", str(self.exchange_db)]
        return [sys.executable, "orchestrator.py" if role == "orchestrator" else "api_server.py"]

    # -- processes
    def start_role(self, role: str) -> None:
        self.logs.mkdir(exist_ok=True)
        out = open(self.workdir / f"{role}.out", "a")
        self.processes[role] = subprocess.Popen(self._argv(role), cwd=REPO_ROOT, env=self.env(), stdout=out,
                                                stderr=subprocess.STDOUT)
        out.close()
        self.starts[role] += 1
        self._wait_ready(role)
        if role == "exchange":
            self._compress_the_request_budget()
        self.rss[role].append({"pid": self.processes[role].pid, "started": time.monotonic(), "start": None,
                               "end": None})

    def _wait_ready(self, role: str, timeout: float = 90.0) -> None:
        url = {"exchange": f"{self.base_url}/_sim/state", "api": f"{self.api_url}/api/health"}.get(role)
        deadline = time.monotonic() + timeout
        while url:
            try:
                self._session.get(url, timeout=5)
                return
            except requests.RequestException:
                if self.processes[role].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{role} did not come up:\n{self.output(role)[-3000:]}")
                time.sleep(0.2)

    def _compress_the_request_budget(self) -> None:
        """A day at 300x makes a real minute's worth of requests every fifth of a second (the daemon
        runs every simulated minute, as at 1x), while Alpaca's 200 a minute count real minutes: the
        broker's limit and the daemon's budget are switched off, as in the suite's compressed-time
        stories and the footprint bench (both are proven on their own)."""
        if self.speed > 1:
            self.control(rate_limit_per_minute=0)

    def uptime(self, role: str) -> float:
        """Real seconds since ``role`` was last started."""
        return time.monotonic() - self.rss[role][-1]["started"] if self.rss[role] else 0.0

    def start_all(self) -> None:
        for role in ROLES:
            self.start_role(role)

    def sample_rss(self, settle: float = 3.0) -> None:
        """RSS of each live process: ``start`` once it has run ``settle`` seconds, ``end`` the latest."""
        for role, process in self.processes.items():
            if process.poll() is None and self.rss[role]:
                record = self.rss[role][-1]
                now = rss_kib(record["pid"])
                if now and record["pid"] == process.pid:
                    if record["start"] is None and time.monotonic() - record["started"] >= settle:
                        record["start"] = now
                    record["end"] = now

    def kill(self, *roles: str) -> None:
        """SIGKILL, all at once: a crash, or with every role a power cut of the whole box."""
        self.sample_rss()
        for role in roles:
            process = self.processes.get(role)
            if process and process.poll() is None:
                process.kill()
        for role in roles:
            process = self.processes.get(role)
            if process:
                process.wait(timeout=30)

    def stop_all(self, timeout: float = 90.0) -> dict[str, Optional[int]]:
        """SIGTERM in reverse start order; returns each exit status (None: had to be killed)."""
        self.sample_rss()
        codes: dict[str, Optional[int]] = {}
        for role in reversed(ROLES):
            process = self.processes.get(role)
            if process is None:
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                codes[role] = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                codes[role] = None
        return codes

    def output(self, role: str) -> str:
        path = self.workdir / f"{role}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- the exchange's test controls
    def control(self, **switches) -> dict:
        response = self._session.post(f"{self.base_url}/_sim/control", json=switches, timeout=30)
        response.raise_for_status()
        return response.json()

    def announce(self, action: dict) -> dict:
        """Schedule a split or dividend (``corporate_actions.py``'s spec), as the broker announces one."""
        response = self._session.post(f"{self.base_url}/_sim/corporate_actions", json=action, timeout=30)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict:
        response = self._session.get(f"{self.base_url}/_sim/state", timeout=60)
        response.raise_for_status()
        return response.json()

    def bar_minutes(self, ticker: str, first: str, last: str) -> set[str]:
        """Minutes in [first, last] for which the exchange serves a bar of ``ticker`` (IEX is sparse)."""
        found, token = set(), None
        headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
        while True:
            params = {"symbols": ticker, "timeframe": "1Min", "start": first, "end": last, "limit": 10000,
                      "feed": "iex"}
            if token:
                params["page_token"] = token
            body = self._session.get(f"{self.base_url}/v2/stocks/bars", params=params, headers=headers,
                                     timeout=60).json()
            found |= {market_calendar.to_utc_string(b["t"]) for b in (body.get("bars") or {}).get(ticker, [])}
            token = body.get("next_page_token")
            if not token:
                return found

    def exchange_now(self) -> datetime:
        return market_calendar.parse_utc(self.state()["clock"]["now"]).to_pydatetime()


# ----------------------------------------------------------------------------------------- faults
class Faults:
    """Random exchange faults, one at a time, every ``every`` real seconds; counted by kind."""

    KINDS = ("5xx_burst", "lost_answer", "drop_streams", "silent_streams", "slow_fills", "partial_fills",
             "rejections")

    def __init__(self, box: Box, rng: random.Random, every: float = 4.0) -> None:
        self.box, self.rng, self.every = box, rng, every
        self.counts = {k: 0 for k in self.KINDS}
        self._undo: Optional[dict] = None

    def step(self) -> None:
        """Undo the previous lasting fault, then inject a new one."""
        if self._undo:
            self.box.control(**self._undo)
            self._undo = None
        kind = self.rng.choice(self.KINDS)
        if kind == "5xx_burst":
            self.box.control(fail_requests=self.rng.randint(1, 4), fail_status=self.rng.choice([500, 502, 503]),
                             fail_after_processing=False)
        elif kind == "lost_answer":
            self.box.control(fail_requests=1, fail_status=500, fail_after_processing=True)
        elif kind == "drop_streams":
            self.box.control(drop_streams=True)
        elif kind == "silent_streams":
            self.box.control(silence_streams_seconds=self.rng.uniform(1, 4))
        elif kind == "slow_fills":
            self.box.control(fill_delay_seconds=self.rng.uniform(1, 4))
            self._undo = {"fill_delay_seconds": 0}
        elif kind == "partial_fills":
            self.box.control(partial_fill_ratio=0.5, partial_fill_hold_seconds=1)
            self._undo = {"partial_fill_ratio": None}
        else:
            self.box.control(reject_orders=self.rng.randint(1, 2))
        self.counts[kind] += 1

    def clear(self) -> None:
        self.box.control(fail_requests=0, fail_after_processing=False, fill_delay_seconds=0, partial_fill_ratio=None,
                         reject_orders=0)
        self._undo = None


# --------------------------------------------------------------------------------------- API polls
class ApiPoller:
    """Polls the API as the wall does (cards, health) from its own thread; records status and latency."""

    PATHS = ("/api/algorithms", "/api/health")

    def __init__(self, base_url: str, interval: float = 0.5) -> None:
        self.base_url, self.interval = base_url, interval
        self.latencies: list[float] = []
        self.server_errors = 0
        self.unreachable = 0
        self.last_cards: Optional[list] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.wait(self.interval):
            for path in self.PATHS:
                started = time.monotonic()
                try:
                    response = session.get(self.base_url + path, timeout=30)
                except requests.RequestException:
                    self.unreachable += 1  # the API is down (killed, restarting)
                    continue
                self.latencies.append(time.monotonic() - started)
                if response.status_code >= 500:
                    self.server_errors += 1
                elif path == "/api/algorithms" and response.ok:
                    self.last_cards = response.json().get("algorithms")

    def summary(self) -> dict:
        ordered = sorted(self.latencies)
        pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else None
        return {"polls": len(ordered) + self.unreachable, "answered": len(ordered),
                "server_errors_5xx": self.server_errors, "unreachable_while_restarting": self.unreachable,
                "p50_ms": pick(0.50), "p99_ms": pick(0.99)}


# ---------------------------------------------------------------------------------------- summary
def summarize(box: Box, first_minute: str, last_minute: str) -> dict:
    """Ledger against exchange, bars against the calendar, logs for tracebacks."""
    state = box.state()
    orders = state["orders"]
    conn = ledger.get_connection(box.system_db, read_only=True)
    market = db_manager.get_connection(box.stocks_db, read_only=True)
    try:
        cards = ledger.get_all_algorithms(conn=conn)
        journal_rows = ledger.get_orders(conn=conn)
        ledger_positions = cards_by_ticker(conn=conn)
        effects = ledger.get_corporate_action_effects(None, conn=conn)
        transactions = sum(len(ledger.get_transactions(c["id"], conn=conn)) for c in cards)
        tickers = sorted({c["ticker"] for c in cards})
        missing = {t: sorted(box.bar_minutes(t, first_minute, last_minute) - _stored(market, t, first_minute,
                                                                                   last_minute)) for t in tickers}
    finally:
        conn.close()
        market.close()
    filled = [o for o in orders if to_nano(o["filled_qty"]) > 0]
    parts: Dict[str, list] = {}  # a net order's fill is split over its cards: one 'order' row each
    for row in journal_rows:  # (a 'cross' row is shares moved between two cards that minute, never the broker's)
        if row["kind"] == "order":
            parts.setdefault(row["client_order_id"], []).append(row)
    lost = [o["client_order_id"] for o in filled
            if all(r["transaction_id"] is None for r in parts.get(o["client_order_id"], []))]
    qty_mismatch = [o["client_order_id"] for o in filled if o["client_order_id"] in parts
                    and sum(to_nano(r["filled_shares"] or 0) for r in parts[o["client_order_id"]])
                    != to_nano(o["filled_qty"])]
    ids = [o["client_order_id"] for o in orders]
    broker = {s: quantity(p["qty"]) for s, p in state["positions"].items()}  # "10.5": a split's fraction
    per_ticker = {t: {"cards": ledger_positions.get(t, 0), "broker": broker.get(t, 0)}
                  for t in sorted(set(broker) | set(ledger_positions))}
    return {
        "orders": len(orders), "fills": len(filled), "transactions": transactions,
        "card_fills": sum(1 for row in journal_rows if row["transaction_id"] is not None),  # a net order: one per card
        "lost_fills": len(lost), "lost_fill_ids": lost[:10],
        "duplicate_orders": len(ids) - len(set(ids)) + _duplicate_decisions(ids),
        "fill_qty_mismatches": len(qty_mismatch),
        "positions": per_ticker,
        "position_mismatches": sorted(t for t, v in per_ticker.items() if v["cards"] != v["broker"]),
        "missing_bars": sum(len(v) for v in missing.values()),
        "missing_bar_examples": {t: v[:5] for t, v in missing.items() if v},
        **soak_actions.check(state, effects),
        "tracebacks": _tracebacks(box),
    }


def _stored(market, ticker: str, first: str, last: str) -> set[str]:
    gaps = set(db_manager.find_gaps(market, ticker, first, last))
    return set(market_calendar.minutes_between(first, last)) - gaps


def _duplicate_decisions(ids: list[str]) -> int:
    """Two orders for one card, minute and side would be a decision sent twice under new ids."""
    keys = [m.group(1) for m in (re.match(r"(at-\d+-\d{12}-(?:buy|sell))", i) for i in ids) if m]
    return len(keys) - len(set(keys))


def _tracebacks(box: Box) -> int:
    texts = [box.output(r) for r in ROLES] + [p.read_text(errors="replace") for p in box.logs.glob("*.log*")]
    return sum(t.count("Traceback (most recent call last)") for t in texts)


# ----------------------------------------------------------------------------------------- driver
def trading_days(start: str, count: int) -> list[str]:
    """The first ``count`` session days (YYYY-MM-DD, New York) whose close is after ``start``."""
    days, at = [], market_calendar.parse_utc(start)
    while len(days) < count:
        closing = market_calendar.next_close(at)
        days.append(market_calendar.nyse().minute_to_session(closing - timedelta(minutes=1)).strftime("%Y-%m-%d"))
        at = closing
    return days


@dataclass
class SoakOptions:
    days: int = 2
    speed: float = 600.0
    seed: int = 7
    start: str = "2026-11-02T14:28:00Z"   # a Monday, just before the open
    daemon_kills: int = 6
    box_kills: int = 2
    faults: bool = True
    corporate_actions: bool = True  # soak_actions.plan: a split and a dividend announced mid-run
    fault_every: float = 3.0
    min_uptime: float = 8.0  # real seconds a restarted daemon runs before it may be killed again
    workdir: Optional[Path] = None
    stocks_template: Optional[Path] = None  # see Box


class Soak:
    """Runs ``options.days`` trading sessions and returns the summary."""

    def __init__(self, options: SoakOptions) -> None:
        self.o = options
        self.rng = random.Random(options.seed)
        self.box = Box(options.workdir or Path("bench/results/tmp/soak"), options.start, options.speed, options.seed,
                       stocks_template=options.stocks_template)
        self.faults = Faults(self.box, self.rng, options.fault_every)
        self.poller = ApiPoller(self.box.api_url)
        self.kills = {"daemon": 0, "box": 0}
        self.sessions: list[str] = []
        self.stopped_card: Optional[int] = None

    def run(self) -> dict:
        started = time.monotonic()
        cards = self.box.create()
        self.box.start_all()
        self.poller.start()
        try:
            try:
                self._trade(cards)
            finally:
                self.poller.stop()
            cards_before = self.poller.last_cards
            self.faults.clear()
            self._quiesce()
            summary = self._summary(cards_before, time.monotonic() - started)
        except BaseException:
            self.box.kill(*ROLES)  # a failed run leaves no process behind
            raise
        summary["clean_exits"] = self.box.stop_all()
        return summary

    def _trade(self, cards: list[int]) -> None:
        days = trading_days(self.o.start, self.o.days)
        self.sessions = days
        plan = self._kill_plan(len(days))
        actions = soak_actions.plan(days) if self.o.corporate_actions else {}
        for index, day in enumerate(days):
            opening, closing = (b.to_pydatetime() for b in market_calendar.session_bounds(day))
            for action in actions.get(day, []):  # the evening before its ex-date, the daemon running
                self.box.announce(action)
                logger.info("announced %s", action)
            if index and self.box.exchange_now() < opening - timedelta(minutes=2):
                self.box.control(clock={"set": market_calendar.to_utc_string(opening - timedelta(minutes=2))})
            if index == len(days) // 2 and self.stopped_card is None:
                self._stop_a_card(cards)
            self._session(closing, plan.get(index, []))

    def _kill_plan(self, days: int) -> dict[int, list[str]]:
        """Which kills happen on which day (each at a random moment of that day)."""
        kinds = ["daemon"] * self.o.daemon_kills + ["box"] * self.o.box_kills
        plan: dict[int, list[str]] = {}
        for kind in kinds:
            plan.setdefault(self.rng.randrange(days), []).append(kind)
        return plan

    def _session(self, closing: datetime, kills: list[str]) -> None:
        """Until the close: faults now and then, the day's kills at random moments."""
        real_length = (closing - self.box.exchange_now()).total_seconds() / self.o.speed
        moments = sorted(self.rng.uniform(0.05, 0.9) * real_length for _ in kills)
        began, next_fault = time.monotonic(), time.monotonic() + self.o.fault_every
        while self.box.exchange_now() < closing + timedelta(minutes=1):
            elapsed = time.monotonic() - began
            if moments and elapsed >= moments[0] and self.box.uptime("orchestrator") >= self.o.min_uptime:
                moments.pop(0)
                self._kill(kills.pop(0))
            if self.o.faults and time.monotonic() >= next_fault:
                self.faults.step()
                next_fault = time.monotonic() + self.o.fault_every
            self.box.sample_rss()
            self._check_alive()
            time.sleep(0.2)
        self.faults.clear()

    def _kill(self, kind: str) -> None:
        if kind == "daemon":
            self.box.kill("orchestrator")
            time.sleep(self.rng.uniform(0.1, 1.0))
            self.box.start_role("orchestrator")
        else:
            self.box.kill(*ROLES)
            time.sleep(self.rng.uniform(0.1, 1.0))
            self.box.start_all()
        self.kills[kind] += 1
        logger.info("killed the %s", kind)

    def _check_alive(self) -> None:
        for role, process in self.box.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{role} exited on its own ({process.returncode}):\n{self.box.output(role)[-3000:]}")

    def _stop_a_card(self, cards: list[int]) -> None:
        conn = ledger.get_connection(self.box.system_db)
        try:
            self.stopped_card = cards[2]  # NVDA churn: NVDA stays subscribed for the other NVDA card
            ledger.stop_algorithm(self.stopped_card, conn=conn)
        finally:
            conn.close()
        logger.info("stopped card %d midway", self.stopped_card)

    def _quiesce(self, timeout: float = 120.0) -> None:
        """After the last close: let the daemon finish starting (its backfill), complete the day's bars
        and settle every order."""
        deadline = time.monotonic() + timeout
        closed = market_calendar.to_utc_string(market_calendar.session_bounds(self.sessions[-1])[1])
        conn = ledger.get_connection(self.box.system_db, read_only=True)
        try:
            pid = self.box.processes["orchestrator"].pid
            while time.monotonic() < deadline:
                open_orders = [o for o in self.box.state()["orders"] if o["status"] in ("accepted", "new",
                                                                                           "partially_filled")]
                beat = ledger.get_heartbeat("orchestrator", conn=conn) or {}
                payload = beat.get("payload", {})
                started = payload.get("pid") == pid  # its start-up backfill is done
                completed = (payload.get("session_completed_at") or "") >= closed  # and the day's bars
                if started and completed and not open_orders and not ledger.get_open_orders(conn=conn):
                    return
                time.sleep(1.0)
        finally:
            conn.close()

    def _summary(self, cards_before, seconds: float) -> dict:
        first = market_calendar.session_bounds(self.sessions[0])[0]
        last = market_calendar.session_bounds(self.sessions[-1])[1] - timedelta(minutes=1)
        self.box.sample_rss()
        books = summarize(self.box, market_calendar.to_utc_string(first), market_calendar.to_utc_string(last))
        return {
            "trading_days": len(self.sessions), "first_day": self.sessions[0], "last_day": self.sessions[-1],
            "speed": self.o.speed, "real_seconds": round(seconds, 1),
            "kills": {"daemon": self.kills["daemon"], "whole_box": self.kills["box"]},
            "faults": dict(self.faults.counts), "stopped_card": self.stopped_card,
            **books,
            "api": self.poller.summary(),
            "rss_kib": {r: [{"pid": x["pid"], "start": x["start"], "end": x["end"]} for x in v]
                        for r, v in self.box.rss.items()},
            "process_starts": dict(self.box.starts),
        }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--speed", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default=SoakOptions.start, help="simulated start, UTC (default %(default)s)")
    parser.add_argument("--kills", type=int, default=None, help="daemon SIGKILLs (default: 2 per trading day)")
    parser.add_argument("--box-kills", type=int, default=None, help="whole-box SIGKILLs (default: 1 per 5 days)")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--no-corporate-actions", action="store_true",
                        help="no 3:2 AAPL split on day 2 and no $0.25 KO dividend on day 3")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a fresh temp folder")
    args = parser.parse_args(argv)
    if args.days < 1 or args.speed <= 0:
        print("error: --days must be >= 1 and --speed > 0", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s soak %(message)s", stream=sys.stderr)
    import tempfile

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="autotrader-soak-"))
    options = SoakOptions(days=args.days, speed=args.speed, seed=args.seed, start=args.start,
                          daemon_kills=args.kills if args.kills is not None else 2 * args.days,
                          box_kills=args.box_kills if args.box_kills is not None else max(1, args.days // 5),
                          faults=not args.no_faults, corporate_actions=not args.no_corporate_actions,
                          workdir=workdir)
    soak = Soak(options)
    try:
        summary = soak.run()
    except BaseException:
        soak.box.kill(*ROLES)
        raise
    summary["workdir"] = str(workdir)
    print(json.dumps(summary, indent=2))
    clean = (summary["lost_fills"] == summary["duplicate_orders"] == summary["fill_qty_mismatches"] == 0
             and not summary["position_mismatches"] and summary["missing_bars"] == 0
             and not summary["corporate_action_mismatches"])
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
