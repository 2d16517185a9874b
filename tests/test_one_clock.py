"""One trading clock stamps what the ledger records; the computer's clock only measures liveness.

Read from the source (``ast``), so a new ``datetime.now()`` in the ledger, the market data or the
API fails here before it can stamp a card in the wrong day:

- no module of ``system_databse/``, ``database/``, ``api/`` (or ``api_server.py``) reads the
  computer's clock (``datetime.now``/``utcnow``/``today``, ``date.today``, ``time.time``, the
  ``shared.clock`` computer readers) except the few liveness and bookkeeping uses listed below,
  each with its reason;
- every production call of a ledger function that stamps a row passes the stamp (the trading
  clock's), so the ledger's default for a call without one (the computer's clock, for shells and
  tests) never stamps production data.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from system_databse import system_db_manager as ledger

REPO = Path(__file__).resolve().parents[1]
CHECKED = [*sorted((REPO / "system_databse").glob("*.py")), *sorted((REPO / "database").glob("*.py")),
           *sorted((REPO / "api").glob("*.py")), REPO / "api_server.py"]
PRODUCTION = [*sorted((REPO / "api").glob("*.py")), *sorted((REPO / "orchestra").glob("*.py")),
              *sorted((REPO / "scripts").glob("*.py")), REPO / "api_server.py", REPO / "orchestrator.py"]

# datetime.now() and friends, by the attribute read on the module or class
COMPUTER_CLOCK_ATTRIBUTES = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"),
                             ("date", "today"), ("time", "time"), ("time", "time_ns"), ("market_calendar", "utc_now")}
# shared.clock's readers of the computer's clock (a call or a reference handed on as "now")
COMPUTER_CLOCK_NAMES = {"computer_now", "computer_stamp", "SystemClock", "utc_now"}

ALLOWED = {  # (file, enclosing function): why the computer's clock is right there
    ("system_databse/connection.py", "ledger_stamp"):
        "the ledger's default for a stamping call made without a stamp (shells, tests); production callers "
        "always pass one (test_every_production_call_of_a_stamping_function_passes_the_stamp)",
    ("system_databse/config.py", "write_heartbeat"):
        "liveness: the API measures the heartbeat's age against the computer's clock",
    ("system_databse/create_system_db.py", "_apply"):
        "bookkeeping: when this computer applied a migration to the file, not a ledger stamp",
    ("database/historical_pull.py", "_run"):
        "the command line's now, a person's shell (AUTOTRADER_CLOCK=system's trading clock); --now overrides it",
    ("database/realtime_pull.py", "__init__"):
        "the streamer's trading clock when its owner gives none (the daemon always gives its own)",
    ("database/realtime_pull.py", "_on_bar"):
        "liveness: when the stream last said anything (./scripts/status), like the heartbeat",
    ("api/pin.py", "status"):
        "liveness: a PIN lock-out lasts real seconds",
    ("api/broker.py", "__init__"):
        "placeholder for the market's now until create_app hands the gateway the trading clock",
    ("api/controls_routes.py", "pause_stamp"):
        "a PAUSE never waits for the broker: stamped by the computer's clock only when the broker's cannot be read",
    ("api/controls_routes.py", "_market_now"):
        "a read-only figure (which trading day the daily order count covers) when the broker's clock cannot be read",
    ("api_server.py", "default_config"):
        "config NOW is the computer's clock: token lifetimes, PIN lock-outs, caches, the heartbeat's age",
}

STAMPING = {  # ledger function -> the keyword that carries the trading clock's stamp (the order journal's
    # writers, orders.py's insert_order/move_order/record_card_fill, take theirs as a required argument)
    "create_algorithm": "created_at", "stop_algorithm": "stopped_at", "record_buy": "timestamp",
    "record_sell": "timestamp", "record_decisions": "recorded_at", "record_corporate_action": "recorded_at",
    "record_broker_count": "at", "deposit": "at", "withdraw": "at", "pause_trading": "at", "resume_trading": "at",
    "set_card_limits": "at", "trip_card": "at", "resume_card": "at",
}


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _functions(tree: ast.AST):
    """(node, name of the innermost enclosing function or "<module>") for every node."""
    def walk(node, owner):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else owner
            yield child, inner
            yield from walk(child, inner)
    yield from walk(tree, "<module>")


def _clock_reads(path: Path):
    """(function, line, what) for each read of the computer's clock in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    for node, owner in _functions(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                (node.value.id, node.attr) in COMPUTER_CLOCK_ATTRIBUTES:
            yield owner, node.lineno, f"{node.value.id}.{node.attr}"
        elif isinstance(node, ast.Name) and node.id in COMPUTER_CLOCK_NAMES and isinstance(node.ctx, ast.Load):
            yield owner, node.lineno, node.id
        elif isinstance(node, ast.Attribute) and node.attr in COMPUTER_CLOCK_NAMES:
            yield owner, node.lineno, node.attr


