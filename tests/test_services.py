"""The Pi's systemd units: rendered for this checkout, valid for systemd, restart forever."""
from __future__ import annotations

import configparser
import shutil
import subprocess

import pytest

from shared.config import REPO_ROOT, ConfigError, Settings
from scripts import services

ENV = {"API_HOST": "127.0.0.1", "API_PORT": "5055", "RUN_PAPER_EXCHANGE": "true"}
SETTINGS = Settings.from_env(ENV)


def parse(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser


def test_units_are_rendered_with_this_checkouts_paths_and_dashboard_url(tmp_path):
    written = services.render_units(tmp_path, SETTINGS)
    assert sorted(p.name for p in written) == [
        "autotrader-api.service", "autotrader-exchange.service",
        "autotrader-kiosk.service", "autotrader-orchestrator.service"]
    for path in written:
        text = path.read_text()
        assert "@" not in text.replace("@REPO@", "")  # every placeholder filled
        assert parse(path)["Service"]["Restart"] == "always"
    api = parse(tmp_path / "autotrader-api.service")["Service"]
    assert api["ExecStart"] == f"{REPO_ROOT}/.venv/bin/python {REPO_ROOT}/api_server.py"
    kiosk = parse(tmp_path / "autotrader-kiosk.service")
    assert kiosk["Service"]["ExecStart"].startswith("/usr/bin/chromium --kiosk")
    assert kiosk["Service"]["ExecStart"].endswith("http://127.0.0.1:5055/")
    assert "http://127.0.0.1:5055/api/health" in kiosk["Service"]["ExecStartPre"]
    assert "autotrader-api.service" in kiosk["Unit"]["After"]


def test_the_orchestrator_is_watched_by_systemds_watchdog(tmp_path):
    services.render_units(tmp_path, SETTINGS)
    unit = parse(tmp_path / "autotrader-orchestrator.service")["Service"]
    assert unit["Type"] == "notify" and int(unit["WatchdogSec"]) > 60


def test_no_exchange_unit_when_trading_with_alpaca_itself(tmp_path):
    written = services.render_units(tmp_path, Settings.from_env({**ENV, "RUN_PAPER_EXCHANGE": "false"}))
    assert "autotrader-exchange.service" not in [p.name for p in written]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units_without_a_warning(tmp_path):
    written = services.render_units(tmp_path, SETTINGS)
    result = subprocess.run(["systemd-analyze", "verify", *map(str, written)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == ""


def test_install_and_uninstall_only_touch_the_given_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RUN_PAPER_EXCHANGE", "false")
    assert services.main(["install", "--dest", str(tmp_path), "--no-enable"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "autotrader-api.service", "autotrader-kiosk.service", "autotrader-orchestrator.service"]
    assert services.main(["uninstall", "--dest", str(tmp_path), "--no-enable"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_a_bad_port_setting_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("API_PORT", "not-a-port")
    assert services.main(["install", "--dest", str(tmp_path), "--no-enable"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: API_PORT") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_wait_for_url_gives_up_with_a_one_line_error(capsys):
    from scripts.wait_for_url import main as wait_main
    from tests.fixtures.ports import free_port
    port = free_port()  # nobody listens there
    assert wait_main([f"http://127.0.0.1:{port}/api/health", "--timeout", "0.5"]) == 1
    assert "did not answer within 0.5s" in capsys.readouterr().err
    assert wait_main(["not-a-url"]) == 2


def test_the_dashboard_url_of_an_ipv6_loopback_binding_is_bracketed():
    assert Settings.from_env({"API_HOST": "::1", "API_PORT": "5000"}).api.dashboard_url == "http://[::1]:5000/"
    assert Settings.from_env({"API_HOST": "0.0.0.0", "API_PORT": "5000"}).api.dashboard_url == "http://127.0.0.1:5000/"


def test_a_mistyped_run_paper_exchange_is_an_error_not_a_silent_false(tmp_path, capsys, monkeypatch):
    with pytest.raises(ConfigError, match="RUN_PAPER_EXCHANGE"):
        Settings.from_env({**ENV, "RUN_PAPER_EXCHANGE": "ture"})
    monkeypatch.setenv("RUN_PAPER_EXCHANGE", "ture")
    assert services.main(["install", "--dest", str(tmp_path), "--no-enable"]) == 1
    assert capsys.readouterr().err == "error: RUN_PAPER_EXCHANGE must be True or False, got 'ture'\n"
    assert list(tmp_path.iterdir()) == []


def test_the_orchestrator_starts_after_the_clock_is_synchronised(tmp_path):
    services.render_units(tmp_path, SETTINGS)
    unit = parse(tmp_path / "autotrader-orchestrator.service")["Unit"]
    assert "time-sync.target" in unit["After"].split()


def test_the_orchestrator_and_the_api_bring_system_db_up_to_date_before_they_start(tmp_path):
    """After a ``git pull`` that brings migrations, a restart of either service upgrades the ledger
    first: the rendered ExecStartPre, run as systemd would (in the checkout), creates or upgrades
    the file named in the environment and is a no-op the second time."""
    written = services.render_units(tmp_path / "units", SETTINGS)
    commands = {parse(p)["Service"].get("ExecStartPre") for p in written if p.stem in (
        "autotrader-orchestrator", "autotrader-api")}
    assert commands == {f"{REPO_ROOT}/.venv/bin/python -m system_databse.create_system_db"}
    ledger_path = tmp_path / "ledger" / "system.db"
    ledger_path.parent.mkdir()
    env = {"PATH": "/usr/bin:/bin", "AUTOTRADER_SYSTEM_DB": str(ledger_path)}
    command = commands.pop().split()
    first = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "migration(s) applied (0001" in first.stdout and ledger_path.exists()
    again = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith("0 migration(s) applied, already up to date")
