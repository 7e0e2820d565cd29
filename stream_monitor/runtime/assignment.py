"""Assignment and rebalances: taking a partition (fencing its previous owner, restoring its
monitors from its checkpoint, seeking both input topics right after the checkpoint's offsets),
handing one over on revocation, and rolling one back to its last checkpoint after a failure.

Partition ``p`` of predictions and labels belong together: both topics are keyed by model id and
co-assigned with the range assignor, so one worker holds a model's predictions, labels and
monitors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from stream_monitor.kafka.partitioner import KeyPartitioner
from stream_monitor.logs import get_logger
from stream_monitor.monitor.snapshot import SnapshotError
from stream_monitor.runtime.checkpoint import STATE_MESSAGE_BYTES, read_checkpoint
from stream_monitor.runtime.merge import Merge
from stream_monitor.runtime.state import PartitionState, WorkerContext, stop_quietly

__all__ = ["Assignment", "Listener"]

log = get_logger("stream_monitor.worker")

# Flush, checkpoint and commit partitions about to be handed over (the worker does it).
Settle = Callable[[list[int]], Awaitable[None]]


class Assignment:
    """Which input partitions the worker owns, and how it takes, hands over and rolls back."""

    def __init__(self, ctx: WorkerContext, settle: Settle) -> None:
        self.ctx = ctx
        self.settle = settle

    async def partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Checkpoint and commit what is being taken away, then forget it."""
        async with self.ctx.computing:  # the batch being computed finishes first
            await self.revoke(revoked)

    async def revoke(self, revoked: list[TopicPartition]) -> None:
        """Settle the revoked partitions we own, then let them go whatever happened."""
        partitions = self.ctx.partitions
        numbers = sorted({tp.partition for tp in revoked} & set(partitions))
        if not numbers:
            return
        try:
            await self.settle(numbers)
        except Exception as exc:
            # Whatever failed, the partitions go: their next owner (maybe this worker again)
            # restores them from their last checkpoint and replays what followed.
            log.warning(
                "could not checkpoint and commit the revoked partitions; their next owner "
                "replays from their last checkpoint",
                partitions=numbers,
                error=f"{type(exc).__name__}: {exc}",
            )
            if not isinstance(exc, KafkaError):
                raise
        finally:
            for number in numbers:
                partition = partitions.pop(number, None)
                if partition is not None:
                    await stop_quietly(partition.producer)
        log.info("partitions revoked", partitions=numbers)

    async def partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Restore each partition from its checkpoint and seek right after its offsets.

        Every assigned partition is taken, also one this worker still holds: a rebalance
        resets the consumer's positions to the committed offsets, so state kept across it
        (a revocation that failed) would no longer match what is fetched."""
        partitions = self.ctx.partitions
        for number in sorted({tp.partition for tp in assigned}):
            stale = partitions.pop(number, None)
            if stale is not None:
                await stop_quietly(stale.producer)
            await self.take_until_taken(number)
        self.ctx.ready.set()
        log.info("partitions assigned", partitions=sorted(partitions))

    async def take(self, number: int) -> None:
        """Own partition ``number``: fence its previous owner, restore its state, and seek both
        input topics to the checkpoint's offsets (else the committed ones, else the start)."""
        ctx = self.ctx
        consumer = ctx.consumer
        assert consumer is not None  # noqa: S101
        topics = ctx.settings.topics
        partition = PartitionState(ctx.monitor_set(), Merge(topics.predictions, topics.labels))
        if ctx.exactly_once:
            # Same transactional id as any previous owner: starting it bumps the epoch, fences
            # that owner and aborts its open transaction before we read the checkpoint.
            partition.producer = AIOKafkaProducer(
                transactional_id=self.transactional_id(number),
                acks="all",
                max_request_size=STATE_MESSAGE_BYTES,
                partitioner=KeyPartitioner(),
                **ctx.kafka,
            )
            await partition.producer.start()
        checkpoint = await read_checkpoint(ctx.settings, number)
        if checkpoint is not None:
            try:
                partition.monitors.restore(checkpoint.snapshot, ctx.key)
            except SnapshotError as exc:
                log.warning(
                    "checkpoint not usable, starting fresh", partition=number, error=str(exc)
                )
                checkpoint = None
        inputs = [TopicPartition(topic, number) for topic in (topics.predictions, topics.labels)]
        if checkpoint is not None:
            partition.offsets = dict(checkpoint.offsets)
            partition.committed = dict(checkpoint.offsets)
            partition.checkpointed = dict(checkpoint.offsets)
            ctx.stats.restored += 1
        # Both topics are sought every time: records fetched but not yet merged into the
        # processing order were buffered by the partition object just dropped.
        offsets = dict(checkpoint.offsets) if checkpoint is not None else {}
        for tp in inputs:
            if offsets.get(tp.topic) is None:  # unseen by the state: committed, else the start
                offsets[tp.topic] = await consumer.committed(tp)
            if offsets[tp.topic] is None:
                offsets[tp.topic] = (await consumer.beginning_offsets([tp]))[tp]
        # Taken and sought at once (no await in between): records the loop fetches from here
        # on are the ones after the seek, and they go to this partition's merge.
        ctx.partitions[number] = partition
        for tp in inputs:
            consumer.seek(tp, offsets[tp.topic])
            partition.merge.expect(tp.topic, offsets[tp.topic])

    def transactional_id(self, number: int) -> str:
        """The fixed transactional id of partition ``number`` (fences every earlier owner)."""
        settings = self.ctx.settings
        return f"{settings.kafka.group_id}.{settings.topics.predictions}.{number}"

    async def recover(self, number: int, error: Exception) -> None:
        """A transaction or a batch of partition ``number`` failed: drop the partition, or roll
        it back to its last checkpoint and go on."""
        ctx = self.ctx
        consumer = ctx.consumer
        assert consumer is not None  # noqa: S101
        partition = ctx.partitions.pop(number, None)
        if partition is None:
            return
        partition.delivery_error()  # collect what the failure left behind
        await stop_quietly(partition.producer)
        topics = ctx.settings.topics
        if isinstance(error, ProducerFenced):
            # Another worker owns this partition now; stop reading it until the rebalance
            # that takes it away reaches us.
            log.warning("partition fenced by its new owner, dropping it", partition=number)
            owned = consumer.assignment()
            consumer.pause(
                *(
                    tp
                    for tp in (
                        TopicPartition(topics.predictions, number),
                        TopicPartition(topics.labels, number),
                    )
                    if tp in owned
                )
            )
            return
        ctx.stats.rollbacks += 1
        log.warning(
            "rolling the partition back to its last checkpoint",
            partition=number,
            error=f"{type(error).__name__}: {error}",
        )
        await self.take_until_taken(number)

    async def take_until_taken(self, number: int) -> None:
        """:meth:`take`, retried with backoff while the broker does not answer (reading the
        checkpoint, the committed offsets); a partition assigned but not taken would have its
        records sought back forever."""
        delay = 0.5
        while not self.ctx.stopping.is_set():
            try:
                await self.take(number)
            except KafkaError as exc:
                log.warning("cannot take the partition yet", partition=number, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            else:
                return


class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's rebalance callbacks, handed to :class:`Assignment`."""

    def __init__(self, assignment: Assignment) -> None:
        self.assignment = assignment

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.assignment.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.assignment.partitions_assigned(assigned)