def test_the_ledger_the_market_data_and_the_api_never_stamp_with_the_computers_clock():
    found = [f"{_relative(path)}:{line} {what} in {owner}()"
             for path in CHECKED for owner, line, what in _clock_reads(path)
             if (_relative(path), owner) not in ALLOWED]
    assert found == [], ("the computer's clock read where the trading clock must decide (pass the caller's stamp or "
                         "now, or add a liveness use to ALLOWED with its reason):\n" + "\n".join(found))


def test_every_allowed_use_still_exists():
    """A reason for a use that is gone would let a new one in unseen."""
    used = {(_relative(path), owner) for path in CHECKED for owner, _, _ in _clock_reads(path)}
    assert set(ALLOWED) - used == set()


def test_every_production_call_of_a_stamping_function_passes_the_stamp():
    missing = []
    for path in PRODUCTION:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            keyword = STAMPING.get(name)
            if keyword and keyword not in {k.arg for k in node.keywords}:
                missing.append(f"{_relative(path)}:{node.lineno} {name}() without {keyword}=")
    assert missing == [], "a production ledger write stamped by the computer's clock:\n" + "\n".join(missing)


def test_the_stamping_functions_take_the_keywords_the_check_looks_for():
    import inspect

    for name, keyword in STAMPING.items():
        assert keyword in inspect.signature(getattr(ledger, name)).parameters, name


# --------------------------------------------------------------------------- the stamps themselves


def test_a_card_keeps_the_trading_clocks_stamps_of_its_creation_and_stop(ledger_conn):
    card = ledger.create_algorithm("AAPL", "sma_crossover", 1_000.0, created_at="2026-03-16T14:31:00Z",
                                   conn=ledger_conn)
    assert ledger.stop_algorithm(card, stopped_at="2026-03-17T15:00:00Z", conn=ledger_conn)

    stored = ledger.get_algorithm(card, conn=ledger_conn)
    assert (stored["created_at"], stored["stopped_at"]) == ("2026-03-16T14:31:00Z", "2026-03-17T15:00:00Z")
    assert stored["display_name"] == "AAPL_sma_crossover_20260316_143100"


@pytest.mark.parametrize("bad", ["2026-03-16 14:31:00", "2026-03-16T14:31:00+00:00", "2026-02-30T10:00:00Z", 1773671460])
def test_a_stamp_that_is_not_a_utc_time_is_refused_and_nothing_is_written(ledger_conn, bad):
    with pytest.raises(ledger.LedgerError, match="YYYY-MM-DDTHH:MM:SSZ"):
        ledger.create_algorithm("AAPL", "sma_crossover", 1_000.0, created_at=bad, conn=ledger_conn)
    assert ledger.get_all_algorithms(conn=ledger_conn) == []


@pytest.fixture
def ledger_conn(system_db):
    conn = ledger.get_connection(system_db)
    yield conn
    conn.close()
