"""Events encoded by the codec survive a real broker and decode to equal events."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream_monitor.config.settings import KafkaSettings
from stream_monitor.events import EventCodec, LabelEvent, PredictionEvent, encode_event
from stream_monitor.kafka import client_kwargs

from .conftest import TopicFactory

T0 = 1_795_800_000_000


def make_predictions(count: int) -> list[PredictionEvent]:
    return [
        PredictionEvent(
            event_id=f"e-{i}",
            model_id=f"model-{i % 3}",
            timestamp=T0 + i,
            features={"amount": i * 1.5, "country": "DE" if i % 2 else "FR", "missing": None},
            prediction=i % 2,
            score=(i % 10) / 10,
            latency_ms=float(i % 7),
        )
        for i in range(count)
    ]


async def consume_all(bootstrap: str, topic: str, group: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_kwargs(KafkaSettings(bootstrap_servers=bootstrap)),
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(values) < expected:
                batches = await consumer.getmany(timeout_ms=500)
                values.extend(r.value for records in batches.values() for r in records)
    finally:
        await consumer.stop()
    return values


async def test_predictions_and_labels_round_trip(
    kafka_bootstrap: str, new_topic: TopicFactory, group_id: str
) -> None:
    predictions_topic = await new_topic("predictions", partitions=3)
    labels_topic = await new_topic("labels")
    events = make_predictions(60)
    labels = [
        LabelEvent(event_id=e.event_id, model_id=e.model_id, timestamp=T0 + 10_000, label=1)
        for e in events[:10]
    ]
    producer = AIOKafkaProducer(**client_kwargs(KafkaSettings(bootstrap_servers=kafka_bootstrap)))
    await producer.start()
    try:
        for event in events:
            await producer.send(predictions_topic, encode_event(event), key=event.model_id.encode())
        for label in labels:
            await producer.send(labels_topic, encode_event(label), key=label.model_id.encode())
        await producer.flush()
    finally:
        await producer.stop()

    codec = EventCodec()
    received = [
        codec.decode_prediction(v)
        for v in await consume_all(kafka_bootstrap, predictions_topic, group_id, len(events))
    ]
    # Keyed by model id, so per-model order is kept across partitions.
    assert sorted(received, key=lambda e: e.timestamp) == events
    for model in ("model-0", "model-1", "model-2"):
        mine = [e.event_id for e in received if e.model_id == model]
        assert mine == [e.event_id for e in events if e.model_id == model]
    got_labels = await consume_all(kafka_bootstrap, labels_topic, group_id + "-l", len(labels))
    assert [codec.decode_label(v) for v in got_labels] == labels
