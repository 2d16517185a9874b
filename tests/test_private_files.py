"""Keys, ledger, exchange state and logs are readable by their owner only; anything else is warned about."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from shared import private_files
from shared.config import Settings
from paper_exchange.state import Store
from scripts import status
from system_databse.create_system_db import create_system_db
from tests.test_api_server import run_server, server_env, wait_for  # noqa: F401 - fixture
from tests.fixtures.api import closed_port

REPO = Path(__file__).resolve().parents[1]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_ledger_and_its_wal_are_owner_only_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0o022)
    try:
        create_system_db(tmp_path / "system.db")
        store = Store(tmp_path / "paper_exchange.db")
        store.close()
    finally:
        os.umask(old)
    for name in ("system.db", "system.db-wal", "system.db-shm", "paper_exchange.db"):
        if (tmp_path / name).exists():
            assert mode(tmp_path / name) == 0o600, name
    assert mode(tmp_path / "system.db") == 0o600 and mode(tmp_path / "paper_exchange.db") == 0o600


def test_logs_folder_and_files_are_created_owner_only(tmp_path):
    logs = tmp_path / "logs"
    code = ("import logging, os; os.umask(0o022); from shared.logging_setup import setup_logging; "
            "from shared.config import Settings; "
            "setup_logging('api', Settings.from_env(os.environ), console=False); logging.getLogger('x').warning('hello')")
    env = {**os.environ, "AUTOTRADER_LOG_DIR": str(logs)}
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=60)
    assert mode(logs) == 0o700
    assert mode(logs / "api.log") == 0o600 and "hello" in (logs / "api.log").read_text()


def test_exposed_names_each_open_file_with_its_fix(tmp_path):
    secret, fine, folder = tmp_path / ".env", tmp_path / "system.db", tmp_path / "logs"
    secret.write_text("ALPACA_SECRET=x")
    secret.chmod(0o644)
    fine.write_text("")
    fine.chmod(0o600)
    folder.mkdir()
    folder.chmod(0o755)
    lines = private_files.exposed([secret, fine, folder, tmp_path / "missing"])
    assert lines == [f"{secret} is open to other users (mode 0644); run: chmod 600 {secret}",
                     f"{folder} is open to other users (mode 0755); run: chmod 700 {folder}"]


def test_status_shows_files_readable_by_others(ledger, market, system_db, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOTRADER_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("RUN_PAPER_EXCHANGE", "false")
    system_db.chmod(0o644)
    lines = status.file_mode_lines(Settings.from_env(os.environ))
    assert lines[0] == "files: READABLE BY OTHER USERS:"
    assert f"  {system_db} is open to other users (mode 0644); run: chmod 600 {system_db}" in lines
    system_db.chmod(0o600)
    assert not any(str(system_db) in line for line in status.file_mode_lines(Settings.from_env(os.environ)))


def test_the_api_warns_at_start_up_when_the_ledger_is_readable_by_others(tmp_path, system_db, stocks_db, run_server):
    system_db.chmod(0o644)
    port = closed_port()
    run_server(server_env(tmp_path, system_db, stocks_db, port, {}))
    wait_for(f"http://127.0.0.1:{port}/api/health")
    log = (tmp_path / "logs" / "api.log").read_text()
    assert f"secret file readable by others: {system_db} is open to other users (mode 0644)" in log
    assert mode(tmp_path / "logs") == 0o700 and mode(tmp_path / "logs" / "api.log") == 0o600
