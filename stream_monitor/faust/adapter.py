"""The same monitors as faust-streaming agents, for teams that already run Faust.

:func:`attach` adds two agents to a Faust app, on the predictions and labels topics. Faust
co-partitions topics with the same number of partitions, so partition ``p`` of both topics is in
one worker, as in the native runtime, and feeds one :class:`MonitorSet`. Alerts go through the
same alert bus and sinks; summaries and dead letters go to the same topics.

State lives in a Faust table (``monitor-state``; changelog ``<app id>-monitor-state-changelog``):
after each batch of a partition, the partition's snapshot and the input offsets it reflects are
written under the partition's key, to the changelog partition of that input partition. After a
restart or a rebalance, the table is recovered by Faust, the monitors are restored from it, and
events below the stored offsets (already in the snapshot) are skipped, so nothing is counted
twice. Outputs of a batch are flushed before Faust may commit its offsets, so nothing is lost
(at-least-once, with the same alert ids on replay).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream_monitor.config.settings import KafkaSettings, Settings
from stream_monitor.events.alerts import AlertEvent
from stream_monitor.events.codec import EventCodec
from stream_monitor.kafka.connection import client_kwargs, ssl_context
from stream_monitor.logs import get_logger
from stream_monitor.monitor.model_monitor import Output
from stream_monitor.monitor.reference import ReferenceProfile
from stream_monitor.monitor.registry import MonitorSet
from stream_monitor.monitor.snapshot import SnapshotError
from stream_monitor.runtime.checkpoint import STATE_MESSAGE_BYTES, Checkpoint
from stream_monitor.runtime.outputs import dead_letter_headers, process_batch, summary_message
from stream_monitor.runtime.topics import ensure_topics
from stream_monitor.sinks.bus import AlertBus
from stream_monitor.sinks.factory import build_sinks

__all__ = ["FaustMonitor", "attach", "create_app"]

log = get_logger("stream_monitor.faust")
READ_TIMEOUT = 30.0  # seconds to read records the stream skipped


@dataclass
class _Partition:
    monitors: MonitorSet
    offsets: dict[str, int] = field(default_factory=dict)


class FaustMonitor:
    """Monitors, bus and outputs of one Faust worker."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        references: dict[str, ReferenceProfile] | None = None,
        batch: int = 500,
        within: float = 0.5,
    ) -> None:
        self.app = app
        self.settings = settings
        self.references = references or {}
        self.batch = batch
        self.within = within
        self.codec = EventCodec(settings.limits)
        key = settings.state.signing_key
        self.key = key.get_secret_value().encode() if key else None
        topics = settings.topics
        self.predictions = app.topic(
            topics.predictions,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.labels = app.topic(
            topics.labels,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.table = app.Table(
            "monitor-state",
            default=None,
            partitions=topics.partitions,
            # JSON strings (the checkpoint base64-encoded) recover the same under any codec
            schema=faust.Schema(
                key_type=str, value_type=str, key_serializer="json", value_serializer="json"
            ),
            extra_topic_configs={"max.message.bytes": str(_TABLE_MESSAGE_BYTES)},
        )
        self.partitions: dict[int, _Partition] = {}
        self.producer: AIOKafkaProducer | None = None
        self.bus: AlertBus | None = None
        self._started = asyncio.Lock()
        app.agent(self.predictions, name="stream_monitor.predictions")(self._agent)
        app.agent(self.labels, name="stream_monitor.labels")(self._agent)
        app.on_partitions_revoked.connect(self._revoked)  # type: ignore[arg-type]

    async def _revoked(self, sender: Any, revoked: set[Any], **_: Any) -> None:
        """Forget partitions taken away: they are restored from the table when they return."""
        for tp in revoked:
            self.partitions.pop(tp.partition, None)

    async def _outputs(self) -> tuple[AIOKafkaProducer, AlertBus]:
        async with self._started:
            if self.producer is None or self.bus is None:
                settings = self.settings
                await ensure_topics(settings)  # output topics, like the native worker
                self.producer = AIOKafkaProducer(
                    acks="all", linger_ms=5, **client_kwargs(settings.kafka)
                )
                await self.producer.start()
                self.bus = AlertBus(
                    build_sinks(settings.sinks, self.producer, settings.topics.alerts)
                )
                await self.bus.start()
        return self.producer, self.bus

    def _partition(self, number: int) -> _Partition:
        partition = self.partitions.get(number)
        if partition is not None:
            return partition
        partition = _Partition(MonitorSet.from_settings(self.settings, self.references))
        stored = self.table.data.get(_table_key(number))
        if stored:
            checkpoint = Checkpoint.decode(number, base64.b64decode(stored))
            try:
                partition.monitors.restore(checkpoint.snapshot, self.key)
            except SnapshotError as exc:
                log.warning(
                    "stored state not usable, starting fresh", partition=number, error=str(exc)
                )
            else:
                partition.offsets = dict(checkpoint.offsets)
        self.partitions[number] = partition
        return partition

    async def _agent(self, stream: Any) -> AsyncIterable[None]:
        async for events in stream.take_events(self.batch, within=self.within):
            by_partition: dict[int, list[Any]] = {}
            for event in events:
                by_partition.setdefault(event.message.partition, []).append(event)
            for number, chosen in sorted(by_partition.items()):
                await self._process(number, chosen)
            yield None

    async def _fresh(self, number: int, partition: _Partition, messages: list[Any]) -> list[Any]:
        """The records of a batch that the state does not reflect yet, with none missing.

        Records below the state's offsets are skipped: a restart or rebalance delivers them
        again. A record *beyond* the next expected offset means the stream skipped some: after
        a rebalance faust-streaming 0.15 was seen dropping a few records it had fetched, and
        committing past them. Those are read here straight from the partition, so nothing is
        lost.
        """
        fresh: list[Any] = []
        following = dict(partition.offsets)
        for message in messages:
            expected = following.get(message.topic)
            if expected is not None and message.offset > expected:
                missing = await self._read(message.topic, number, expected, message.offset)
                log.warning(
                    "faust skipped records; read them from the partition",
                    topic=message.topic,
                    partition=number,
                    first=expected,
                    count=len(missing),
                )
                fresh += missing
                following[message.topic] = message.offset
            if message.offset >= following.get(message.topic, 0):
                following[message.topic] = message.offset + 1
                fresh.append(message)
        return fresh

    async def _read(self, topic: str, number: int, start: int, end: int) -> list[Any]:
        """Records ``start`` to ``end`` (exclusive) of a partition, read with a plain consumer."""
        consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_kwargs(self.settings.kafka))
        await consumer.start()
        try:
            tp = TopicPartition(topic, number)
            consumer.assign([tp])
            consumer.seek(tp, start)
            records: list[Any] = []
            deadline = asyncio.get_running_loop().time() + READ_TIMEOUT
            while await consumer.position(tp) < end:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(
                        f"could not read {topic}[{number}] offsets {start} to {end} "
                        f"within {READ_TIMEOUT:g} s"
                    )
                fetched = await consumer.getmany(tp, timeout_ms=500)
                records += [r for r in fetched.get(tp, []) if start <= r.offset < end]
            return records
        finally:
            await consumer.stop()

    async def _process(self, number: int, events: Sequence[Any]) -> None:
        producer, bus = await self._outputs()
        partition = self._partition(number)
        labels_topic = self.settings.topics.labels
        fresh = await self._fresh(number, partition, [event.message for event in events])
        outputs: list[Output] = []
        for topic, group in itertools.groupby(fresh, key=lambda message: message.topic):
            chosen = list(group)
            done = process_batch(
                self.codec,
                partition.monitors,
                [message.value for message in chosen],
                labels=topic == labels_topic,
            )
            for index, exc in done.rejected:
                message = chosen[index]
                headers = dead_letter_headers(
                    message.headers, message.topic, message.partition, message.offset, exc
                )
                await producer.send(
                    self.settings.topics.dead_letters,
                    message.value,
                    key=message.key,
                    headers=headers,
                )
            outputs += done.outputs
            partition.offsets[topic] = chosen[-1].offset + 1
        for output in outputs:
            if isinstance(output, AlertEvent):
                await bus.publish(output)
            else:
                value, key, headers = summary_message(output)
                await producer.send(self.settings.topics.metrics, value, key=key, headers=headers)
        await bus.flush()
        await producer.flush()  # outputs are durable before Faust can commit these offsets
        checkpoint = Checkpoint(
            number, dict(partition.offsets), partition.monitors.snapshot(self.key)
        )
        state_key = _table_key(number)
        state = base64.b64encode(checkpoint.encode()).decode()
        self.table.data[state_key] = state
        # Changelog partition ``number``. Wait until the broker has it: Faust may commit these
        # input offsets as soon as the batch is done, and a state that is behind the committed
        # offsets would lose the events in between after a crash.
        await self.table.send_changelog(number, state_key, state)

    async def close(self) -> None:
        """Deliver what is queued and close the outputs."""
        if self.bus is not None:
            await self.bus.close()
        if self.producer is not None:
            await self.producer.stop()


# Checkpoints (base64) as large as the native runtime's state topic takes.
_TABLE_MESSAGE_BYTES = STATE_MESSAGE_BYTES * 4 // 3 + 1024


def _table_key(number: int) -> str:
    return f"partition-{number}"


def attach(
    app: faust.App,
    settings: Settings,
    references: dict[str, ReferenceProfile] | None = None,
) -> FaustMonitor:
    """Add stream-monitor's agents to an existing Faust app."""
    monitor = FaustMonitor(app, settings, references)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _close(sender: Any, **_: Any) -> None:
        await monitor.close()

    return monitor


def create_app(settings: Settings) -> tuple[faust.App, FaustMonitor]:
    """A Faust app that only monitors (what ``faust -A stream_monitor.faust.app worker`` runs)."""
    servers = [
        f"kafka://{server.strip()}" for server in settings.kafka.bootstrap_servers.split(",")
    ]
    app = faust.App(
        settings.kafka.group_id,
        broker=servers,
        store="memory://",
        topic_partitions=settings.topics.partitions,
        web_enabled=False,
        producer_acks=-1,
        producer_max_request_size=_TABLE_MESSAGE_BYTES,
        consumer_max_fetch_size=_TABLE_MESSAGE_BYTES,
        broker_session_timeout=10.0,
        broker_commit_interval=settings.processing.commit_interval,
        broker_heartbeat_interval=3.0,
        broker_credentials=_credentials(settings.kafka),
    )
    return app, attach(app, settings)


def _credentials(kafka: KafkaSettings) -> faust.types.auth.CredentialsT | None:
    """Faust's form of the ``kafka`` section's TLS and SASL settings."""
    context = ssl_context(kafka) if kafka.security_protocol in ("SSL", "SASL_SSL") else None
    if kafka.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            ssl_context=context,
            mechanism=kafka.sasl_mechanism,
        )
    return None if context is None else faust.SSLCredentials(context)
