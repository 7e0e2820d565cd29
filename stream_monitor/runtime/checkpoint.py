"""Checkpoints: a partition's monitor state with the input offsets it reflects.

Value layout: one JSON line ``{"offsets": {...}, "format": 1}``, a newline, then the snapshot
bytes. The key is ``<partition>``; the state topic is compacted, so the newest checkpoint of each
partition is what survives.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream_monitor.config.settings import Settings
from stream_monitor.kafka.connection import client_kwargs

__all__ = ["STATE_MESSAGE_BYTES", "Checkpoint", "read_checkpoint"]

_MAX_IDLE_POLLS = 10  # a partition that yields nothing for 10 s is as read as it gets
# The largest checkpoint the state topic takes (its max.message.bytes, and what producers and
# the reader allow): a partition's snapshot holds every warm-up sample of its models and
# segments, well over Kafka's default 1 MB when a partition holds many.
STATE_MESSAGE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Checkpoint:
    """Snapshot of one partition's monitors and the next offsets to read per input topic."""

    partition: int
    offsets: dict[str, int]
    snapshot: bytes

    def encode(self) -> bytes:
        """The state-topic value."""
        return orjson.dumps({"format": 1, "offsets": self.offsets}) + b"\n" + self.snapshot

    @classmethod
    def decode(cls, partition: int, value: bytes) -> Checkpoint:
        """Inverse of :meth:`encode`."""
        header, _, snapshot = value.partition(b"\n")
        data = orjson.loads(header)
        return cls(partition, {str(k): int(v) for k, v in data["offsets"].items()}, snapshot)


async def read_checkpoint(settings: Settings, partition: int) -> Checkpoint | None:
    """The newest checkpoint of ``partition`` on the state topic, or None."""
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=STATE_MESSAGE_BYTES,
        fetch_max_bytes=STATE_MESSAGE_BYTES,
        **client_kwargs(settings.kafka),
    )
    await consumer.start()
    try:
        tp = TopicPartition(settings.topics.state, partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        # An explicit seek: seek_to_beginning() on a fresh assignment was observed to land at
        # the end instead.
        consumer.seek(tp, (await consumer.beginning_offsets([tp]))[tp])
        latest: bytes | None = None
        key = str(partition).encode()
        idle = 0
        while await consumer.position(tp) < end and idle < _MAX_IDLE_POLLS:
            batches = await consumer.getmany(tp, timeout_ms=1000)
            records = batches.get(tp, [])
            idle = 0 if records else idle + 1
            for record in records:
                if record.key == key:
                    latest = record.value  # a tombstone (None) clears it
        return Checkpoint.decode(partition, latest) if latest else None
    finally:
        await consumer.stop()
