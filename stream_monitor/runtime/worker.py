"""The streaming worker: consume predictions and labels, run the monitors, publish, checkpoint.

One consumer group. Partitions of the predictions and labels topics are co-assigned (range
assignor, same partition counts, both keyed by model id), so partition ``p`` of both topics and
its monitors live in one worker. Per batch (``getmany``): decode, route to the partition's
``MonitorSet``, hand alerts to the alert bus and window summaries to the metrics topic, send
invalid events to the dead-letter topic; then flush the bus and the producer and commit the
offsets (at-least-once). Every ``processing.checkpoint_interval`` seconds, and when partitions are
revoked or the worker stops, each partition's monitors are written to the compacted state topic
with the offsets they reflect; on assignment they are restored and consumption resumes right
after those offsets, so state is never ahead of offsets.

CPU work runs on the event loop in bounded batches (``processing.batch_max_records``) with a
yield between partitions, so heartbeats (a background task) keep flowing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from stream_monitor import __version__
from stream_monitor.config.settings import Settings
from stream_monitor.errors import EventValidationError, StreamMonitorError
from stream_monitor.events.alerts import AlertEvent
from stream_monitor.events.codec import EventCodec, encode_event
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.logs import batch_context, get_logger
from stream_monitor.monitor.model_monitor import Output
from stream_monitor.monitor.reference import ReferenceProfile
from stream_monitor.monitor.registry import MonitorSet
from stream_monitor.monitor.snapshot import SnapshotError
from stream_monitor.runtime.checkpoint import Checkpoint, read_checkpoint
from stream_monitor.runtime.topics import ensure_topics
from stream_monitor.sinks.base import Sink
from stream_monitor.sinks.bus import AlertBus
from stream_monitor.sinks.factory import build_sinks

__all__ = ["Worker", "WorkerStats"]

log = get_logger("stream_monitor.worker")


@dataclass
class WorkerStats:
    """Counters of a worker's life (also exposed to metrics)."""

    consumed: int = 0
    processed: int = 0
    dead_lettered: int = 0
    alerts: int = 0
    summaries: int = 0
    checkpoints: int = 0
    restored: int = 0


@dataclass
class _Partition:
    monitors: MonitorSet
    offsets: dict[str, int] = field(default_factory=dict)
    checkpointed_at: float = field(default_factory=time.monotonic)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.worker.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.worker.partitions_assigned(assigned)


