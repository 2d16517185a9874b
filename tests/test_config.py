"""One settings object: every key read once, in one place; a bad value is named, a secret never shown."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from shared.config import REPO_ROOT, AlpacaSettings, ApiSettings, ConfigError, Settings, load_env

GOOD = {"ALPACA_API_KEY": "PKTESTKEY123", "ALPACA_SECRET": "s3cr3t-value", "ALPACA_PAPER": "True",
        "ALPACA_FEED": "iex", "ALPACA_TRADING_URL": "http://127.0.0.1:18080",
        "ALPACA_DATA_URL": "http://127.0.0.1:18080", "ALPACA_STREAM_URL": "ws://127.0.0.1:18082"}
TOKEN_URL = "https://ntfy.example/secret-topic-4711"

# every key the settings read, with a value that must be refused; {folder} / {file} are made per test
BAD = [
    ("ALPACA_API_KEY", ""), ("ALPACA_SECRET", "your_secret_key"), ("ALPACA_PAPER", "maybe"), ("ALPACA_FEED", "otc"),
    ("ALPACA_TRADING_URL", "127.0.0.1:18080"), ("ALPACA_DATA_URL", "http://127.0.0.1:18080/v2"),
    ("ALPACA_STREAM_URL", "http://127.0.0.1:18082"), ("ALPACA_TRADE_STREAM_URL", "wss://"),
    ("API_PORT", "65536"), ("AUTOTRADER_PREVIEW_SECONDS", "0"),
    ("AUTOTRADER_CLOCK", "sundial"), ("AUTOTRADER_ALGORITHMS_DIR", "{file}"),
    ("AUTOTRADER_ALGORITHM_TIMEOUT", "1e3"), ("AUTOTRADER_FILL_TIMEOUT", "inf"),
    ("AUTOTRADER_MAX_PRICE_AGE_MINUTES", "-1"), ("AUTOTRADER_BAR_WAIT", "٣"),
    ("AUTOTRADER_REQUESTS_PER_MINUTE", "0"), ("AUTOTRADER_BAR_RETENTION_DAYS", "²"),
    ("AUTOTRADER_PRUNE_BATCH", "1.5"), ("AUTOTRADER_DAILY_ORDER_LIMIT", "-3"),
    ("AUTOTRADER_CARD_MAX_DRAWDOWN_PERCENT", "100"), ("AUTOTRADER_CARD_DAILY_LOSS_LIMIT", "0"),
    ("AUTOTRADER_CARD_MAX_TRADES_PER_DAY", "0"), ("AUTOTRADER_CARD_COOLDOWN_MINUTES", "2.5"),
    ("AUTOTRADER_CARD_ON_TRIP", "panic"), ("NOTIFY_URL", "ftp://x"), ("NOTIFY_TIMEOUT_SECONDS", "0.05"),
    ("NOTIFY_REPEAT_SECONDS", "-1"), ("NOTIFY_MAX_PER_HOUR", "0"),
    ("AUTOTRADER_SYSTEM_DB", "{folder}"), ("AUTOTRADER_STOCKS_DB", "{folder}"), ("AUTOTRADER_LOG_DIR", "{file}"),
    ("AUTOTRADER_LOG_KEEP_DAYS", "0"), ("LOG_LEVEL", "LOUD"),
    ("RUN_PAPER_EXCHANGE", "ture"), ("PAPER_EXCHANGE_START", "tomorrow"), ("PAPER_EXCHANGE_STATE_DB", "{folder}"),
]
ANY_VALUE = {"API_HOST"}  # a host name or address: nothing to refuse before binding
QUIET = {"ALPACA_API_KEY", "ALPACA_SECRET", "NOTIFY_URL"}  # secrets (a webhook URL may hold a token)


class Recording(dict):
    """An environment that remembers which keys were asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: set[str] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)


def keys_read() -> set[str]:
    env = Recording(GOOD)  # with the keys set, the broker part reads on past them
    Settings.from_env(env)
    return env.asked


def example_keys() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (REPO_ROOT / ".env.example").read_text(), re.M))


def concrete(value: str, tmp_path) -> str:
    (tmp_path / "a-file").write_text("")
    return value.format(folder=tmp_path, file=tmp_path / "a-file")


