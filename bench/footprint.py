"""Footprint on a small Pi: memory, SD-card writes, CPU and disk of the running system.

Starts the paper exchange, the orchestrator and the API as the services run them, with 20 cards
on 10 tickers (the shipped algorithms in turn), runs one simulated trading day while polling the
API as the wall does, then a closed night in real time with nobody at the wall, and prints per
process: RSS at start / after the day / after the night, bytes written (``/proc/<pid>/io``
``write_bytes``: what reached the block layer, i.e. the SD card) and CPU seconds (user + system,
all threads) for the day and for the night, and the databases' sizes.

    .venv/bin/python -m bench.footprint                       # speed 60: a day takes ~7 minutes
    .venv/bin/python -m bench.footprint --night-seconds 1800 --json out.json
    .venv/bin/python -m bench.footprint --days 5 --speed 120 --night-seconds 60   # a short soak
    .venv/bin/python -m bench.footprint --clock system        # production's clock, a real night only

CPU is measured in CPU seconds, not wall time, so a busy machine slows the run but not the
figures much. The day's API load is the wall's real one compressed: a poll every 30 simulated
seconds (cards, cash, health, P&L summary, and the history of each card whose price or trades
changed). The databases and logs live in a temporary folder (``--workdir``): it must be on a real
disk, not tmpfs, where nothing reaches a block device and write_bytes stays 0. With ``--days N``
the day figures (writes, CPU) cover all N days.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List, Optional

import requests

from bench.ports import free_port
from database import market_calendar
from database.create_stocks_db import create_stocks_db
from shared.clock import computer_now
from system_databse import system_db_manager
from system_databse.create_system_db import create_system_db

logger = logging.getLogger("bench.footprint")

REPO_ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TICKERS = ("AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "SPY", "QQQ", "AMD")
ALGORITHMS = ("sma_crossover", "bollinger_reversion", "lot_take_profit")
DAY_OPEN = "2026-11-23T14:30:00Z"      # Monday 09:30 New York
DAY_CLOSE = "2026-11-23T21:00:00Z"
READY = re.compile(r"paper exchange ready on (http://\S+) stream (ws://\S+)")
KEY, SECRET = "bench-key", "bench-secret"
NIGHT_START = "2026-11-24T02:00:00Z"   # --clock system: the exchange sits in a closed night too
WALL_POLL_CLOCK_SECONDS = 30.0         # the wall's poll period while the market is open
COMPRESSED_TIME_BUDGET = "1000000"     # requests a minute: a day compressed into minutes is not throttled


@dataclass
class Sample:
    rss_kb: int
    write_bytes: int
    cpu_seconds: float


def sample(pid: int) -> Sample:
    """RSS, bytes written to storage and CPU seconds (user + system) of one process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return Sample(rss, int(io["write_bytes"]), (int(fields[11]) + int(fields[12])) / ticks)


