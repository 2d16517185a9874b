"""system.db: the schema, cards, transactions, PIN, order journal and heartbeat."""
from __future__ import annotations

import math
import re
import sqlite3
from pathlib import Path

import pytest

from system_databse import fifo, system_db_manager as ledger_db
from system_databse.create_system_db import MIGRATIONS_DIR, create_system_db, main as create_main

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def table_sql(conn, name):
    return conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()[0]


def counts(conn):
    return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("algorithm_instances", "transactions", "system_config", "broker_orders", "order_allocations")}


# --------------------------------------------------------------------------- schema


def test_new_database_has_the_spec_tables_and_default_pin(ledger):
    tables = {r[0] for r in ledger.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"algorithm_instances", "transactions", "system_config"} <= tables
    assert "CHECK(initial_capital > 0)" in table_sql(ledger, "algorithm_instances")
    assert "CHECK(status IN ('running', 'stopped'))" in table_sql(ledger, "algorithm_instances")
    assert "FOREIGN KEY (algorithm_id) REFERENCES algorithm_instances(id)" in table_sql(ledger, "transactions")
    assert ledger_db.get_pin(conn=ledger).startswith("$scrypt$")  # the default 2020, as a salted hash
    assert ledger_db.check_pin("2020", conn=ledger) and ledger_db.pin_is_default(conn=ledger)


def test_database_uses_wal_and_enforces_foreign_keys(ledger):
    assert ledger.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ledger.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: a commit survives a power cut
    with pytest.raises(sqlite3.IntegrityError):
        ledger.execute("INSERT INTO transactions (algorithm_id, type, shares, price, timestamp)"
                       " VALUES (999, 'buy', 1, 1.0, '2026-01-02T15:00:00Z')")


def test_schema_checks_refuse_impossible_rows_even_from_raw_sql(ledger):
    card = ledger_db.create_algorithm("AAPL", "sma_crossover", 1000, conn=ledger)
    for bad in ("(?, 'short', 1, 1.0, 't')", "(?, 'buy', 0, 1.0, 't')", "(?, 'buy', 1, -1.0, 't')"):
        with pytest.raises(sqlite3.IntegrityError):
            ledger.execute(f"INSERT INTO transactions (algorithm_id, type, shares, price, timestamp) VALUES {bad}",
                           (card,))


def test_recreating_the_database_changes_nothing_and_loses_nothing(system_db, ledger):
    card = ledger_db.create_algorithm("AAPL", "sma_crossover", 1000, conn=ledger)
    ledger_db.record_buy(card, 3, 100.0, conn=ledger)
    ledger_db.set_pin("4321", conn=ledger)
    before = counts(ledger)
    assert create_system_db(system_db) == []
    assert counts(ledger) == before
    assert ledger_db.check_pin("4321", conn=ledger)


def test_an_order_journaled_before_the_state_machine_keeps_its_state_and_allocations(tmp_path, monkeypatch):
    """0011 rebuilds broker_orders (new states): a journal written before it is read back unchanged."""
    from system_databse import create_system_db as creator

    path, every = tmp_path / "old.db", creator._migration_files()
    monkeypatch.setattr(creator, "_migration_files", lambda: [m for m in every if m.name < "0011"])
    create_system_db(path)
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("INSERT INTO algorithm_instances (display_name, algorithm_type, ticker, initial_capital, status,"
                " created_at) VALUES ('AAPL_x', 'x', 'AAPL', 1000, 'running', '2026-01-05T14:00:00Z')")
    old.execute("INSERT INTO broker_orders (client_order_id, ticker, minute, side, shares, status, broker_order_id,"
                " created_at, updated_at) VALUES ('o1', 'AAPL', 'm', 'buy', 3, 'submitted', 'b-1', 't', 't')")
    old.execute("INSERT INTO order_allocations (client_order_id, algorithm_id, kind, side, shares)"
                " VALUES ('o1', 1, 'order', 'buy', 3)")
    old.close()
    monkeypatch.setattr(creator, "_migration_files", lambda: every)
    assert "0011_order_states.sql" in create_system_db(path)
    conn = ledger_db.get_connection(path)
    try:
        [order] = ledger_db.get_open_orders(conn=conn)
        assert (order["status"], order["broker_order_id"], order["allocations"][0]["shares"]) == ("submitted", "b-1", 3)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        conn.close()