@pytest.mark.parametrize("key, value", BAD)
def test_every_bad_value_is_refused_in_one_line_naming_its_key(key, value, tmp_path):
    value = concrete(value, tmp_path)
    with pytest.raises(ConfigError) as error:
        Settings.from_env({**GOOD, key: value}).broker
    message = str(error.value)
    assert key in message and "\n" not in message
    assert GOOD["ALPACA_SECRET"] not in message and GOOD["ALPACA_API_KEY"] not in message
    if key not in QUIET:
        assert repr(value) in message  # which value was wrong, exactly as typed


def test_the_bad_values_cover_every_key_the_settings_read_and_the_example_documents_them():
    read = keys_read()
    assert read == {key for key, _ in BAD} | ANY_VALUE
    assert read <= example_keys(), ".env.example must document every key"
    exchange_own = {k for k in example_keys() - read if k.startswith("PAPER_EXCHANGE_")}
    assert example_keys() - read == exchange_own  # the rest the paper exchange reads itself


def test_a_webhook_url_with_its_token_is_never_shown():
    settings = Settings.from_env({**GOOD, "NOTIFY_URL": TOKEN_URL})
    assert settings.notify.url == TOKEN_URL
    assert "secret-topic-4711" not in repr(settings)
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"NOTIFY_URL": "ftp://secret-topic-4711"})
    assert "secret-topic-4711" not in str(error.value)


def test_defaults_with_nothing_set():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.databases.system_db == REPO_ROOT / "system_databse" / "system.db"
    assert settings.databases.stocks_db == REPO_ROOT / "database" / "stocks.db"
    assert (settings.logs.directory, settings.logs.level, settings.logs.keep_days) == (REPO_ROOT / "logs", "INFO", 14)
    assert (settings.api.host, settings.api.port, settings.api.preview_seconds) == ("127.0.0.1", 5000, 30.0)
    assert settings.api.live_trading is False and settings.api.dashboard_url == "http://127.0.0.1:5000/"
    daemon = settings.daemon
    assert (daemon.clock, daemon.algorithms_dir, daemon.algorithm_timeout, daemon.fill_timeout) == ("system", None,
                                                                                                    10.0, 30.0)
    assert (daemon.max_price_age, daemon.bar_wait, daemon.requests_per_minute) == (5, 10.0, 180)
    assert (settings.retention.keep_days, settings.retention.batch_rows) == (400, 5000)
    notify = settings.notify
    assert (notify.url, notify.timeout, notify.repeat_seconds, notify.max_per_hour) == ("", 5.0, 3600.0, 30)
    assert (settings.exchange.run, settings.exchange.start) == (True, None)
    assert settings.exchange_state_db == REPO_ROOT / "system_databse" / "paper_exchange.db"
    with pytest.raises(ConfigError, match="ALPACA_API_KEY is not set"):
        settings.broker  # the wall runs without keys; whoever trades is told which one is missing


def test_good_values_are_read_as_meant(tmp_path):
    settings = Settings.from_env({**GOOD, "AUTOTRADER_CLOCK": "Broker", "AUTOTRADER_BAR_WAIT": "2.5",
                                  "AUTOTRADER_MAX_PRICE_AGE_MINUTES": "0", "NOTIFY_REPEAT_SECONDS": "0",
                                  "AUTOTRADER_SYSTEM_DB": str(tmp_path / "ledger.db"), "LOG_LEVEL": "debug",
                                  "AUTOTRADER_ALGORITHMS_DIR": str(tmp_path), "PAPER_EXCHANGE_START": "2026-11-23T14:25:00Z",
                                  "API_HOST": " 0.0.0.0 ", "API_PORT": "5055"})
    assert (settings.daemon.clock, settings.daemon.bar_wait, settings.daemon.max_price_age) == ("broker", 2.5, 0)
    assert settings.daemon.algorithms_dir == tmp_path.resolve() and settings.logs.level == "DEBUG"
    assert settings.notify.repeat_seconds == 0.0 and settings.exchange.start == "2026-11-23T14:25:00Z"
    assert settings.exchange_state_db == tmp_path / "paper_exchange.db"  # beside the ledger it must match
    assert (settings.api.host, settings.api.port, settings.api.is_loopback) == ("0.0.0.0", 5055, False)
    assert settings.broker.trading_url == "http://127.0.0.1:18080" and settings.secrets == ("PKTESTKEY123",
                                                                                            "s3cr3t-value")