class Processes:
    """The three services as child processes of this bench, with their output in files."""

    def __init__(self, workdir: Path, speed: float):
        self.workdir = workdir
        self.speed = speed
        self.children: Dict[str, subprocess.Popen] = {}
        self.base_url = self.stream_url = self.api_url = ""
        self.env: Dict[str, str] = {}

    def _spawn(self, name: str, argv: List[str], env: Dict[str, str]) -> subprocess.Popen:
        out = open(self.workdir / f"{name}.out", "w")
        process = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.children[name] = process
        return process

    def start_exchange(self, start: str, cash: int) -> None:
        env = {**os.environ, "PAPER_EXCHANGE_KEY": KEY, "PAPER_EXCHANGE_SECRET": SECRET}
        process = self._spawn("exchange", [PYTHON, "-m", "paper_exchange", "--port", "0", "--stream-port", "0",
                                           "--start", start, "--speed", str(self.speed), "--cash", str(cash),
                                           "--log-level", "WARNING"], env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            found = READY.search((self.workdir / "exchange.out").read_text(errors="replace"))
            if found:
                self.base_url, self.stream_url = found.group(1), found.group(2)
                self._compress_the_request_budget()
                return
            time.sleep(0.1)
        raise RuntimeError("the paper exchange did not start; see exchange.out")

    def _compress_the_request_budget(self) -> None:
        """A day at 180x makes a real minute's worth of requests every third of a second, while
        Alpaca's 200 a minute count real minutes: the broker's limit and the daemon's budget are
        switched off, as in the suite's compressed-time stories (both are proven on their own)."""
        if self.speed > 1:
            requests.post(f"{self.base_url}/_sim/control", json={"rate_limit_per_minute": 0},
                          timeout=30).raise_for_status()

    def start_daemons(self, system_db: Path, stocks_db: Path, clock: str = "broker") -> None:
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "AUTOTRADER_", "API_",
                                                                           "NOTIFY_SOCKET", "WATCHDOG_"))}
        self.env = {**clean, "ALPACA_API_KEY": KEY, "ALPACA_SECRET": SECRET, "ALPACA_PAPER": "True",
                    "ALPACA_FEED": "iex", "ALPACA_TRADING_URL": self.base_url, "ALPACA_DATA_URL": self.base_url,
                    "ALPACA_STREAM_URL": self.stream_url, "AUTOTRADER_CLOCK": clock,
                    "AUTOTRADER_SYSTEM_DB": str(system_db), "AUTOTRADER_STOCKS_DB": str(stocks_db),
                    "AUTOTRADER_LOG_DIR": str(self.workdir / "logs"), "API_HOST": "127.0.0.1",
                    "API_PORT": str(api_port), "LOG_LEVEL": "INFO"}
        if self.speed > 1:
            self.env["AUTOTRADER_REQUESTS_PER_MINUTE"] = COMPRESSED_TIME_BUDGET
        self._spawn("orchestrator", [PYTHON, str(REPO_ROOT / "orchestrator.py")], self.env)
        self._spawn("api", [PYTHON, str(REPO_ROOT / "api_server.py")], self.env)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.api_url}/api/health", timeout=5)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("the API did not answer; see api.out")

    def clock(self) -> dict:
        """The exchange's /v2/clock, asked again (a few times, a second apart) if it is refused."""
        for _attempt in range(30):
            response = requests.get(f"{self.base_url}/v2/clock", headers={"APCA-API-KEY-ID": KEY,
                                                                           "APCA-API-SECRET-KEY": SECRET}, timeout=10)
            if response.ok:
                return response.json()
            time.sleep(1)
        response.raise_for_status()
        return {}

    def set_speed(self, speed: float) -> None:
        requests.post(f"{self.base_url}/_sim/control", json={"clock": {"speed": speed}}, timeout=30).raise_for_status()

    def skip_night(self) -> None:
        """Jump the exchange's clock to two minutes before the next open (a soak skips its nights)."""
        next_open = datetime.fromisoformat(self.clock()["next_open"]) - timedelta(minutes=2)
        requests.post(f"{self.base_url}/_sim/control", json={"clock": {"set": next_open.astimezone(timezone.utc)
                      .strftime("%Y-%m-%dT%H:%M:%SZ")}}, timeout=30).raise_for_status()

    def check_alive(self) -> None:
        for name, process in self.children.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}; see {name}.out")

    def stop(self) -> None:
        for process in reversed(list(self.children.values())):
            if process.poll() is None:
                process.terminate()
        for process in self.children.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Wall:
    """Polls the API like the kiosk page: cards, cash, health, then changed cards' histories."""

    def __init__(self, api_url: str):
        self.api_url = api_url
        self.session = requests.Session()
        self.keys: Dict[int, tuple] = {}
        self.polls = self.requests = self.failures = 0

    def _get(self, path: str) -> Optional[dict]:
        self.requests += 1
        try:
            response = self.session.get(self.api_url + path, timeout=30)
        except requests.RequestException:
            self.failures += 1
            return None
        if response.status_code >= 400:
            self.failures += 1
        return response.json()

    def poll(self) -> None:
        self.polls += 1
        listing = self._get("/api/algorithms") or {}
        self._get("/api/account/cash")
        self._get("/api/health")
        self._get("/api/pnl-summary")
        for card in listing.get("algorithms", []):
            key = (card.get("trade_count"), card.get("current_shares"), card.get("current_price"),
                   card.get("price_timestamp"))
            if self.keys.get(card["id"]) != key:
                self._get(f"/api/algorithms/{card['id']}/history?window=all&points=400")
                self.keys[card["id"]] = key


