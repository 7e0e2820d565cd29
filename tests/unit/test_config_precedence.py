"""Where each setting comes from: defaults < file < environment < flags, and profiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from stream_monitor.config import Settings, load_settings, parse_overrides
from stream_monitor.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file() -> None:
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "localhost:9092"
    assert settings.kafka.group_id == "stream-monitor"
    assert (settings.topics.predictions, settings.topics.labels, settings.topics.alerts) == (
        "predictions",
        "labels",
        "alerts",
    )
    assert settings.topics.metrics == "stream-monitor-metrics"
    assert settings.topics.dead_letters == "stream-monitor-dead-letters"
    assert settings.topics.state == "stream-monitor-state"
    assert settings.env == "dev"
    assert settings.logging.format == "console"
    assert settings.topics.auto_create is True


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.yaml", "kafka:\n  group_id: from-file\ntopics:\n  partitions: 3\n"),
        ("c.yml", "kafka: {group_id: from-file}\ntopics: {partitions: 3}\n"),
        ("c.toml", '[kafka]\ngroup_id = "from-file"\n[topics]\npartitions = 3\n'),
        ("c.json", json.dumps({"kafka": {"group_id": "from-file"}, "topics": {"partitions": 3}})),
    ],
)
def test_file_formats_chosen_by_extension(tmp_path: Path, name: str, text: str) -> None:
    settings = load_settings(write(tmp_path / name, text))
    assert settings.kafka.group_id == "from-file"
    assert settings.topics.partitions == 3
    # Internal topics follow the group id unless set.
    assert settings.topics.state == "from-file-state"


def test_environment_beats_file_and_flags_beat_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path / "c.yaml",
        "kafka:\n  bootstrap_servers: file:9092\n  group_id: file-group\n"
        "topics:\n  alerts: file-alerts\n  partitions: 2\n",
    )
    monkeypatch.setenv("STREAM_MONITOR_KAFKA__BOOTSTRAP_SERVERS", "env:9092")
    monkeypatch.setenv("STREAM_MONITOR_TOPICS__ALERTS", "env-alerts")
    settings = load_settings(path, parse_overrides(["topics.alerts=flag-alerts"]))
    assert settings.kafka.bootstrap_servers == "env:9092"  # env over file
    assert settings.kafka.group_id == "file-group"  # file over default
    assert settings.topics.alerts == "flag-alerts"  # flag over env
    assert settings.topics.partitions == 2  # file value kept beside env values of the section


def test_config_file_from_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "c.yaml", "topics:\n  predictions: preds-from-env-file\n")
    monkeypatch.setenv("STREAM_MONITOR_CONFIG", str(path))
    assert load_settings().topics.predictions == "preds-from-env-file"


def test_explicit_path_beats_config_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_MONITOR_CONFIG", str(write(tmp_path / "a.yaml", "env: prod\n")))
    assert load_settings(write(tmp_path / "b.yaml", "env: dev\n")).env == "dev"


def test_group_id_from_environment_renames_internal_topics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAM_MONITOR_KAFKA__GROUP_ID", "fraud-monitor")
    settings = load_settings()
    assert settings.topics.metrics == "fraud-monitor-metrics"
    assert settings.topics.dead_letters == "fraud-monitor-dead-letters"


def test_explicit_internal_topic_names_are_kept(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path / "c.yaml", "topics:\n  state: my-state\n"))
    assert settings.topics.state == "my-state"
    assert settings.topics.metrics == "stream-monitor-metrics"


def test_prod_profile_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_MONITOR_ENV", "prod")
    settings = load_settings()
    assert settings.logging.format == "json"
    assert settings.topics.auto_create is False


def test_profile_defaults_yield_to_explicit_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_MONITOR_ENV", "prod")
    path = write(tmp_path / "c.yaml", "logging:\n  format: console\ntopics:\n  auto_create: true\n")
    settings = load_settings(path)
    assert settings.logging.format == "console"
    assert settings.topics.auto_create is True


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.env = "prod"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.kafka.group_id = "other"  # type: ignore[misc]


def test_model_specs_and_default_spec(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "models:\n  fraud:\n    task: binary_classification\n"
        "    features: {amount: numeric, country: categorical}\n"
        "    drift: {warning: 0.2, critical: 0.3}\n",
    )
    settings = load_settings(path)
    fraud = settings.model_spec("fraud")
    assert fraud.features == {"amount": "numeric", "country": "categorical"}
    assert (fraud.drift.warning, fraud.drift.critical) == (0.2, 0.3)
    assert settings.model_spec("unknown") == settings.monitoring.default


def test_overrides_parse_types_and_nesting() -> None:
    assert parse_overrides(["a.b=3", "a.c=true", "d=x", "e="]) == {
        "a": {"b": 3, "c": True},
        "d": "x",
        "e": "",
    }


def test_bad_override_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_overrides(["no-equals-sign"])
    assert "--set: 'no-equals-sign' must look like section.key=value" in str(info.value)


def test_settings_class_is_usable_directly_with_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAM_MONITOR_PROCESSING__GUARANTEE", "exactly_once")
    assert Settings().processing.guarantee == "exactly_once"
