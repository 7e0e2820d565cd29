"""`stream-monitor profile` and `backtest`: the monitors over files, as a user runs them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stream_monitor.cli import app
from stream_monitor.config import load_settings
from stream_monitor.config.models import ModelSpec
from stream_monitor.events import encode_event
from stream_monitor.monitor import ReferenceProfile
from stream_monitor.monitor.reference import ReferenceError
from stream_monitor.offline.profiling import (
    DataFileError,
    load_references,
    profile_file,
    read_lines,
)

from .monitor.streams import stream

runner = CliRunner()


def write_events(path: Path, count: int, shift_at: int | None = None, labels: bool = True) -> Path:
    lines = []
    for event in stream(
        count, model_id="fraud", shift=lambda i: 1.0 if shift_at and i >= shift_at else 0.0
    ):
        lines.append(encode_event(event))
        if labels and int(event.event_id[1:]) % 10 == 0:
            lines.append(
                json.dumps(
                    {
                        "event_id": event.event_id,
                        "model_id": "fraud",
                        "timestamp": event.timestamp + 5,
                        "label": 1,
                    }
                ).encode()
            )
    data = b"\n".join(lines) + b"\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def test_profile_then_backtest_with_the_profile(tmp_path: Path) -> None:
    data = write_events(tmp_path / "history.jsonl.gz", 3_000)
    ref = tmp_path / "ref.json"
    result = runner.invoke(app, ["profile", str(data), "--model", "fraud", "-o", str(ref)])
    assert result.exit_code == 0, result.output
    profile = ReferenceProfile.from_json(ref.read_bytes())
    assert profile.sample_size == 3_000
    assert set(profile.features) == {"x0", "x1", "x2", "c0"}
    assert profile.reference_id in result.output
    # Every tenth event has a label line (1): accuracy of the predictions against them.
    assert profile.performance["accuracy"] is not None
    assert 0.0 < profile.performance["accuracy"] < 1.0

    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"models:\n  fraud:\n    reference: {ref}\n    window: {{kind: count, events: 1000}}\n",
        encoding="utf-8",
    )
    live = write_events(tmp_path / "live.jsonl", 6_000, shift_at=3_000)
    with live.open("ab") as handle:
        handle.write(b"not json\n")
    alerts_file = tmp_path / "alerts.jsonl"
    summaries_file = tmp_path / "summaries.jsonl"
    result = runner.invoke(
        app,
        [
            "backtest",
            str(live),
            "--config",
            str(config),
            "--alerts",
            str(alerts_file),
            "--summaries",
            str(summaries_file),
        ],
    )
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in alerts_file.read_text().splitlines()]
    assert any(
        a["rule"] == "drift.psi" and a["feature"] == "x0" and a["status"] == "firing"
        for a in alerts
    )
    summaries = [json.loads(line) for line in summaries_file.read_text().splitlines()]
    assert len(summaries) == 6
    assert summaries[0]["reference_id"] == profile.reference_id  # no warm-up needed
    assert "6000 predictions, 600 labels, 1 invalid lines of 6601" in result.output
    assert "invalid line 6601: <event>: is not valid JSON" in result.output
    assert "fraud" in result.output


def test_backtest_writes_alerts_to_stdout_and_is_repeatable(tmp_path: Path) -> None:
    live = write_events(tmp_path / "live.jsonl", 4_000, shift_at=2_000, labels=False)
    config = tmp_path / "c.yaml"
    config.write_text(
        "monitoring:\n  default:\n    window: {kind: count, events: 500}\n    warmup_events: 500\n",
        encoding="utf-8",
    )
    first = runner.invoke(app, ["backtest", str(live), "-c", str(config)])
    second = runner.invoke(app, ["backtest", str(live), "-c", str(config)])
    assert first.exit_code == 0
    firing = [line for line in first.stdout.splitlines() if '"status":"firing"' in line]
    assert firing
    assert first.stdout == second.stdout


def test_profile_from_csv(tmp_path: Path) -> None:
    csv = tmp_path / "features.csv"
    rows = ["amount,country,score"] + [
        f"{i * 1.5},{'DE' if i % 3 else 'FR'},{i / 100}" for i in range(100)
    ]
    rows.append(",DE,")  # missing values
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    profile, problems = profile_file(csv, "m", ModelSpec())
    assert problems == []
    assert profile.features["amount"].kind == "numeric"
    assert profile.features["country"].kind == "categorical"
    assert profile.features["amount"].missing_rate == pytest.approx(1 / 101)
    assert profile.prediction_signal == "score"


def test_profile_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="cannot be read"):
        list(read_lines(tmp_path / "absent.jsonl"))
    bad_gz = tmp_path / "bad.jsonl.gz"
    bad_gz.write_bytes(b"not gzip at all")
    with pytest.raises(DataFileError):
        list(read_lines(bad_gz))
    other = write_events(tmp_path / "other.jsonl", 10, labels=False)
    with pytest.raises(DataFileError, match="no events of model 'nobody'"):
        profile_file(other, "nobody", ModelSpec())
    result = runner.invoke(
        app, ["profile", str(other), "--model", "nobody", "-o", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 1
    assert "no events of model 'nobody'" in result.output
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_text("", encoding="utf-8")
    with pytest.raises(DataFileError):
        profile_file(empty_csv, "m", ModelSpec())


def test_reference_of_another_model_is_refused(tmp_path: Path) -> None:
    data = write_events(tmp_path / "h.jsonl", 200, labels=False)
    profile, _ = profile_file(data, "fraud", ModelSpec())
    ref = tmp_path / "ref.json"
    ref.write_bytes(profile.to_json())
    config = tmp_path / "c.yaml"
    config.write_text(f"models:\n  churn:\n    reference: {ref}\n", encoding="utf-8")
    with pytest.raises(ReferenceError, match="profiles model 'fraud', not 'churn'"):
        load_references(load_settings(config))
    result = runner.invoke(app, ["backtest", str(data), "-c", str(config)])
    assert result.exit_code == 1
    assert "stream-monitor profile DATA --model churn" in result.output


def test_backtest_numbers_lines_across_chunks_blank_lines_and_crlf(tmp_path: Path) -> None:
    # Chunks of 7 lines: the invalid lines fall in later chunks, after blank lines and CRLF
    # endings, and the report still names their line numbers in the file.
    lines = [encode_event(event) for event in stream(40, model_id="fraud")]
    lines[3] += b"\r"
    lines.insert(5, b"")
    lines.insert(9, b"   \r")
    lines.insert(17, b'{"event_id": 1}')
    lines.insert(30, b"[]\r")
    live = tmp_path / "live.jsonl"
    live.write_bytes(b"\n".join(lines))  # no final newline
    config = tmp_path / "c.yaml"
    config.write_text("processing:\n  batch_max_records: 7\n", encoding="utf-8")
    result = runner.invoke(
        app, ["backtest", str(live), "-c", str(config), "--alerts", str(tmp_path / "a.jsonl")]
    )
    assert result.exit_code == 0, result.output
    assert "40 predictions, 0 labels, 2 invalid lines of 42" in result.output
    assert "invalid line 18: " in result.output
    assert "invalid line 31: <event>: list must be a JSON object" in result.output
    numbered = list(read_lines(live))
    assert [number for number, _ in numbered][:6] == [1, 2, 3, 4, 5, 7]
    assert numbered[3][1].endswith(b"}")  # stripped of the \r
    assert len(numbered) == 42


def test_profile_with_segments_gives_each_its_reference(tmp_path: Path) -> None:
    data = write_events(tmp_path / "history.jsonl", 3_000, labels=False)
    spec = ModelSpec.model_validate(
        {"segments": {"by": ["c0", "model_version"], "max_values": 2, "warmup_events": 400}}
    )
    profile, problems = profile_file(data, "fraud", spec)
    assert problems == []
    # c0 takes a, b, c, d (4:3:2:1): the first two seen get their own, the rest pool; the
    # events carry no version, so model_version gives nothing
    counts: dict[str, int] = {}
    for event in stream(3_000, model_id="fraud"):
        value = event.features["c0"]
        label = f"c0={value}" if f"c0={value}" in counts or len(counts) < 2 else "c0=__other__"
        counts[label] = counts.get(label, 0) + 1
    assert len(counts) == 3
    sizes = {label: part.sample_size for label, part in profile.segments.items()}
    assert sizes == {label: n for label, n in counts.items() if n >= 400}
    assert sizes
    # the file keeps them; a monitor of the model starts each of them with its reference
    again = ReferenceProfile.from_json(profile.to_json())
    assert again.segments.keys() == profile.segments.keys()
    c0 = next(iter(profile.segments.values())).features["x0"]
    assert again.segments[next(iter(profile.segments))].features["x0"] == c0
