"""The copy-paste examples of docs/integrations.md, run as a user would (on the real broker)."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from typer.testing import CliRunner

from stream_monitor.cli import app
from stream_monitor.runtime.topics import ensure_topics

from .conftest import TopicFactory
from .runtime_helpers import isolated_settings, read_all, run_with_config

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


async def test_the_seldon_example_is_read_by_run_into_events_the_worker_takes(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    inputs = await new_topic("seldon.default.model.income.inputs")
    outputs = await new_topic("seldon.default.model.income.outputs")
    settings = isolated_settings(kafka_bootstrap)
    await ensure_topics(settings)
    config = yaml.safe_load(
        example("seldon-config")
        .replace("seldon.default.model.income.inputs", inputs)
        .replace("seldon.default.model.income.outputs", outputs)
    )
    config.update(
        kafka={"bootstrap_servers": kafka_bootstrap, "group_id": settings.kafka.group_id},
        topics={
            "predictions": settings.topics.predictions,
            "labels": settings.topics.labels,
            "alerts": settings.topics.alerts,
            "partitions": 2,
        },
        http={"port": 0},
    )
    process = await run_with_config(config, tmp_path / "monitor.yaml")
    try:
        code = (
            example("seldon-producer")
            .replace("localhost:9092", kafka_bootstrap)
            .replace("seldon.default.model.income.inputs", inputs)
            .replace("seldon.default.model.income.outputs", outputs)
        )
        scope: dict[str, Any] = {}
        exec(compile(code, str(DOC), "exec"), scope)  # noqa: S102 - the documented example itself
        await scope["model_server"]()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap, group_id=settings.kafka.group_id
        )
        await consumer.start()
        try:
            parts = [TopicPartition(settings.topics.predictions, p) for p in range(2)]
            taken = 0
            for _ in range(150):  # the worker commits what it processed
                taken = sum([await consumer.committed(tp) or 0 for tp in parts])
                if taken == 2:
                    break
                await asyncio.sleep(0.2)
        finally:
            await consumer.stop()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                output, _ = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
    out = output.decode()
    assert process.returncode == 0, out
    assert taken == 2, out
    stopped = next(line for line in out.splitlines() if "source stopped" in line)
    assert "matched=1" in stopped
    assert "produced=2" in stopped
    events = [
        orjson.loads(r.value) for r in await read_all(kafka_bootstrap, settings.topics.predictions)
    ]
    assert sorted((e["event_id"], e["prediction"], e["score"]) for e in events) == [
        ("req-1-0", 1, 0.8),
        ("req-1-1", 0, 0.1),
    ]
    assert events[0]["features"].keys() == {"amount", "age"}
