"""Open Inference Protocol v2 sources on the real broker: a model server's protobuf requests and
responses (messages compiled by protoc from the protocol's definition) on two topics become
prediction events; what cannot be joined goes to dead letters; offsets wait for the halves."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream_monitor.integrations.sources import OipBridge
from stream_monitor.kafka.access import AccessError
from stream_monitor.observability.metrics import WorkerMetrics
from stream_monitor.runtime.topics import ensure_topics
from tests.oip_messages import messages

from .conftest import TopicFactory
from .runtime_helpers import isolated_settings, produce, read_all, run_with_config

T0 = 1_795_800_000_000


def request(request_id: str, rows: list[list[float]]) -> bytes:
    m = messages().ModelInferRequest(model_name="income", model_version="v3", id=request_id)
    m.inputs.add(name="amount", datatype="FP32", shape=[len(rows)])
    m.inputs.add(name="age", datatype="INT64", shape=[len(rows)])
    m.raw_input_contents.append(struct.pack(f"<{len(rows)}f", *(r[0] for r in rows)))
    m.raw_input_contents.append(struct.pack(f"<{len(rows)}q", *(int(r[1]) for r in rows)))
    return bytes(m.SerializeToString())


def response(request_id: str, probabilities: list[float]) -> bytes:
    m = messages().ModelInferResponse(model_name="income", model_version="v3", id=request_id)
    proba = m.outputs.add(name="proba", datatype="FP64", shape=[len(probabilities), 2])
    proba.contents.fp64_contents.extend(v for p in probabilities for v in (1 - p, p))
    return bytes(m.SerializeToString())


async def committed(bootstrap: str, group: str, topic: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()


async def test_requests_and_responses_become_prediction_events(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    inputs = await new_topic("seldon.default.model.income.inputs")
    outputs = await new_topic("seldon.default.model.income.outputs")
    source = {"name": "income", "requests": inputs, "responses": outputs, "ttl": 30}
    settings = isolated_settings(kafka_bootstrap, sources=[source])
    await ensure_topics(settings)
    # 50 pairs of 4 rows each, responses a little later; one request never answered, one
    # response without its request, a record that is not a protocol message.
    requests = [
        (f"r{i}".encode(), request(f"r{i}", [[10.0 + i, 30 + j] for j in range(4)]))
        for i in range(50)
    ]
    responses = [
        (f"r{i}".encode(), response(f"r{i}", [0.1 * (j + 1) for j in range(4)])) for i in range(50)
    ]
    await produce(
        kafka_bootstrap,
        inputs,
        [*requests, (b"lost", request("lost", [[1.0, 2.0]])), (b"bad", b"\x0a\xff")],
        timestamps=[T0 + i for i in range(52)],
    )
    await produce(
        kafka_bootstrap,
        outputs,
        [*responses, (b"orphan", response("orphan", [0.5]))],
        timestamps=[T0 + 100 + i for i in range(51)],
    )
    metrics = WorkerMetrics()
    bridge = OipBridge(settings, settings.sources[0], metrics)
    task = asyncio.create_task(bridge.run())
    try:
        events = []
        for _ in range(100):
            await asyncio.sleep(0.2)
            events = await read_all(kafka_bootstrap, settings.topics.predictions, idle=0.5)
            if len(events) >= 200:
                break
        # The unanswered request holds the requests' committed offset back
        group = bridge.group
        assert await committed(kafka_bootstrap, group, inputs) == 50
        assert await committed(kafka_bootstrap, group, outputs) == 50
        # Records 40 s newer expire both waiting halves
        await produce(
            kafka_bootstrap,
            inputs,
            [(b"late", request("late", [[1.0, 2.0]]))],
            timestamps=[T0 + 40_000],
        )
        for _ in range(50):
            await asyncio.sleep(0.2)
            if await committed(kafka_bootstrap, group, inputs) == 52:
                break
        assert await committed(kafka_bootstrap, group, inputs) == 52  # "late" waits
        assert await committed(kafka_bootstrap, group, outputs) == 51
    finally:
        bridge.stop()
        await task
    values = [orjson.loads(r.value) for r in events]
    assert len(values) == 200
    assert {r.key for r in events} == {b"income"}
    first = next(v for v in values if v["event_id"] == "r7-2")
    assert first == {
        "event_id": "r7-2",
        "model_id": "income",
        "timestamp": T0 + 7,
        "features": {"amount": 17.0, "age": 32},
        "prediction": 0,  # class 1 has probability 0.3
        "score": first["score"],
        "model_version": "v3",
    }
    assert abs(first["score"] - 0.3) < 1e-12
    dead = await read_all(kafka_bootstrap, settings.topics.dead_letters, idle=0.5)
    reasons = {r.key: dict(r.headers)["error.reason"].decode() for r in dead}
    assert set(reasons) == {b"bad", b"lost", b"orphan"}
    assert "is not an inference request" in reasons[b"bad"]
    assert "no response within ttl 30 s" in reasons[b"lost"]
    assert "no request within ttl 30 s" in reasons[b"orphan"]
    assert dict(dead[0].headers)["source.topic"] in (inputs.encode(), outputs.encode())
    assert bridge.join.counts["matched"] == 50
    sample = metrics.registry.get_sample_value
    for outcome, count in (("matched", 50), ("produced", 200), ("expired", 2), ("malformed", 1)):
        labels = {"source": "income", "outcome": outcome}
        assert sample("stream_monitor_source_records_total", labels) == count
    assert sample("stream_monitor_source_pending", {"source": "income"}) == 1  # "late"
    assert bridge.dead_lettered == 3


async def test_a_source_topic_that_does_not_exist_stops_run_with_its_setting_named(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    outputs = await new_topic("seldon.default.model.income.outputs")
    source = {"name": "income", "requests": "seldon.nowhere.inputs", "responses": outputs}
    settings = isolated_settings(kafka_bootstrap, sources=[source])
    await ensure_topics(settings)
    with pytest.raises(AccessError, match=r"sources\[income\]\.requests"):
        await OipBridge(settings, settings.sources[0]).run()
    config = {
        "kafka": {
            "bootstrap_servers": kafka_bootstrap,
            "group_id": settings.kafka.group_id,
        },
        "topics": {"predictions": settings.topics.predictions, "partitions": 2},
        "http": {"port": 0},
        "sources": [source],
    }
    run = await run_with_config(config, tmp_path / "monitor.yaml")
    async with asyncio.timeout(60):
        output, _ = await run.communicate()
    assert run.returncode == 2, output.decode()
    assert b"sources[income].requests" in output


async def test_a_second_bridge_joining_the_group_loses_no_pair(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    inputs = await new_topic("seldon.default.model.income.inputs", partitions=2)
    outputs = await new_topic("seldon.default.model.income.outputs", partitions=2)
    source = {"name": "income", "requests": inputs, "responses": outputs, "ttl": 600}
    settings = isolated_settings(kafka_bootstrap, sources=[source])
    await ensure_topics(settings)

    async def pairs(first: int, last: int) -> None:
        ids = [f"q{i}" for i in range(first, last)]
        # Keyed by request id: a request and its response land in partitions of the same
        # number, which the range assignor gives to the same bridge.
        times = [T0 + i for i in range(first, last)]
        await produce(
            kafka_bootstrap,
            outputs,
            [(i.encode(), response(i, [0.5])) for i in ids],
            timestamps=times,
        )
        await produce(
            kafka_bootstrap,
            inputs,
            [(i.encode(), request(i, [[1.0, 2.0]])) for i in ids],
            timestamps=times,
        )

    first, second = (OipBridge(settings, settings.sources[0]) for _ in range(2))
    tasks = [asyncio.create_task(first.run())]
    try:
        await pairs(0, 300)
        await asyncio.sleep(2)
        tasks.append(asyncio.create_task(second.run()))  # a rebalance, mid-stream
        for start in range(300, 900, 100):
            await pairs(start, start + 100)
            await asyncio.sleep(0.3)
        for _ in range(100):
            await asyncio.sleep(0.2)
            if first.join.counts["matched"] + second.join.counts["matched"] >= 900:
                break
    finally:
        first.stop()
        second.stop()
        await asyncio.gather(*tasks)
    events = await read_all(kafka_bootstrap, settings.topics.predictions, idle=1.0)
    seen = {orjson.loads(r.value)["event_id"] for r in events}
    assert seen == {f"q{i}" for i in range(900)}  # at least once each
    assert second.join.counts["matched"] > 0  # the second bridge took partitions
    dead = await read_all(kafka_bootstrap, settings.topics.dead_letters, idle=0.5)
    assert dead == []
