"""CLI surface: schemas, version, module entry point, generated docs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import stream_monitor
from stream_monitor.cli import app
from stream_monitor.config.docs import render_configuration_doc
from stream_monitor.config.settings import Settings, SourceSpec

runner = CliRunner()
ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("kind", "required"),
    [
        ("prediction", {"event_id", "model_id", "timestamp", "features", "prediction"}),
        ("label", {"event_id", "model_id", "timestamp", "label"}),
        ("alert", {"alert_id", "dedup_key", "status", "severity", "model_id", "kind", "rule"}),
        ("summary", {"model_id", "window_kind", "window_start", "window_end", "sample_size"}),
    ],
)
def test_schema_command_prints_json_schema(kind: str, required: set[str]) -> None:
    result = runner.invoke(app, ["schema", kind])
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["$schema"].endswith("2020-12/schema")
    assert required <= set(document["required"])


def test_schema_rejects_unknown_kind() -> None:
    result = runner.invoke(app, ["schema", "thing"])
    assert result.exit_code == 2


def test_version_flag() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.output.strip() == stream_monitor.__version__


def test_python_dash_m_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stream_monitor", "schema", "label"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout)["title"] == "LabelEvent"


def test_config_show_applies_flags_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_MONITOR_KAFKA__BOOTSTRAP_SERVERS", "env:9092")
    result = runner.invoke(
        app,
        [
            "config",
            "show",
            "--format",
            "json",
            "--bootstrap-servers",
            "flag:9092",
            "--set",
            "kafka.group_id=cli-group",
        ],
    )
    data = json.loads(result.output)
    assert data["kafka"]["bootstrap_servers"] == "flag:9092"
    assert data["topics"]["state"] == "cli-group-state"


def test_config_show_reports_bad_flags() -> None:
    result = runner.invoke(app, ["config", "show", "--set", "topics.partitions=-1"])
    assert result.exit_code == 2
    assert "topics.partitions: -1" in result.output


def test_configuration_doc_is_current() -> None:
    on_disk = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert on_disk == render_configuration_doc(), "run `make docs` to regenerate"


def test_configuration_doc_lists_every_setting() -> None:
    text = render_configuration_doc()
    for section_name, field in Settings.model_fields.items():
        if section_name in {"models", "env", "sinks", "sources"}:
            continue
        section = field.annotation
        for name in section.model_fields:  # type: ignore[union-attr]
            variable = f"STREAM_MONITOR_{section_name.upper()}__{name.upper()}"
            assert variable in text or section_name == "monitoring", variable
    assert "`STREAM_MONITOR_KAFKA__BOOTSTRAP_SERVERS`" in text
    assert "`models.<model_id>.drift.critical`" in text
    assert "(secret)" in text
    assert "`sinks[type=webhook].url`" in text
    for name in SourceSpec.model_fields:
        assert f"`sources[].{name}`" in text


def test_config_docs_command_writes_file(tmp_path: Path) -> None:
    out = tmp_path / "configuration.md"
    assert runner.invoke(app, ["config", "docs", "--out", str(out)]).exit_code == 0
    assert out.read_text(encoding="utf-8") == render_configuration_doc()
    assert runner.invoke(app, ["config", "docs"]).output == render_configuration_doc()
