"""`record` a live topic to a file and `replay` a file into a topic, at a held rate or speed.

Replay paces by an absolute schedule (record ``i`` is due at ``start + i / rate``, or at
``start + (t_i - t_0) / speed`` for recorded timing), so short stalls are caught up and the rate
over any 10 s stays on target while the machine keeps up. Produce latency is measured per record,
from ``send`` to the broker's acknowledgement.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from stream_monitor.config.settings import Settings
from stream_monitor.errors import StreamMonitorError
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.monitor.quantiles import nearest_rank
from stream_monitor.replay.files import Record, encode_record, open_text

__all__ = ["Pacer", "ReplayStats", "record_topic", "replay_records"]


async def record_topic(
    settings: Settings,
    topic: str,
    out: Path,
    *,
    limit: int | None = None,
    from_beginning: bool = False,
    stop: asyncio.Event | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the records of ``topic`` to ``out`` until ``limit`` or ``stop``; returns the count.

    Without ``from_beginning`` it starts at the end of every partition as of now.
    """
    stop = stop or asyncio.Event()
    consumer = AIOKafkaConsumer(
        group_id=None, enable_auto_commit=False, **client_kwargs(settings.kafka)
    )
    await consumer.start()
    written = 0
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        starts = await (
            consumer.beginning_offsets(partitions)
            if from_beginning
            else consumer.end_offsets(partitions)
        )
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        with open_text(out, "w") as handle:
            while not stop.is_set() and (limit is None or written < limit):
                batches = await consumer.getmany(timeout_ms=200, max_records=1_000)
                for tp in sorted(batches, key=lambda tp: tp.partition):
                    for message in batches[tp]:
                        if limit is not None and written >= limit:
                            break
                        line = encode_record(
                            Record(
                                value=message.value,
                                key=message.key,
                                headers=list(message.headers or ()),
                                timestamp=message.timestamp,
                                topic=message.topic,
                                partition=message.partition,
                                offset=message.offset,
                            )
                        )
                        handle.write(line.decode() + "\n")
                        written += 1
                if batches and progress is not None:
                    progress(written)
            handle.flush()
    finally:
        await consumer.stop()
    return written


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    found = None
    for _ in range(50):
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(topic)
        if found:
            break
        await asyncio.sleep(0.1)
    if not found:
        raise StreamMonitorError(f"topic {topic!r} does not exist (or has no partitions)")
    return [TopicPartition(topic, p) for p in sorted(found)]


class Pacer:
    """When each record is due: by a fixed ``rate`` (records/s), by recorded time / ``speed``,
    or as fast as possible (neither)."""

    def __init__(self, rate: float | None = None, speed: float | None = None) -> None:
        if rate is not None and speed is not None:
            raise StreamMonitorError("give --rate or --speed, not both")
        if rate is not None and not (rate > 0 and math.isfinite(rate)):
            raise StreamMonitorError(f"--rate must be a positive number of events/s, got {rate}")
        if speed is not None and not (speed > 0 and math.isfinite(speed)):
            raise StreamMonitorError(f"--speed must be a positive factor, got {speed}")
        self.rate = rate
        self.speed = speed
        self.first_timestamp: int | None = None
        self.offset = 0.0  # recorded seconds already played by previous loops

    def due(self, index: int, timestamp: int | None) -> float:
        """Seconds after the start at which record ``index`` (with ``timestamp``) is due."""
        if self.rate is not None:
            return index / self.rate
        if self.speed is None or timestamp is None:
            return 0.0
        if self.first_timestamp is None:
            self.first_timestamp = timestamp
        return self.offset + max(0.0, (timestamp - self.first_timestamp) / 1000 / self.speed)

    def next_loop(self, last_due: float) -> None:
        """A new pass over the file starts right after the previous one ended."""
        self.offset = last_due
        self.first_timestamp = None