def test_settings_from_a_complete_environment():
    settings = AlpacaSettings.from_env(GOOD)
    assert (settings.paper, settings.feed, settings.mode) == (True, "iex", "PAPER")
    assert settings.trading_url == "http://127.0.0.1:18080"
    assert settings.stream_endpoint == "ws://127.0.0.1:18082/v2/iex"


def test_empty_overrides_mean_alpacas_own_endpoints_and_live_mode_is_explicit():
    env = {**GOOD, "ALPACA_TRADING_URL": "", "ALPACA_DATA_URL": "", "ALPACA_STREAM_URL": "",
           "ALPACA_PAPER": "False", "ALPACA_FEED": "SIP"}
    settings = AlpacaSettings.from_env(env)
    assert (settings.trading_url, settings.data_url, settings.stream_endpoint) == (None, None, None)
    assert (settings.mode, settings.feed) == ("LIVE", "sip")


def test_secrets_never_appear_in_the_settings_repr():
    text = repr(Settings.from_env(GOOD)) + repr(AlpacaSettings.from_env(GOOD))
    assert "PKTESTKEY123" not in text and "s3cr3t-value" not in text


def test_process_environment_wins_over_the_env_file(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("API_PORT=7000\nLOG_LEVEL=debug\n")
    monkeypatch.setenv("API_PORT", "5055")
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    load_env(env_file)
    settings = Settings.from_env(os.environ)
    assert (settings.api.port, settings.logs.level) == (5055, "DEBUG")


def test_the_trade_stream_follows_an_overridden_stream_and_is_alpacas_own_otherwise():
    assert AlpacaSettings.from_env(GOOD).trade_stream_url == "ws://127.0.0.1:18082"
    own = {**GOOD, "ALPACA_TRADING_URL": "", "ALPACA_DATA_URL": "", "ALPACA_STREAM_URL": ""}
    assert AlpacaSettings.from_env(own).trade_stream_url is None
    elsewhere = {**GOOD, "ALPACA_TRADE_STREAM_URL": "ws://127.0.0.1:19000"}
    assert AlpacaSettings.from_env(elsewhere).trade_stream_url == "ws://127.0.0.1:19000"


def test_api_settings_default_to_loopback_and_refuse_bad_ports():
    assert ApiSettings.from_env({}) == ApiSettings("127.0.0.1", 5000)
    assert ApiSettings.from_env({}).is_loopback
    assert not ApiSettings.from_env({"API_HOST": "0.0.0.0"}).is_loopback
    for bad in ("http", "²", "５０００"):                               # unicode digits are not a port
        with pytest.raises(ConfigError, match="API_PORT"):
            ApiSettings.from_env({"API_PORT": bad})


# Each process reads its settings first: a bad value is one line on stderr and a non-zero exit,
# before anything starts (no exchange, no database needed).
ENTRY_POINTS = [
    (["orchestrator.py", "--once"], 2, "error: "),
    (["api_server.py"], 2, "error: "),
    (["-m", "scripts.launcher"], 2, "error: "),
    (["-m", "scripts.launcher", "--exchange-only"], 2, "error: "),
    (["-m", "scripts.status"], 1, "error: "),
    (["-m", "scripts.services", "install", "--no-enable", "--dest", "{folder}"], 1, "error: "),
    (["-m", "scripts.reconcile"], 1, "reconcile: "),
    (["-m", "database.historical_pull", "AAPL", "--backfill"], 2, "error: "),
]


@pytest.mark.parametrize("argv, status, prefix", ENTRY_POINTS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
@pytest.mark.parametrize("key, value", [("AUTOTRADER_PREVIEW_SECONDS", "soon"), ("LOG_LEVEL", "LOUD")])
def test_an_entry_point_given_a_bad_value_prints_one_line_and_exits(argv, status, prefix, key, value, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "AUTOTRADER_", "API_", "NOTIFY_"))}
    env.update({**GOOD, key: value, "AUTOTRADER_LOG_DIR": str(tmp_path / "logs")})
    result = subprocess.run([sys.executable, *[concrete(a, tmp_path) for a in argv]], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == status, result.stderr
    assert result.stderr.startswith(f"{prefix}{key} must be") and result.stderr.count("\n") == 1, result.stderr
    assert repr(value) in result.stderr