def test_create_script_cli_reports_and_fails_cleanly(tmp_path, capsys):
    assert create_main(["--db", str(tmp_path / "s.db")]) == 0
    migrations = len(list(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")))
    assert f"{migrations} migration(s) applied" in capsys.readouterr().out
    assert create_main(["--db", str(tmp_path / "s.db")]) == 0
    assert "already up to date" in capsys.readouterr().out
    (tmp_path / "file").write_text("x")
    assert create_main(["--db", str(tmp_path / "file" / "s.db")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot create") and err.count("\n") == 1


def test_a_missing_database_is_a_clear_error_not_an_empty_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="create_system_db"):
        ledger_db.get_connection(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_default_path_follows_the_environment(system_db):
    assert ledger_db.default_db_path() == system_db
    assert ledger_db.check_pin("2020")  # opens its own connection to the env-selected file


# --------------------------------------------------------------------------- cards


def test_creating_a_card_stores_upper_case_ticker_utc_times_and_a_display_name(ledger):
    card_id = ledger_db.create_algorithm(" nvda ", "sma_crossover", 10000, conn=ledger)
    card = ledger_db.get_algorithm(card_id, conn=ledger)
    assert card["ticker"] == "NVDA"
    assert card["status"] == "running" and card["stopped_at"] is None
    assert card["initial_capital"] == 10000.0
    assert TS.match(card["created_at"])
    stamp = card["created_at"].replace("-", "").replace(":", "").replace("T", "_")[:15]
    assert card["display_name"] == f"NVDA_sma_crossover_{stamp}"


@pytest.mark.parametrize("ticker, algo_type, capital", [
    ("AAPL", "sma_crossover", 0),
    ("AAPL", "sma_crossover", -5),
    ("AAPL", "sma_crossover", math.nan),
    ("AAPL", "sma_crossover", math.inf),
    ("AAPL", "sma_crossover", "1000"),
    ("AAPL", "sma_crossover", True),
    ("", "sma_crossover", 1000),
    ("   ", "sma_crossover", 1000),
    ("NOT A TICKER", "sma_crossover", 1000),
    (None, "sma_crossover", 1000),
    ("AAPL", "", 1000),
])
def test_bad_card_input_is_refused_and_writes_nothing(ledger, ticker, algo_type, capital):
    with pytest.raises(ledger_db.LedgerError):
        ledger_db.create_algorithm(ticker, algo_type, capital, conn=ledger)
    assert counts(ledger)["algorithm_instances"] == 0


def test_stopping_a_card_is_a_soft_delete_with_a_time(ledger):
    card_id = ledger_db.create_algorithm("AAPL", "sma_crossover", 1000, conn=ledger)
    assert ledger_db.stop_algorithm(card_id, conn=ledger) is True
    card = ledger_db.get_algorithm(card_id, conn=ledger)
    assert card["status"] == "stopped" and TS.match(card["stopped_at"])
    assert ledger_db.stop_algorithm(card_id, conn=ledger) is False  # twice: harmless
    assert ledger_db.get_algorithm(card_id, conn=ledger)["stopped_at"] == card["stopped_at"]
    assert ledger_db.stop_algorithm(12345, conn=ledger) is False
    assert ledger_db.get_algorithm(12345, conn=ledger) is None


def test_listing_cards_by_status(ledger):
    a = ledger_db.create_algorithm("AAPL", "x", 1000, conn=ledger)
    b = ledger_db.create_algorithm("NVDA", "x", 1000, conn=ledger)
    ledger_db.stop_algorithm(a, conn=ledger)
    assert [c["id"] for c in ledger_db.get_all_algorithms(conn=ledger)] == [a, b]
    assert [c["id"] for c in ledger_db.get_all_algorithms("running", conn=ledger)] == [b]
    assert [c["id"] for c in ledger_db.get_all_algorithms("stopped", conn=ledger)] == [a]
    with pytest.raises(ledger_db.LedgerError):
        ledger_db.get_all_algorithms("deleted", conn=ledger)


def test_display_name_is_stamped_in_utc():
    from datetime import datetime, timedelta, timezone
    eastern_evening = datetime(2024, 6, 4, 22, 30, 22, tzinfo=timezone(timedelta(hours=-4)))
    assert ledger_db.generate_display_name("NVDA", "sma_crossover", now=eastern_evening) == \
        "NVDA_sma_crossover_20240605_023022"


# --------------------------------------------------------------------------- transactions


def test_buys_and_sells_are_recorded_and_listed_newest_first(ledger):
    card = ledger_db.create_algorithm("NVDA", "x", 10000, conn=ledger)
    ledger_db.record_buy(card, 100, 150.50, timestamp="2024-06-04T14:30:00Z", conn=ledger)
    ledger_db.record_buy(card, 50, 145.25, timestamp="2024-06-04T14:31:00Z", conn=ledger)
    sell_id = ledger_db.record_sell(card, 25, 155.75, timestamp="2024-06-04T14:32:00Z", conn=ledger)
    history = ledger_db.get_transactions(card, conn=ledger)
    assert [(t["type"], t["shares"], t["price"]) for t in history] == [
        ("sell", 25, 155.75), ("buy", 50, 145.25), ("buy", 100, 150.50)]
    assert history[0]["id"] == sell_id and history[0]["algorithm_id"] == card
    assert ledger_db.get_position_totals(card, conn=ledger)["shares"] == 125


def test_record_without_timestamp_uses_now_in_utc(ledger):
    card = ledger_db.create_algorithm("NVDA", "x", 10000, conn=ledger)
    ledger_db.record_buy(card, 1, 10.0, conn=ledger)
    assert TS.match(ledger_db.get_transactions(card, conn=ledger)[0]["timestamp"])


def test_selling_more_than_held_is_refused_and_writes_nothing(ledger):
    card = ledger_db.create_algorithm("NVDA", "x", 10000, conn=ledger)
    ledger_db.record_buy(card, 10, 100.0, conn=ledger)
    with pytest.raises(ledger_db.LedgerError, match="holds 10 shares; cannot sell 11"):
        ledger_db.record_sell(card, 11, 100.0, conn=ledger)
    assert counts(ledger)["transactions"] == 1


@pytest.mark.parametrize("shares, price", [
    (0, 10.0), (-1, 10.0), (1.5, 10.0), ("3", 10.0), (True, 10.0),
    (1, 0), (1, -2.0), (1, math.nan), (1, math.inf), (1, "10"),
])
def test_bad_trade_numbers_are_refused(ledger, shares, price):
    card = ledger_db.create_algorithm("NVDA", "x", 10000, conn=ledger)
    with pytest.raises(ledger_db.LedgerError):
        ledger_db.record_buy(card, shares, price, conn=ledger)
    assert counts(ledger)["transactions"] == 0


def test_stopped_and_unknown_cards_cannot_trade(ledger):
    card = ledger_db.create_algorithm("NVDA", "x", 10000, conn=ledger)
    ledger_db.record_buy(card, 5, 10.0, conn=ledger)
    ledger_db.stop_algorithm(card, conn=ledger)
    with pytest.raises(ledger_db.LedgerError, match="stopped"):
        ledger_db.record_buy(card, 1, 10.0, conn=ledger)
    with pytest.raises(ledger_db.LedgerError, match="stopped"):
        ledger_db.record_sell(card, 1, 10.0, conn=ledger)
    with pytest.raises(ledger_db.LedgerError, match="does not exist"):
        ledger_db.record_buy(999, 1, 10.0, conn=ledger)
    assert counts(ledger)["transactions"] == 1


def test_a_failed_write_inside_atomic_rolls_back_everything(ledger):
    card = ledger_db.create_algorithm("NVDA", "x", 10000, conn=ledger)
    with pytest.raises(RuntimeError):
        with ledger_db.atomic(ledger):
            ledger_db.record_buy(card, 5, 10.0, conn=ledger)
            raise RuntimeError("crash between two writes")
    assert counts(ledger)["transactions"] == 0


# --------------------------------------------------------------------------- PIN


def test_pin_can_be_changed_to_digits_only(ledger):
    ledger_db.set_pin("987654", conn=ledger)
    assert ledger_db.check_pin("987654", conn=ledger) and not ledger_db.pin_is_default(conn=ledger)
    for bad in ("12", "abcd", "123456789", "", 1234):
        with pytest.raises(ledger_db.LedgerError):
            ledger_db.set_pin(bad, conn=ledger)
    assert ledger_db.check_pin("987654", conn=ledger)


# --------------------------------------------------------------------------- order journal (tests/test_net_order.py)


def test_the_ledger_id_is_stable(ledger):
    first = ledger_db.get_ledger_id(conn=ledger)
    assert len(first) == 6 and ledger_db.get_ledger_id(conn=ledger) == first


def test_atomic_rolls_back_when_commit_fails(ledger, tmp_path):
    """A COMMIT refused (here: a deferred foreign key) must not leave the connection in the transaction."""
    ledger.execute("PRAGMA defer_foreign_keys = ON")
    with pytest.raises(sqlite3.IntegrityError):
        with ledger_db.atomic(ledger):
            ledger.execute("PRAGMA defer_foreign_keys = ON")
            ledger.execute("INSERT INTO transactions (algorithm_id, type, shares, price, timestamp)"
                           " VALUES (424242, 'buy', 1, 1.0, 'x')")
    assert not ledger.in_transaction
    assert counts(ledger)["transactions"] == 0


# --------------------------------------------------------------------------- heartbeat


def test_heartbeat_is_replaced_not_appended(ledger):
    assert ledger_db.get_heartbeat("orchestrator", conn=ledger) is None
    ledger_db.write_heartbeat("orchestrator", {"cycles": 1}, now="2026-06-04T14:31:05Z", conn=ledger)
    ledger_db.write_heartbeat("orchestrator", {"cycles": 2}, now="2026-06-04T14:32:05Z", conn=ledger)
    assert ledger_db.get_heartbeat("orchestrator", conn=ledger) == {
        "component": "orchestrator", "updated_at": "2026-06-04T14:32:05Z", "payload": {"cycles": 2}}
    assert ledger.execute("SELECT COUNT(*) FROM heartbeat").fetchone()[0] == 1


def test_read_only_connections_cannot_write(system_db):
    conn = ledger_db.get_connection(system_db, read_only=True)
    try:
        assert ledger_db.check_pin("2020", conn=conn)
        with pytest.raises(sqlite3.OperationalError):
            ledger_db.set_pin("1111", conn=conn)
    finally:
        conn.close()


def test_every_cards_transactions_in_one_read_match_each_cards_own(ledger):
    first = ledger_db.create_algorithm("AAPL", "sma_crossover", 10_000, conn=ledger)
    second = ledger_db.create_algorithm("MSFT", "sma_crossover", 10_000, conn=ledger)
    ledger_db.record_buy(first, 5, 100.0, timestamp="2026-11-23T14:31:00Z", conn=ledger)
    ledger_db.record_buy(first, 3, 101.0, timestamp="2026-11-23T14:35:00Z", conn=ledger)
    ledger_db.record_sell(first, 2, 102.0, timestamp="2026-11-23T14:40:00Z", conn=ledger)
    together = ledger_db.get_transactions_by_card([second, first, 999], conn=ledger)
    assert together[first] == ledger_db.get_transactions(first, conn=ledger)
    assert [t["shares"] for t in together[first]] == [2, 3, 5]           # newest first, as one card's read
    assert together[second] == [] and together[999] == []
    assert ledger_db.get_transactions_by_card([], conn=ledger) == {}
    assert ledger_db.get_corporate_action_effects_by_card([first, second], conn=ledger) == {first: [], second: []}
