"""Publishing: a partition's outputs (window summaries to the metrics topic, alerts to the
alert bus and, under exactly-once, to the Kafka sinks inside the partition's transaction) and
its dead letters, each delivery kept for the next commit to check."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer

from stream_monitor.errors import EventValidationError
from stream_monitor.events.alerts import AlertEvent, Output
from stream_monitor.logs import get_logger
from stream_monitor.runtime.outputs import dead_letter_headers, summary_message
from stream_monitor.runtime.state import WorkerContext

__all__ = ["Publisher"]

log = get_logger("stream_monitor.worker")


class Publisher:
    """Sends what partitions emit, on the shared producer or on their transactions."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx

    async def producer_for(self, number: int) -> AIOKafkaProducer:
        """Where partition ``number``'s outputs go: its open transaction, or the shared producer."""
        partition = self.ctx.partitions[number]
        if partition.producer is None:
            assert self.ctx.producer is not None  # noqa: S101
            return self.ctx.producer
        if not partition.in_transaction:
            await partition.producer.begin_transaction()
            partition.in_transaction = True
        return partition.producer

    async def publish(self, number: int, outputs: list[Output]) -> None:
        """Send partition ``number``'s summaries and alerts, in order."""
        ctx = self.ctx
        assert ctx.bus is not None  # noqa: S101
        if not outputs:
            return
        producer = await self.producer_for(number)
        metrics = ctx.settings.topics.metrics
        for output in outputs:
            if isinstance(output, AlertEvent):
                ctx.stats.alerts += 1
                ctx.metrics.alert(output)
                if ctx.exactly_once:
                    for sink in ctx.transactional_sinks:
                        if sink.accepts(output):
                            ctx.partitions[number].sent.append(
                                await sink.send_with(producer, output)  # type: ignore[attr-defined]
                            )
                await ctx.bus.publish(output)
            else:
                ctx.stats.summaries += 1
                ctx.metrics.summary(output)
                value, key, headers = summary_message(output)
                ctx.partitions[number].sent.append(
                    await producer.send(metrics, value, key=key, headers=headers)
                )

    async def dead_letter(self, number: int, record: Any, error: EventValidationError) -> None:
        """Send a refused record to the dead-letter topic, with the reason in its headers."""
        ctx = self.ctx
        producer = await self.producer_for(number)
        ctx.stats.dead_lettered += 1
        ctx.metrics.dead_lettered.labels(record.topic, str(record.partition), error.field).inc()
        headers = dead_letter_headers(
            record.headers, record.topic, record.partition, record.offset, error
        )
        ctx.partitions[number].sent.append(
            await producer.send(
                ctx.settings.topics.dead_letters, record.value, key=record.key, headers=headers
            )
        )
        log.warning(
            "event dead-lettered", field=error.field, reason=error.reason, offset=record.offset
        )

    async def flush(self, *, drain: bool = True) -> None:
        """Wait for the producer's sends; ``drain`` also waits for every sink queue to empty."""
        ctx = self.ctx
        assert ctx.producer is not None  # noqa: S101
        assert ctx.bus is not None  # noqa: S101
        if drain:
            await ctx.bus.flush()
        else:
            await ctx.bus.settle()
        await ctx.producer.flush()