def make_cards(system_db: Path, cards: int, tickers: int, capital: float) -> None:
    conn = system_db_manager.get_connection(system_db)
    try:
        for i in range(cards):
            system_db_manager.create_algorithm(TICKERS[i % tickers], ALGORITHMS[i % len(ALGORITHMS)], capital,
                                               conn=conn)
    finally:
        conn.close()


def file_sizes(workdir: Path) -> Dict[str, int]:
    """Bytes on disk of each database (main file + WAL) and of the logs."""
    sizes = {}
    for name in ("system.db", "stocks.db"):
        for suffix in ("", "-wal", "-shm"):
            path = workdir / (name + suffix)
            if path.exists():
                sizes[name + suffix] = path.stat().st_size
    sizes["logs"] = sum(p.stat().st_size for p in (workdir / "logs").rglob("*") if p.is_file())
    return sizes


def run_day(procs: Processes, wall: Wall, speed: float) -> None:
    """Poll as the wall does until the exchange's market has opened and closed again.

    The bench asks the exchange's clock at most once a real second: a fast day polls the wall
    many times a second, and the clock is only needed to see the close.
    """
    period = WALL_POLL_CLOCK_SECONDS / speed
    opened = False
    asked = 0.0
    while True:
        procs.check_alive()
        started = time.monotonic()
        wall.poll()
        if started - asked >= 1.0:
            asked = started
            is_open = procs.clock()["is_open"]
            opened = opened or is_open
            if opened and not is_open:
                return
        time.sleep(max(0.0, period - (time.monotonic() - started)))


