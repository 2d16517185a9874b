"""``python -m scripts.export``: fills and realized P&L as CSV, the same rows as the API's export."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestra import net_order
from orchestra.allocation import Intent, net_ticker
from orchestra.net_order import BrokerUpdate
from system_databse import system_db_manager as manager
from tests.fixtures.api import auth, get_token

REPO = Path(__file__).resolve().parents[1]


def export(system_db, *args):
    env = {**os.environ, "AUTOTRADER_SYSTEM_DB": str(system_db)}
    return subprocess.run([sys.executable, "-m", "scripts.export", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def fill(ledger, card, side, shares, price, stamp, order):
    """One card's order, journaled, acknowledged and filled through the order object."""
    ticker = manager.get_algorithm(card, conn=ledger)["ticker"]
    net_order.journal(ledger, net_ticker(ticker, [Intent(card, side, shares, "test")]), order, minute=stamp,
                      price=price, now=stamp)
    net_order.apply(ledger, order, BrokerUpdate("new", 0, None, None, f"broker-{order}"), now=stamp)
    net_order.apply(ledger, order, BrokerUpdate("filled", shares, price, stamp, f"broker-{order}"), now=stamp)


@pytest.fixture
def fills(ledger):
    a = manager.create_algorithm("NVDA", "sma_crossover", 10_000, conn=ledger)
    b = manager.create_algorithm("AAPL", "bollinger_reversion", 5_000, conn=ledger)
    fill(ledger, a, "buy", 10, 100.25, "2025-12-30T15:00:00Z", "o1")
    fill(ledger, b, "buy", 4, 200.0, "2025-12-31T15:00:00Z", "o2")
    fill(ledger, a, "sell", 6, 101.0, "2025-12-31T20:00:00Z", "o3")
    fill(ledger, a, "sell", 4, 99.0, "2026-01-02T15:00:00Z", "o4")
    return a, b


def test_the_transactions_file_matches_the_ledger_row_for_row(system_db, ledger, fills, tmp_path):
    out = tmp_path / "transactions.csv"
    result = export(system_db, str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{out}: 4 row(s)"
    rows = list(csv.DictReader(out.open()))
    ledger_rows = ledger.execute(
        "SELECT t.algorithm_id, a.ticker, t.type, t.shares, t.price, j.broker_order_id, t.timestamp FROM transactions t"
        " JOIN algorithm_instances a ON a.id = t.algorithm_id JOIN order_allocations oa ON oa.transaction_id = t.id"
        " JOIN broker_orders j ON j.client_order_id = oa.client_order_id"
        " ORDER BY t.timestamp").fetchall()
    assert [(int(r["card_id"]), r["ticker"], r["side"], int(r["shares"]), float(r["price"]), r["order_id"],
             r["time_utc"]) for r in rows] == [tuple(r) for r in ledger_rows]
    assert [float(r["value"]) for r in rows] == [1002.5, 800.0, 606.0, 396.0]
    assert list(rows[0]) == ["card_id", "card", "ticker", "side", "shares", "price", "value", "order_id", "time_utc"]


def test_card_and_date_filters(system_db, fills):
    a, _ = fills
    result = export(system_db, "--card", str(a), "--from", "2025-12-31", "--to", "2026-01-01", "-")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["side"], r["shares"], r["order_id"]) for r in rows] == [("sell", "6", "broker-o3")]


def test_realized_report_per_card_and_tax_year(system_db, fills):
    result = export(system_db, "--realized", "-")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    # FIFO: 6 of the 10 @ 100.25 sold @ 101 in 2025 (+4.50), the other 4 @ 99 in 2026 (-5.00)
    assert [(r["ticker"], r["year"], r["shares_sold"], r["proceeds"], r["cost_basis"], r["realized_pnl"], r["dividends"])
            for r in rows] == [("NVDA", "2025", "6", "606.0", "601.5", "4.5", "0.0"),
                               ("NVDA", "2026", "4", "396.0", "401.0", "-5.0", "0.0")]


def test_the_api_export_gives_the_same_file(system_db, fills, offline_client):
    token = get_token(offline_client, "export")
    for args, path in ((["-"], "/api/export/transactions.csv"), (["--realized", "-"], "/api/export/realized.csv")):
        api = offline_client.get(path, headers=auth(token)).get_data(as_text=True)
        assert api == export(system_db, *args).stdout


@pytest.mark.parametrize("args, message", [
    (["--from", "2026-02-30", "x.csv"], "is not a date YYYY-MM-DD"),
    (["--from", "2026-02-02", "--to", "2026-02-01", "x.csv"], "--from must not be after --to"),
    (["--card", "999", "x.csv"], "card 999 does not exist"),
    ([], "the following arguments are required: output"),
    (["/nonexistent/dir/x.csv"], "cannot write /nonexistent/dir/x.csv"),
])
def test_bad_arguments_print_one_line_and_fail(system_db, fills, args, message):
    result = export(system_db, *args)
    assert result.returncode != 0 and message in result.stderr and result.stderr.count("\n") == 1