class Worker:
    """One stream-monitor worker process (run several with the same group id to scale out)."""

    def __init__(
        self,
        settings: Settings,
        references: dict[str, ReferenceProfile] | None = None,
        sinks: list[Sink] | None = None,
    ) -> None:
        self.settings = settings
        self.references = references or {}
        self.extra_sinks = sinks or []
        self.codec = EventCodec(settings.limits)
        self.partitions: dict[int, _Partition] = {}
        self.stats = WorkerStats()
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        key = settings.state.signing_key
        self.key = key.get_secret_value().encode() if key else None
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.bus: AlertBus | None = None

    def stop(self) -> None:
        """Ask the worker to finish its batch, checkpoint, commit and leave the group."""
        self.stopping.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until :meth:`stop`; always checkpoints, commits and closes on the way out."""
        settings = self.settings
        if settings.processing.guarantee == "exactly_once":
            raise StreamMonitorError(
                "processing.guarantee: exactly_once is not available in this version; "
                "use at_least_once (alerts keep their ids on replay, so consumers can deduplicate)"
            )
        await ensure_topics(settings)
        kafka = client_kwargs(settings.kafka)
        self.producer = AIOKafkaProducer(acks="all", linger_ms=5, **kafka)
        self.consumer = AIOKafkaConsumer(
            group_id=settings.kafka.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_poll_interval_ms=300_000,
            **kafka,
        )
        await self.producer.start()
        sinks = build_sinks(settings.sinks, self.producer, settings.topics.alerts)
        self.bus = AlertBus([*sinks, *self.extra_sinks])
        await self.bus.start()
        await self.consumer.start()
        self.consumer.subscribe(
            [settings.topics.predictions, settings.topics.labels], listener=_Listener(self)
        )
        log.info(
            "worker started",
            group_id=settings.kafka.group_id,
            version=__version__,
            guarantee=settings.processing.guarantee,
        )
        try:
            await self._loop()
        finally:
            await self._shutdown()

    async def _loop(self) -> None:
        assert self.consumer is not None  # noqa: S101
        processing = self.settings.processing
        while not self.stopping.is_set():
            try:
                batches = await self.consumer.getmany(
                    timeout_ms=200, max_records=processing.batch_max_records
                )
            except KafkaError as exc:
                log.warning("fetch failed, retrying", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            if not batches:
                continue
            for tp, records in batches.items():
                if tp.partition in self.partitions:
                    await self._process(tp, records)
                elif tp in self.consumer.assignment():
                    # Fetched while its assignment (state restore) is still running: never
                    # drop records; read them again once the partition is ready.
                    self.consumer.seek(tp, records[0].offset)
                await asyncio.sleep(0)  # let heartbeats and sinks run
            await self._commit()
            await self._maybe_checkpoint()

    async def _shutdown(self) -> None:
        try:
            if self.consumer is not None and self.partitions:
                await self._flush_outputs()
                await self._checkpoint(list(self.partitions))
                await self._commit()
        finally:
            if self.consumer is not None:
                await self.consumer.stop()  # leaves the group
            if self.bus is not None:
                await self.bus.close()
            if self.producer is not None:
                await self.producer.stop()
            log.info("worker stopped", **vars(self.stats))

    # -- rebalances -----------------------------------------------------------------------

    async def partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Checkpoint and commit what is being taken away, then forget it."""
        numbers = sorted({tp.partition for tp in revoked} & set(self.partitions))
        if not numbers:
            return
        await self._flush_outputs()
        await self._checkpoint(numbers)
        await self._commit(numbers)
        for number in numbers:
            self.partitions.pop(number, None)
        log.info("partitions revoked", partitions=numbers)

    async def partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Restore each new partition from its checkpoint and seek right after its offsets."""
        assert self.consumer is not None  # noqa: S101
        topics = self.settings.topics
        for number in sorted({tp.partition for tp in assigned} - set(self.partitions)):
            partition = _Partition(self._monitor_set())
            checkpoint = await read_checkpoint(self.settings, number)
            if checkpoint is not None:
                try:
                    partition.monitors.restore(checkpoint.snapshot, self.key)
                except SnapshotError as exc:
                    log.warning(
                        "checkpoint not usable, starting fresh", partition=number, error=str(exc)
                    )
                else:
                    partition.offsets = dict(checkpoint.offsets)
                    self.stats.restored += 1
                    for topic in (topics.predictions, topics.labels):
                        if topic in checkpoint.offsets:
                            self.consumer.seek(
                                TopicPartition(topic, number), checkpoint.offsets[topic]
                            )
            self.partitions[number] = partition
        self.ready.set()
        log.info("partitions assigned", partitions=sorted(self.partitions))

    def _monitor_set(self) -> MonitorSet:
        return MonitorSet.from_settings(self.settings, self.references)

    # -- processing -----------------------------------------------------------------------

    async def _process(self, tp: TopicPartition, records: list[Any]) -> None:
        partition = self.partitions[tp.partition]
        monitors = partition.monitors
        is_labels = tp.topic == self.settings.topics.labels
        outputs: list[Output] = []
        with batch_context(tp.topic, tp.partition, records[0].offset, records[-1].offset):
            for record in records:
                self.stats.consumed += 1
                try:
                    if is_labels:
                        outputs += monitors.update_label(self.codec.decode_label(record.value))
                    else:
                        outputs += monitors.update(self.codec.decode_prediction(record.value))
                except EventValidationError as exc:
                    await self._dead_letter(record, exc)
                else:
                    self.stats.processed += 1
            if is_labels:
                outputs += monitors.revisions()
            partition.offsets[tp.topic] = records[-1].offset + 1
            await self._publish(outputs)

    async def _publish(self, outputs: list[Output]) -> None:
        assert self.producer is not None  # noqa: S101
        assert self.bus is not None  # noqa: S101
        metrics = self.settings.topics.metrics
        for output in outputs:
            if isinstance(output, AlertEvent):
                self.stats.alerts += 1
                await self.bus.publish(output)
            else:
                self.stats.summaries += 1
                await self.producer.send(
                    metrics,
                    encode_event(output),
                    key=output.model_id.encode(),
                    headers=[("revision", str(output.revision).encode())],
                )

    async def _dead_letter(self, record: Any, error: EventValidationError) -> None:
        assert self.producer is not None  # noqa: S101
        self.stats.dead_lettered += 1
        headers = [
            *(record.headers or ()),
            ("error.reason", error.reason.encode()[:1000]),
            ("error.field", error.field.encode()[:200]),
            ("error.value", error.value.encode()[:200]),
            ("error.class", type(error).__name__.encode()),
            ("source.topic", record.topic.encode()),
            ("source.partition", str(record.partition).encode()),
            ("source.offset", str(record.offset).encode()),
            ("service.version", __version__.encode()),
        ]
        await self.producer.send(
            self.settings.topics.dead_letters, record.value, key=record.key, headers=headers
        )
        log.warning(
            "event dead-lettered", field=error.field, reason=error.reason, offset=record.offset
        )

    async def _flush_outputs(self) -> None:
        assert self.producer is not None  # noqa: S101
        assert self.bus is not None  # noqa: S101
        await self.bus.flush()
        await self.producer.flush()

    async def _commit(self, numbers: list[int] | None = None) -> None:
        """Flush every output, then commit the offsets of partitions still owned."""
        assert self.consumer is not None  # noqa: S101
        await self._flush_outputs()
        owned = self.consumer.assignment()
        offsets = {
            TopicPartition(topic, number): OffsetAndMetadata(offset, "")
            for number, partition in self.partitions.items()
            if numbers is None or number in numbers
            for topic, offset in partition.offsets.items()
            if TopicPartition(topic, number) in owned
        }
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError as exc:  # a rebalance is under way: the events are replayed
            log.warning("commit failed during a rebalance", error=str(exc))

    async def _maybe_checkpoint(self) -> None:
        interval = self.settings.processing.checkpoint_interval
        now = time.monotonic()
        due = [n for n, p in self.partitions.items() if now - p.checkpointed_at >= interval]
        if due:
            await self._checkpoint(due)

    async def _checkpoint(self, numbers: list[int]) -> None:
        assert self.producer is not None  # noqa: S101
        for number in numbers:
            partition = self.partitions.get(number)
            if partition is None or not partition.offsets:
                continue
            checkpoint = Checkpoint(
                number, dict(partition.offsets), partition.monitors.snapshot(self.key)
            )
            await self.producer.send(
                self.settings.topics.state,
                checkpoint.encode(),
                key=str(number).encode(),
                partition=number,
            )
            partition.checkpointed_at = time.monotonic()
            self.stats.checkpoints += 1
        await self.producer.flush()