def wait_for_start_up(system_db: Path, procs: Processes, timeout: float = 180.0) -> None:
    """Until the orchestrator's first heartbeat: written once start-up (reconcile, back-fill of the
    cards' recent bars) is done, so that one-off work is not counted in the day or the night."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        conn = system_db_manager.get_connection(system_db, read_only=True)
        try:
            if system_db_manager.get_heartbeat("orchestrator", conn=conn):
                return
        finally:
            conn.close()
        time.sleep(0.5)
    raise RuntimeError("the orchestrator wrote no heartbeat; see orchestrator.out")


def run(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="footprint-", dir=args.workdir))
    system_db, stocks_db = workdir / "system.db", workdir / "stocks.db"
    create_system_db(system_db)
    create_stocks_db(stocks_db)
    make_cards(system_db, args.cards, args.tickers, args.capital)
    night_only = args.clock == "system"
    if night_only and market_calendar.is_open(computer_now()):
        raise SystemExit("--clock system measures a real closed-market night: run it while NYSE is closed")
    procs = Processes(workdir, 1.0 if night_only else args.speed)
    result: dict = {"cards": args.cards, "tickers": args.tickers, "speed": args.speed,
                    "night_seconds": args.night_seconds, "workdir": str(workdir)}
    try:
        procs.start_exchange(NIGHT_START if night_only else args.start, int(args.cards * args.capital * 2))
        procs.start_daemons(system_db, stocks_db, args.clock)
        wait_for_start_up(system_db, procs)
        wall = Wall(procs.api_url)
        wall.poll()
        time.sleep(2)
        samples = {"start": {n: sample(p.pid) for n, p in procs.children.items()}}
        logger.info("running the trading day at %gx", args.speed)
        day_started = time.monotonic()
        if not night_only:  # on the system clock there is no day to simulate: the night is real
            run_day(procs, wall, args.speed)
        result["day_real_seconds"] = round(time.monotonic() - day_started, 1)
        samples["day"] = {n: sample(p.pid) for n, p in procs.children.items()}
        result["rss_kb_after_each_day"] = [{n: samples["day"][n].rss_kb for n in ("orchestrator", "api")}]
        logger.info("after day 1: RSS KB %s", result["rss_kb_after_each_day"][-1])
        for day in range(2, args.days + 1):
            procs.skip_night()
            logger.info("soak: trading day %d of %d", day, args.days)
            run_day(procs, wall, args.speed)
            result["rss_kb_after_each_day"].append({n: sample(procs.children[n].pid).rss_kb
                                                    for n in ("orchestrator", "api")})
            logger.info("after day %d: RSS KB %s", day, result["rss_kb_after_each_day"][-1])
        if args.days > 1:
            samples["day"] = {n: sample(p.pid) for n, p in procs.children.items()}
        result["sizes_after_day"] = file_sizes(workdir)
        logger.info("the market closed; a real-time night of %ds with nobody at the wall", args.night_seconds)
        procs.set_speed(1)
        night_started = time.monotonic()
        while time.monotonic() - night_started < args.night_seconds:
            procs.check_alive()
            time.sleep(1)
        samples["night"] = {n: sample(p.pid) for n, p in procs.children.items()}
        result["sizes_after_night"] = file_sizes(workdir)
        result["wall"] = {"polls": wall.polls, "requests": wall.requests, "failures": wall.failures}
        result["samples"] = {phase: {n: asdict(s) for n, s in per.items()} for phase, per in samples.items()}
        result["trades"] = count_trades(system_db)
    finally:
        procs.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def count_trades(system_db: Path) -> int:
    conn = system_db_manager.get_connection(system_db, read_only=True)
    try:
        return sum(t["trade_count"] for t in system_db_manager.get_all_position_totals(conn=conn).values())
    finally:
        conn.close()


def report(result: dict) -> str:
    s = result["samples"]
    mb = lambda kb: f"{kb / 1024:6.1f}"  # noqa: E731
    lines = [f"{result['cards']} cards on {result['tickers']} tickers, day at {result['speed']:g}x "
             f"({result['day_real_seconds']:.0f} s real), night {result['night_seconds']} s real; "
             f"wall: {result['wall']['polls']} polls, {result['wall']['requests']} requests "
             f"({result['wall']['failures']} failed); {result['trades']} trades",
             "process        RSS MB start  after day  after night | written KB day  night | CPU s day  night"]
    for name in s["start"]:
        st, day, night = s["start"][name], s["day"][name], s["night"][name]
        lines.append(f"{name:<13} {mb(st['rss_kb']):>13} {mb(day['rss_kb']):>10} {mb(night['rss_kb']):>12} |"
                     f" {(day['write_bytes'] - st['write_bytes']) / 1024:14.0f} "
                     f"{(night['write_bytes'] - day['write_bytes']) / 1024:6.0f} |"
                     f" {day['cpu_seconds'] - st['cpu_seconds']:9.1f} {night['cpu_seconds'] - day['cpu_seconds']:6.2f}")
    both = {p: s[p]["orchestrator"]["rss_kb"] + s[p]["api"]["rss_kb"] for p in s}
    lines.append(f"API + orchestrator RSS MB: start {both['start'] / 1024:.1f}, after day {both['day'] / 1024:.1f},"
                 f" after night {both['night'] / 1024:.1f}")
    days = result.get("rss_kb_after_each_day", [])
    if len(days) > 1:
        first, last = (d["orchestrator"] + d["api"] for d in (days[0], days[-1]))
        lines.append(f"soak: API + orchestrator RSS MB after each of {len(days)} days: "
                     + ", ".join(f"{(d['orchestrator'] + d['api']) / 1024:.0f}" for d in days)
                     + f" (day {len(days)} vs day 1: {100 * (last - first) / first:+.1f}%)")
    lines.append("sizes after the day:   " + ", ".join(f"{k} {v / 1024:.0f} KB" for k, v in result["sizes_after_day"].items()))
    lines.append("sizes after the night: " + ", ".join(f"{k} {v / 1024:.0f} KB" for k, v in result["sizes_after_night"].items()))
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second in the day")
    parser.add_argument("--night-seconds", type=int, default=600, help="real seconds of closed market to measure")
    parser.add_argument("--days", type=int, default=1,
                        help="trading days back to back before the night (nights between them skipped): a soak")
    parser.add_argument("--clock", choices=("broker", "system"), default="broker",
                        help="system: the orchestrator on the machine's clock as in production; skips the day and "
                             "measures only the night (run it while NYSE is really closed)")
    parser.add_argument("--cards", type=int, default=20)
    parser.add_argument("--tickers", type=int, default=10, choices=range(1, len(TICKERS) + 1))
    parser.add_argument("--capital", type=float, default=10_000.0)
    parser.add_argument("--start", default="2026-11-23T14:28:00Z", help="simulated start, just before an open")
    parser.add_argument("--workdir", default=None, help="where the temp folder goes (default: the system's)")
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the processes it started
    result = run(args)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
