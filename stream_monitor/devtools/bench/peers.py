"""The load and the peers of an end-to-end run: a topic loaded as fast as a producer goes, or
paced at a rate; a plain aiokafka consumer of it (with and without ``orjson.loads``); and the
in-memory core on the same events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from stream_monitor.config.models import ModelSpec
from stream_monitor.config.settings import Settings
from stream_monitor.events.codec import EventCodec
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.monitor.registry import MonitorSet
from stream_monitor.runtime.outputs import process_batch

__all__ = ["core_rate", "model_key", "produce", "produce_paced", "raw_consume"]


def model_key(value: bytes) -> bytes:
    """An encoded event's model id (its key), read without decoding it."""
    start = value.find(b'"model_id":"')
    if start < 0:
        return b""
    start += len(b'"model_id":"')
    return value[start : value.find(b'"', start)]


async def produce(settings: Settings, topic: str, values: Iterable[bytes]) -> tuple[int, float]:
    """Load ``values`` as fast as the producer goes; (events, seconds)."""
    producer = AIOKafkaProducer(
        acks="all", linger_ms=20, max_batch_size=262_144, **client_kwargs(settings.kafka)
    )
    await producer.start()
    started = time.monotonic()
    sent = 0
    try:
        for value in values:
            await producer.send(topic, value, key=model_key(value))
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent, time.monotonic() - started


async def produce_paced(
    settings: Settings, topic: str, make: Callable[[int], bytes], count: int, rate: float
) -> int:
    """Produce ``make(i)`` for i < ``count`` at ``rate`` events/s; returns how many were sent.

    Every tick (about a millisecond) the events due by then are made (``make`` stamps them) and
    appended to one record batch per partition, each sent at once: a producer call per event
    would cost this process most of a core at the rates measured, a core the workers and the
    broker then lack, and latency would measure the load generator. Partitions are chosen by
    the model id, as the default partitioner chose them when the topic was loaded.
    """
    producer = AIOKafkaProducer(acks="all", linger_ms=0, **client_kwargs(settings.kafka))
    await producer.start()
    partitioner = DefaultPartitioner()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        where: dict[bytes, int] = {}
        pending: list[asyncio.Future[Any]] = []
        started = time.monotonic()
        sent = 0
        while sent < count:
            due = min(count, int((time.monotonic() - started) * rate) + 1)
            batches: dict[int, Any] = {}
            while sent < due:
                value = make(sent)
                key = model_key(value)
                partition = where.get(key)
                if partition is None:
                    partition = where[key] = partitioner(key, partitions, partitions)
                batch = batches.get(partition)
                if batch is None:
                    batch = batches[partition] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:  # full
                    pending.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = batches[partition] = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
                sent += 1
            for partition, batch in batches.items():
                pending.append(await producer.send_batch(batch, topic, partition=partition))
            pending = [future for future in pending if not future.done()]
            await asyncio.sleep(0.001)
        for future in pending:
            await future
    finally:
        await producer.stop()
    return sent


async def raw_consume(settings: Settings, topic: str, count: int, *, decode: bool) -> float:
    """Events/s of a plain aiokafka consumer (``getmany``), and ``orjson.loads`` when decoding."""
    consumer = AIOKafkaConsumer(
        topic,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **client_kwargs(settings.kafka),
    )
    await consumer.start()
    seen = 0
    started: float | None = None
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            got = 0
            for records in batches.values():
                got += len(records)
                if decode:
                    for record in records:
                        orjson.loads(record.value)
            if got and started is None:
                started = time.monotonic()
            seen += got
    finally:
        await consumer.stop()
    return seen / max(time.monotonic() - (started or time.monotonic()), 1e-9)


def core_rate(settings: Settings, values: list[bytes], spec: dict[str, Any], warm: int) -> float:
    """Decode + validate + every monitor update under ``spec``, in memory, one core, after a
    warm-up of ``warm`` events (at most a quarter of them)."""
    codec = EventCodec(settings.limits)
    monitors = MonitorSet({}, ModelSpec.model_validate(spec), settings.monitoring.unknown_models)
    size = settings.processing.batch_max_records  # as a worker takes them

    def feed(chosen: list[bytes]) -> None:
        for start in range(0, len(chosen), size):
            process_batch(codec, monitors, chosen[start : start + size], labels=False)

    warm = min(len(values) // 4, warm)
    feed(values[:warm])
    measured = values[warm:] or values
    started = time.perf_counter()
    feed(measured)
    return len(measured) / (time.perf_counter() - started)
