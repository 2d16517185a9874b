"""Settings come from the environment; a bad or missing key is named, its secret never shown."""
from __future__ import annotations

import pytest

from shared.config import AlpacaSettings, ApiSettings, ConfigError, load_env, log_level

GOOD = {"ALPACA_API_KEY": "PKTESTKEY123", "ALPACA_SECRET": "s3cr3t-value", "ALPACA_PAPER": "True",
        "ALPACA_FEED": "iex", "ALPACA_TRADING_URL": "http://127.0.0.1:18080",
        "ALPACA_DATA_URL": "http://127.0.0.1:18080", "ALPACA_STREAM_URL": "ws://127.0.0.1:18082"}


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


@pytest.mark.parametrize("key, value", [
    ("ALPACA_API_KEY", ""), ("ALPACA_SECRET", ""), ("ALPACA_SECRET", "your_secret_key"),
    ("ALPACA_PAPER", "maybe"), ("ALPACA_FEED", "otc"),
    ("ALPACA_TRADING_URL", "127.0.0.1:18080"), ("ALPACA_TRADING_URL", "http://127.0.0.1:18080/v2"),
    ("ALPACA_STREAM_URL", "http://127.0.0.1:18082"),
])
def test_a_bad_setting_is_named_in_one_clear_message(key, value):
    with pytest.raises(ConfigError) as error:
        AlpacaSettings.from_env({**GOOD, key: value})
    message = str(error.value)
    assert key in message and "\n" not in message
    assert GOOD["ALPACA_SECRET"] not in message


def test_secrets_never_appear_in_the_settings_repr():
    text = repr(AlpacaSettings.from_env(GOOD))
    assert "PKTESTKEY123" not in text and "s3cr3t-value" not in text


def test_process_environment_wins_over_the_env_file(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("API_PORT=7000\nLOG_LEVEL=debug\n")
    monkeypatch.setenv("API_PORT", "5055")
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    load_env(env_file)
    assert ApiSettings.from_env().port == 5055
    assert log_level() == "DEBUG"


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
