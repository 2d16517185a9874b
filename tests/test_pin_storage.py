"""The PIN is kept as a salted scrypt hash: no PIN readable in system.db or its WAL, ever.

An owner upgrading a ledger that still holds a plain PIN (the seeded 2020 or one they set) gets
it hashed by migration 0010, exactly once even when two upgrades start together; the PIN they
knew keeps working, and neither the file nor its write-ahead log holds the digits afterwards.
"""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from system_databse import pin_hash, system_db_manager
from system_databse.create_system_db import MIGRATIONS_DIR, _applied, _apply, _connect, create_system_db

REPO = Path(__file__).resolve().parents[1]
PIN_MIGRATION = "0010_pin_hash.sql"


def file_bytes(db: Path) -> bytes:
    """system.db and, when present, its -wal: everything a copy of the folder would give away."""
    return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def old_ledger(db: Path, plain_pin: str, *, in_wal: bool) -> sqlite3.Connection:
    """A ledger as the code before migration 0010 left it: the PIN in plain text, written by the old
    set_pin (an upsert of system_config). ``in_wal``: the PIN's page is still in the WAL (a
    connection stays open, as a running API's would), else it was checkpointed into the file."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for migration in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        if migration.name < PIN_MIGRATION:
            conn.executescript(f"BEGIN; {migration.read_text()}\nINSERT INTO schema_migrations VALUES "
                               f"('{migration.name}', '2026-01-05T15:00:00Z'); COMMIT;")
    conn.execute("INSERT INTO system_config (key, value) VALUES ('pin', ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (plain_pin,))
    conn.execute("INSERT INTO system_config (key, value) VALUES ('pin_lockout', '{}')")
    if not in_wal:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert plain_pin.encode() in file_bytes(db)
    return conn


def upgrade(db: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "system_databse.create_system_db", "--db", str(db)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_a_new_ledger_holds_the_default_pin_only_as_a_salted_hash(tmp_path):
    db = tmp_path / "system.db"
    create_system_db(db)
    record = system_db_manager.get_pin(conn=system_db_manager.get_connection(db, read_only=True))
    assert record.startswith("$scrypt$ln=13,r=8,p=1$")  # the parameters travel with the hash
    assert b"2020" not in file_bytes(db)
    conn = system_db_manager.get_connection(db, read_only=True)
    assert system_db_manager.check_pin("2020", conn=conn) and system_db_manager.pin_is_default(conn=conn)
    assert not system_db_manager.check_pin("2021", conn=conn)
    conn.close()


@pytest.mark.parametrize("in_wal", [False, True], ids=["checkpointed", "still-in-the-wal"])
def test_upgrading_a_ledger_hashes_the_pin_the_owner_set_and_leaves_no_digits(tmp_path, in_wal):
    db = tmp_path / "system.db"
    running_api = old_ledger(db, "73915846", in_wal=in_wal)
    result = upgrade(db)
    assert result.returncode == 0, result.stderr
    assert PIN_MIGRATION in result.stdout
    assert b"73915846" not in file_bytes(db)
    conn = system_db_manager.get_connection(db, read_only=True)
    assert system_db_manager.check_pin("73915846", conn=conn)
    assert not system_db_manager.check_pin("2020", conn=conn) and not system_db_manager.pin_is_default(conn=conn)
    assert system_db_manager.get_config("pin_lockout", conn=conn) == "{}"  # the rest of system_config untouched
    conn.close()
    running_api.close()


def test_upgrading_the_seeded_default_keeps_it_the_default(tmp_path):
    db = tmp_path / "system.db"
    old_ledger(db, "2020", in_wal=False).close()
    assert upgrade(db).returncode == 0
    assert b"2020" not in file_bytes(db)
    assert system_db_manager.pin_is_default(conn=system_db_manager.get_connection(db, read_only=True))


def test_two_upgrades_started_together_hash_the_pin_exactly_once(tmp_path):
    db = tmp_path / "system.db"
    old_ledger(db, "55501234", in_wal=False).close()
    command = [sys.executable, "-m", "system_databse.create_system_db", "--db", str(db)]
    runs = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)]
    outcomes = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    conn = system_db_manager.get_connection(db, read_only=True)
    assert conn.execute("SELECT COUNT(*) FROM schema_migrations WHERE name = ?", (PIN_MIGRATION,)).fetchone()[0] == 1
    assert system_db_manager.check_pin("55501234", conn=conn)  # hashed once: a hash of the hash would not match
    conn.close()


def test_the_upgrade_that_loses_the_race_applies_nothing(tmp_path):
    """The exact interleaving: one upgrade looks (0010 not applied), another finishes, the first goes on."""
    db = tmp_path / "system.db"
    old_ledger(db, "55501234", in_wal=False).close()
    late = _connect(db)
    assert PIN_MIGRATION not in _applied(late)
    assert PIN_MIGRATION in create_system_db(db)  # with every later migration
    record = system_db_manager.get_pin(conn=system_db_manager.get_connection(db, read_only=True))
    assert _apply(late, MIGRATIONS_DIR / PIN_MIGRATION) is False
    late.close()
    conn = system_db_manager.get_connection(db, read_only=True)
    assert system_db_manager.get_pin(conn=conn) == record and system_db_manager.check_pin("55501234", conn=conn)
    conn.close()


def pin_cli(db: Path, new_pin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.pin", "set-pin", "--db", str(db)], input=new_pin + "\n",
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def test_set_pin_leaves_neither_the_new_nor_the_old_pin_in_the_files(tmp_path):
    db = tmp_path / "system.db"
    create_system_db(db)
    running_api = system_db_manager.get_connection(db, read_only=True)  # keeps the WAL from being deleted
    assert running_api.execute("SELECT COUNT(*) FROM system_config").fetchone()[0] >= 1
    assert pin_cli(db, "73915846").returncode == 0
    assert pin_cli(db, "48151623").returncode == 0
    data = file_bytes(db)
    assert b"73915846" not in data and b"48151623" not in data and b"2020" not in data
    assert system_db_manager.check_pin("48151623", conn=running_api)
    assert not system_db_manager.check_pin("73915846", conn=running_api)
    running_api.close()


def test_each_record_has_its_own_salt_and_keeps_its_parameters():
    first, second = pin_hash.hash_pin("2020"), pin_hash.hash_pin("2020")
    assert first != second  # a fresh salt each time: equal PINs do not show as equal hashes
    assert pin_hash.verify_pin("2020", first) and pin_hash.verify_pin("2020", second)
    cheaper = pin_hash.hash_pin("2020", log2_n=10, r=4)  # records made with other parameters still verify
    assert cheaper.startswith("$scrypt$ln=10,r=4,p=1$") and pin_hash.verify_pin("2020", cheaper)
    assert not pin_hash.verify_pin("2021", cheaper)


@pytest.mark.parametrize("pin", ["2021", "0202", "202", "20200", "2020 ", "", "2020\x00"])
def test_only_the_exact_pin_matches(pin):
    assert not pin_hash.verify_pin(pin, pin_hash.hash_pin("2020"))


@pytest.mark.parametrize("stored", ["2020", "", "$scrypt$ln=99,r=8,p=1$AAAA$AAAA", "$scrypt$ln=13,r=8,p=1$!!$AAAA",
                                    "$bcrypt$ln=13,r=8,p=1$AAAA$AAAA"])
def test_a_stored_value_that_is_not_a_hash_is_an_error_not_a_wrong_pin(stored):
    with pytest.raises(ValueError):
        pin_hash.verify_pin("2020", stored)