@dataclass
class ReplayStats:
    """What a replay did."""

    sent: int = 0  # acknowledged by the broker
    failed: int = 0
    bad_lines: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Wall time from start to end (or to now)."""
        return (self.finished or time.monotonic()) - self.started

    def summary(self) -> dict[str, Any]:
        """Sent, failed, achieved rate and produce latency percentiles."""
        ordered = sorted(self.latencies_ms)

        def pct(q: float) -> float | None:
            value = nearest_rank(ordered, q)
            return None if value is None else round(value, 3)

        return {
            "sent": self.sent,
            "failed": self.failed,
            "bad_lines": self.bad_lines,
            "seconds": round(self.seconds, 3),
            "rate": round(self.sent / self.seconds, 1) if self.seconds > 0 else None,
            "latency_ms_p50": pct(0.50),
            "latency_ms_p99": pct(0.99),
        }


def _model_key(value: bytes | None) -> bytes | None:
    try:
        model = orjson.loads(value or b"").get("model_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return str(model).encode() if model is not None else None


def _stamped_now(value: bytes | None) -> bytes | None:
    try:
        event = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return value
    if not isinstance(event, dict) or "timestamp" not in event:
        return value
    event["timestamp"] = time.time_ns() // 1_000_000
    return orjson.dumps(event)


def _passes(source: Callable[[], Iterable[Record]], loop: bool) -> Iterator[tuple[int, Record]]:
    """(pass number, record) over the file, once or forever."""
    number = 0
    while True:
        empty = True
        for record in source():
            empty = False
            yield number, record
        number += 1
        if not loop or empty:
            return


async def _started_producer(settings: Settings, idempotent: bool) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        acks="all", linger_ms=2, enable_idempotence=idempotent, **client_kwargs(settings.kafka)
    )
    try:
        await producer.start()
    except KafkaError as exc:
        hint = "; if the broker has no idempotent producers, use --no-idempotent"
        raise StreamMonitorError(
            f"cannot produce to {settings.kafka.bootstrap_servers}: {exc}"
            + (hint if idempotent else "")
        ) from exc
    return producer


class _Deliveries:
    """Acknowledgements of sent records: counts, failures and produce latency."""

    def __init__(self, stats: ReplayStats) -> None:
        self.stats = stats
        self.pending: set[asyncio.Future[Any]] = set()
        self.clock = asyncio.get_running_loop().time

    def track(self, future: asyncio.Future[Any]) -> None:
        sent_at = self.clock()
        self.pending.add(future)
        future.add_done_callback(lambda f: self._done(sent_at, f))

    def _done(self, sent_at: float, future: asyncio.Future[Any]) -> None:
        self.pending.discard(future)
        stats = self.stats
        if future.cancelled() or future.exception() is not None:
            stats.failed += 1
            if len(stats.errors) < 10:
                stats.errors.append(str(future.exception() or "cancelled"))
        else:
            stats.sent += 1
            stats.latencies_ms.append((self.clock() - sent_at) * 1000)


async def replay_records(
    settings: Settings,
    source: Callable[[], Iterable[Record]],
    topic: str,
    *,
    rate: float | None = None,
    speed: float | None = None,
    loop: bool = False,
    limit: int | None = None,
    rekey: bool = False,
    stamp_now: bool = False,
    idempotent: bool = True,
    stats: ReplayStats | None = None,
    progress: Callable[[ReplayStats], None] | None = None,
    stop: asyncio.Event | None = None,
) -> ReplayStats:
    """Produce the records of ``source()`` into ``topic`` (keys and headers kept)."""
    pacer = Pacer(rate, speed)
    stats = stats or ReplayStats()
    stop = stop or asyncio.Event()
    producer = await _started_producer(settings, idempotent)
    deliveries = _Deliveries(stats)
    stats.started = time.monotonic()
    index, last_pass, last_due, last_progress = 0, 0, 0.0, 0.0
    try:
        for number, record in _passes(source, loop):
            if stop.is_set() or (limit is not None and index >= limit):
                break
            if number != last_pass:
                pacer.next_loop(last_due)
                last_pass = number
            last_due = pacer.due(index, record.timestamp)
            wait = stats.started + last_due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            value = _stamped_now(record.value) if stamp_now else record.value
            key = _model_key(record.value) if rekey else record.key
            try:
                future = await producer.send(topic, value, key=key, headers=record.headers or None)
            except KafkaError as exc:
                stats.failed += 1
                stats.errors.append(str(exc))
            else:
                deliveries.track(future)
            index += 1
            if progress is not None and time.monotonic() - last_progress >= 0.2:
                last_progress = time.monotonic()
                progress(stats)
        await producer.flush()
        if deliveries.pending:
            await asyncio.wait(deliveries.pending, timeout=settings.kafka.request_timeout)
    finally:
        await producer.stop()
        stats.finished = time.monotonic()
    if progress is not None:
        progress(stats)
    return stats
