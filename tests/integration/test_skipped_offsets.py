"""Input offsets that hold no record any more, against the real broker.

Labels deleted (by retention, here by DeleteRecords) after the worker's checkpoint and before it
read them: on restart the consumer resets to the new log start, no label record comes, and the
predictions must not wait for the deleted labels for ever. They are processed, the skip is
counted and logged.
"""

from __future__ import annotations

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from stream_monitor.runtime.topics import ensure_topics
from stream_monitor.runtime.worker import Worker

from .runtime_helpers import isolated_settings, produce, run_worker_until

T0 = 1_795_800_000_000


def prediction(i: int) -> tuple[bytes, bytes]:
    event = {
        "event_id": f"e{i}",
        "model_id": "m",
        "timestamp": T0 + i * 10,
        "features": {"x": float(i % 17)},
        "prediction": i % 2,
        "score": (i % 10) / 10,
    }
    return b"m", orjson.dumps(event)


def label(i: int) -> tuple[bytes, bytes]:
    event = {"event_id": f"e{i}", "model_id": "m", "timestamp": T0 + i * 10 + 5, "label": i % 2}
    return b"m", orjson.dumps(event)


async def test_labels_deleted_before_they_were_read_hold_nothing_back(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = isolated_settings(kafka_bootstrap, topics={"partitions": 1})
    await ensure_topics(settings)
    topics = settings.topics
    await produce(kafka_bootstrap, topics.predictions, [prediction(i) for i in range(400)])
    await produce(kafka_bootstrap, topics.labels, [label(i) for i in range(100)])
    first = Worker(settings)
    await run_worker_until(first, lambda: first.stats.processed >= 500)  # checkpointed on stop

    # 50 labels more, deleted before any worker reads them; then 400 predictions
    await produce(kafka_bootstrap, topics.labels, [label(i) for i in range(100, 150)])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(topics.labels, 0): RecordsToDelete(150)})
    finally:
        await admin.close()
    await produce(kafka_bootstrap, topics.predictions, [prediction(i) for i in range(400, 800)])

    second = Worker(settings)
    # Before: the 400 predictions waited for labels 100-149 for ever (the test timed out).
    await run_worker_until(second, lambda: second.stats.processed >= 400, timeout=60)
    assert second.stats.processed == 400
    assert second.stats.skipped == 50
    assert "offsets skipped" in capsys.readouterr().out
