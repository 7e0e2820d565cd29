"""The copy-paste examples of docs/integrations.md, run as a user would (on the real broker)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
from typer.testing import CliRunner

from stream_monitor.cli import app
from stream_monitor.runtime.topics import ensure_topics

from .runtime_helpers import isolated_settings, read_all

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def example(name: str) -> str:
    match = re.search(rf"<!-- example: {name} -->\n```\w+\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"no example {name!r} in {DOC}"
    return match.group(1)


async def test_the_emitter_example_runs_and_its_events_arrive(kafka_bootstrap: str) -> None:
    settings = isolated_settings(kafka_bootstrap)
    await ensure_topics(settings)
    code = (
        example("emitter")
        .replace("localhost:9092", kafka_bootstrap)
        .replace('topic="predictions"', f'topic="{settings.topics.predictions}"')
        .replace('labels_topic="labels"', f'labels_topic="{settings.topics.labels}"')
    )
    exec(compile(code, str(DOC), "exec"), {})  # noqa: S102 - the documented example itself
    predictions = await read_all(kafka_bootstrap, settings.topics.predictions)
    assert sorted(orjson.loads(r.value)["prediction"] for r in predictions) == [0, 1]
    [label] = await read_all(kafka_bootstrap, settings.topics.labels)
    assert orjson.loads(label.value)["label"] == 0


def test_the_schema_example_prints_the_prediction_schema() -> None:
    command = example("schema").strip().removeprefix("$ ").split(">")[0].split()
    assert command[:2] == ["stream-monitor", "schema"]
    result = CliRunner().invoke(app, command[1:])
    assert result.exit_code == 0, result.output
    schema = orjson.loads(result.output)
    assert {"event_id", "model_id", "features", "prediction"} <= set(schema["required"])
