"""Secrets are SecretStr: never in `config show`, logs, exception messages or repr."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from stream_monitor.cli import app
from stream_monitor.config import load_settings
from stream_monitor.config.settings import LoggingSettings
from stream_monitor.errors import ConfigError
from stream_monitor.kafka import client_kwargs
from stream_monitor.logs import configure_logging, get_logger

SECRET = "hunter2-very-secret"
runner = CliRunner()


@pytest.fixture
def sasl_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_MONITOR_KAFKA__SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("STREAM_MONITOR_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STREAM_MONITOR_KAFKA__SASL_USERNAME", "monitor")
    monkeypatch.setenv("STREAM_MONITOR_KAFKA__SASL_PASSWORD", SECRET)
    monkeypatch.setenv("STREAM_MONITOR_STATE__SIGNING_KEY", SECRET + "-key")


@pytest.mark.usefixtures("sasl_env")
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_config_show_masks_secrets_from_environment(fmt: str) -> None:
    result = runner.invoke(app, ["config", "show", "--format", fmt])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "**********" in result.output
    assert "SCRAM-SHA-512" in result.output  # the rest is shown
    if fmt == "json":
        assert json.loads(result.output)["kafka"]["sasl_password"] == "**********"


@pytest.mark.usefixtures("sasl_env")
def test_secret_reaches_the_client_but_not_repr() -> None:
    settings = load_settings()
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert SECRET not in repr(settings.kafka)
    assert client_kwargs(settings.kafka)["sasl_plain_password"] == SECRET


@pytest.mark.usefixtures("sasl_env")
def test_secret_never_in_logs() -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="json", level="INFO"), stream=stream)
    settings = load_settings()
    get_logger("test").info("settings loaded", settings=settings, kafka=settings.kafka)
    output = stream.getvalue()
    assert "settings loaded" in output
    assert SECRET not in output


def test_invalid_secret_value_is_masked_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"kafka:\n  sasl_password: [{SECRET}]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "kafka.sasl_password: **********" in message
    assert SECRET not in message
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert SECRET not in result.output


def test_secret_in_other_errors_stays_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken setting beside a secret reports the broken one and leaks nothing."""
    monkeypatch.setenv("STREAM_MONITOR_KAFKA__SASL_PASSWORD", SECRET)
    monkeypatch.setenv("STREAM_MONITOR_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    path = tmp_path / "c.yaml"
    path.write_text("kafka:\n  sasl_mechanism: NOPE\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "kafka.sasl_mechanism: 'NOPE'" in str(info.value)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.problems)


def test_capture_logs_sees_masked_secret(sasl_env: None) -> None:
    settings = load_settings()
    with structlog.testing.capture_logs() as logs:
        get_logger("test").info("connecting", password=settings.kafka.sasl_password)
    assert logs[0]["event"] == "connecting"
    assert SECRET not in str(logs[0]["password"])


def test_http_token_is_required_off_loopback_and_never_echoed() -> None:
    with pytest.raises(ConfigError) as missing:
        load_settings(None, {"http": {"host": "0.0.0.0"}})
    text = str(missing.value)
    assert "http.auth_token: is required when http.host is 0.0.0.0" in text
    with pytest.raises(ConfigError) as short:
        load_settings(None, {"http": {"auth_token": "tiny-secret"}})
    assert "must be at least 16 characters" in str(short.value)
    assert "tiny-secret" not in str(short.value)
    settings = load_settings(
        None,
        {"http": {"host": "0.0.0.0", "auth_token": "long-enough-secret-1"}},
    )
    assert settings.http.auth_token is not None
    assert "long-enough-secret-1" not in repr(settings)
