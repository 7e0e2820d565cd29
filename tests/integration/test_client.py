"""stream_monitor.integrations.client against the real broker: what is emitted arrives, valid,
keyed by model; with the broker stopped, 100,000 calls neither raise nor wait past the bound,
and every event is counted."""

from __future__ import annotations

import asyncio
import time

import orjson

from stream_monitor.devtools.broker import start_kafka, stop
from stream_monitor.devtools.broker.process import _terminate, free_port
from stream_monitor.events import EventCodec
from stream_monitor.integrations.client import Emitter
from stream_monitor.runtime.topics import ensure_topics

from .runtime_helpers import isolated_settings, read_all

CODEC = EventCodec()


async def test_emitted_predictions_and_labels_arrive_valid_and_keyed(kafka_bootstrap: str) -> None:
    settings = isolated_settings(kafka_bootstrap)
    await ensure_topics(settings)
    topics = settings.topics
    with Emitter(kafka_bootstrap, topics.predictions, labels_topic=topics.labels) as emitter:
        ids = [
            emitter.emit_prediction(
                f"model-{i % 3}",
                {"amount": float(i), "country": "FR"},
                prediction=i % 2,
                score=0.25,
                model_version="v1",
            )
            for i in range(500)
        ]
        emitter.emit_label(ids[0], "model-0", label=1)
    counters = emitter.counters
    assert (counters.sent, counters.dropped, counters.failed, counters.pending) == (501, 0, 0, 0)
    records = await read_all(kafka_bootstrap, topics.predictions)
    events = [CODEC.decode_prediction(r.value) for r in records]  # valid as the worker reads it
    assert sorted(e.event_id for e in events) == sorted(ids)
    assert all(r.key == e.model_id.encode() for r, e in zip(records, events, strict=True))
    by_id = {e.event_id: e for e in events}
    assert by_id[ids[7]].features == {"amount": 7.0, "country": "FR"}
    [label] = await read_all(kafka_bootstrap, topics.labels)
    assert orjson.loads(label.value)["event_id"] == ids[0]


async def test_a_stopped_broker_never_reaches_the_caller_and_every_event_is_counted() -> None:
    info = start_kafka(free_port())
    try:
        bootstrap = f"127.0.0.1:{info.port}"
        settings = isolated_settings(bootstrap)
        await ensure_topics(settings)
        emitter = Emitter(bootstrap, settings.topics.predictions, buffer=20_000, close_timeout=1.0)
        emitter.emit_prediction("m", {"x": 1.0}, prediction=0)
        await asyncio.to_thread(emitter._producer.flush, 30)  # connected and delivering
        assert emitter.counters.sent == 1
        await asyncio.to_thread(_terminate, info, 30.0)  # the broker is gone
        slowest = 0.0
        for i in range(100_000):
            started = time.perf_counter()
            emitter.emit_prediction("m", {"x": float(i)}, prediction=i % 2)  # never raises
            slowest = max(slowest, time.perf_counter() - started)
        during = emitter.counters
        assert during.emitted == 100_001
        assert during.dropped == 100_000 - 20_000  # the buffer holds 20,000; the rest dropped
        assert during.pending + during.sent == 20_001
        started = time.perf_counter()
        closed = emitter.close()
        assert time.perf_counter() - started < 1.0 + 1.0  # close_timeout, and a little
        assert closed.sent == 1
        assert closed.dropped + closed.failed == 100_000  # every event accounted for
        assert closed.pending == 0
        # Drop mode never waits for the broker (whose timeouts are seconds): a GC pause at most.
        assert slowest < 0.25, f"the slowest call took {slowest * 1000:.1f} ms"
    finally:
        stop(info)
