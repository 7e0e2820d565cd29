"""The consume loop: fetch, put each partition's records in timestamp order across both input
topics, hand the settled batches to the compute thread, publish, commit, checkpoint.

It overlaps as much as it can: each turn starts the next fetch before processing what the last
one brought (aiokafka unpacks records in Python, while the compute thread mostly runs native
code), hands every partition's batch to the compute thread at once (the thread runs them back to
back) and publishes each one's outputs while the next ones compute. A turn's batches are
processed, published and their offsets recorded under ``ctx.computing``, which rebalances and
shutdown take too, so a partition is never checkpointed or handed over in the middle of a batch.
If something raises while batches are queued, those computed but not published mark their
partitions stale: never checkpointed or committed, they go back to their last checkpoint.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from stream_monitor.errors import StreamMonitorError
from stream_monitor.logs import get_logger
from stream_monitor.monitor.registry import release_memory
from stream_monitor.runtime.checkpointing import Checkpointer
from stream_monitor.runtime.commits import Committer, Recover
from stream_monitor.runtime.processing import Processor
from stream_monitor.runtime.state import Computing, PartitionState, WorkerContext

__all__ = ["PAUSE_AT", "RESUME_AT", "ConsumeLoop"]

log = get_logger("stream_monitor.worker")

# Backpressure: pause fetching when a sink queue is this full, resume when it drains below.
PAUSE_AT = 0.5
RESUME_AT = 0.1


class ConsumeLoop:
    """The worker's processing loop, one turn at a time."""

    def __init__(
        self,
        ctx: WorkerContext,
        processor: Processor,
        committer: Committer,
        checkpointer: Checkpointer,
        recover: Recover,
    ) -> None:
        self.ctx = ctx
        self.processor = processor
        self.committer = committer
        self.checkpointer = checkpointer
        self.recover = recover
        self.fetching: asyncio.Task[None] | None = None  # the fetch under way, if any

    async def run(self) -> None:
        """Turn until the worker stops; a client call cancelled under us rolls back."""
        ctx = self.ctx
        try:
            while not ctx.stopping.is_set():
                try:
                    await self.once()
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if ctx.stopping.is_set() or (task is not None and task.cancelling()):
                        raise
                    # Not a cancellation of ours: a client call gave up that way (seen while
                    # the broker restarts). What it left half done is rolled back to the
                    # checkpoints.
                    log.exception("a Kafka client call was cancelled; rolling back to checkpoints")
                    for number in sorted(ctx.partitions):
                        await self.recover(number, KafkaError("a client call was cancelled"))
        finally:
            fetching, self.fetching = self.fetching, None
            if fetching is not None:  # what it fetches is not processed: fetched again
                fetching.cancel()
                # done before the consumer is stopped: no fetch of ours outlives it
                await asyncio.wait({fetching}, timeout=1.0)

    async def once(self) -> None:
        """One turn of the loop: take what the last fetch brought, start the next fetch, process
        what is settled while it runs, commit, checkpoint."""
        self.backpressure()
        fetching, self.fetching = self.fetching, None
        await (fetching if fetching is not None else self.fetch())
        # The next records are fetched (aiokafka unpacks them in Python on this loop) while the
        # compute thread runs the monitors, mostly in native code without the GIL.
        self.fetching = asyncio.create_task(self.fetch(), name="the next fetch")
        await self.turns()
        await self.committer.commit()
        await self.checkpointer.maybe_checkpoint()
        release_memory()  # what the last batches freed, once their outputs are published

    async def fetch(self) -> None:
        """Fetch and put the records in their partitions' merges at once: records fetched are
        always those after each partition's latest seek (a partition sought meanwhile is a
        new object, and what the old one buffered goes with it)."""
        ctx = self.ctx
        assert ctx.consumer is not None  # noqa: S101
        try:
            batches = await ctx.consumer.getmany(
                timeout_ms=200, max_records=ctx.settings.processing.batch_max_records
            )
        except KafkaError as exc:
            log.warning("fetch failed, retrying", error=str(exc))
            await asyncio.sleep(1.0)
            return
        for tp, records in batches.items():
            if tp.partition in ctx.partitions:
                ctx.partitions[tp.partition].merge.add(tp.topic, records)
            # Else fetched while the partition is being taken (its state restored): taking it
            # seeks both topics, so these come again.

    async def turns(self) -> None:
        """Process what each partition's merge releases. Every batch that needs no care goes
        to the compute thread at once, which runs them back to back while this loop publishes
        each one's outputs in turn (and the next fetch comes in)."""
        ctx = self.ctx
        released = await self.released()
        if not released:
            return
        async with ctx.computing:
            queued: list[tuple[int, PartitionState, list[Any], Computing | None]] = []
            for number, partition, records in released:
                if ctx.partitions.get(number) is not partition:
                    # Revoked or rolled back meanwhile: if ours again, it was restored and
                    # sought (a new partition object); these records are fetched again.
                    continue
                careful = ctx.suspects.get(number) or ctx.poison.get(number)
                early = None if careful else self.processor.compute(partition, records)
                queued.append((number, partition, records, early))
            try:
                while queued:
                    number, partition, records, early = queued.pop(0)
                    try:
                        await self.processor.process_guarded(number, records, early)
                    except KafkaError as exc:
                        if not ctx.exactly_once:
                            raise
                        await self.recover(number, exc)
                    await asyncio.sleep(0)  # let heartbeats and sinks run
            finally:
                for _, partition, _, early in queued:  # left by what was raised
                    if early is not None:
                        # Its batch is (being) computed but was never published: its state is
                        # ahead of its offsets, so it is never checkpointed or committed, and
                        # goes back to its checkpoint.
                        partition.stale = True

    async def released(self) -> list[tuple[int, PartitionState, list[Any]]]:
        """Per partition with records settled: its number, its state and those records."""
        partitions = self.ctx.partitions
        stale = [number for number, partition in partitions.items() if partition.stale]
        for number in stale:  # left behind by a failure (see above): back to its checkpoint
            await self.recover(number, StreamMonitorError("its batch was not published"))
        released: list[tuple[int, PartitionState, list[Any]]] = []
        for number in sorted(partitions):
            taken = partitions.get(number)
            if taken is None:  # taken away while an earlier one awaited
                continue
            records = await self.release(number, taken)
            if records:
                released.append((number, taken, records))
        return released

    async def release(self, number: int, partition: PartitionState) -> list[Any]:
        """What partition ``number``'s merge releases (records whose place in timestamp order is
        settled)."""
        if not len(partition.merge):
            return []
        lagging = {
            topic for topic in self.ctx.inputs if await self.lagging(partition, number, topic)
        }
        records = partition.merge.release(functools.partial(self.may_have_more, partition, lagging))
        if records or not len(partition.merge):  # not held back: no wait under way
            partition.idle_since = partition.held_since = None
            partition.held_logged = False
        else:
            self.held_back(number, partition, lagging)
        return records

    async def lagging(self, partition: PartitionState, number: int, topic: str) -> bool:
        """Whether the broker may hold records of ``topic``'s partition ``number`` not fetched
        yet (or a rebalance or a pause leaves it unknown). ``partition``: its state when the
        turn began (a rebalance may take it away while this awaits)."""
        ctx = self.ctx
        consumer = ctx.consumer
        assert consumer is not None  # noqa: S101
        tp = TopicPartition(topic, number)
        if tp not in consumer.assignment() or ctx.paused:
            return True
        end = consumer.last_stable_offset(tp) if ctx.exactly_once else consumer.highwater(tp)
        position = partition.merge.next_offset(topic)
        if end is None or position is None:
            return True
        end = int(end)
        if position < end and not partition.merge.sizes()[topic]:
            # Nothing buffered of it: the consumer may have gone past offsets with no record.
            # (With records buffered, the next turn looks, once they are released.)
            position = await self.past_empty_offsets(partition, number, tp, position)
        return position < end

    async def past_empty_offsets(
        self, partition: PartitionState, number: int, tp: TopicPartition, expected: int
    ) -> int:
        """Where the merge of partition ``number`` stands on ``tp``: ``expected`` (after the
        last record it got), or the consumer's fetch position when that is further. Offsets can
        hold no record for us: transaction markers, aborted records, records deleted by
        retention or compaction before they were read (the consumer then resets to the log
        start). Without this, the other topic would wait for them for ever."""
        ctx = self.ctx
        assert ctx.consumer is not None  # noqa: S101
        try:  # immediate unless the position is being reset
            fetched = int(await asyncio.wait_for(ctx.consumer.position(tp), 0.05))
        except (TimeoutError, KafkaError):
            return expected
        if fetched <= expected or ctx.partitions.get(number) is not partition:
            return expected
        partition.merge.expect(tp.topic, fetched)
        if fetched - expected > 1:  # more than a transaction marker
            ctx.stats.skipped += fetched - expected
            log.warning(
                "offsets skipped: the broker holds no record for them any more (deleted by "
                "retention or compaction before they were read, or aborted)",
                topic=tp.topic,
                partition=number,
                offsets=f"{expected}-{fetched - 1}",
            )
        return fetched

    def held_back(self, number: int, partition: PartitionState, lagging: set[str]) -> None:
        """Log once when a partition's records have waited long for the other input topic."""
        ctx = self.ctx
        consumer = ctx.consumer
        assert consumer is not None  # noqa: S101
        now = time.monotonic()
        if partition.held_since is None:
            partition.held_since = now
        limit = max(30.0, 2 * ctx.settings.processing.max_task_idle)
        if partition.held_logged or now - partition.held_since < limit:
            return
        partition.held_logged = True
        where = {}
        for topic in ctx.inputs:
            tp = TopicPartition(topic, number)
            if tp in consumer.assignment():
                where[topic] = {
                    "position": partition.merge.next_offset(topic),
                    "end": consumer.highwater(tp),
                    "paused": tp in consumer.paused(),
                }
        log.warning(
            "records wait for the other input topic",
            partition=number,
            seconds=round(now - partition.held_since, 1),
            buffered=partition.merge.sizes(),
            lagging=sorted(lagging),
            topics=where,
        )

    def may_have_more(self, partition: PartitionState, lagging: set[str], topic: str) -> bool:
        """Whether records of ``topic`` may still come before what is buffered of the other
        input topic: the broker holds more (``lagging``), or none has come for less than
        ``processing.max_task_idle``."""
        if topic in lagging:
            return True
        idle = self.ctx.settings.processing.max_task_idle
        if idle <= 0:
            return False
        now = time.monotonic()
        if partition.idle_since is None:
            partition.idle_since = now
        if now - partition.idle_since < idle:
            return True
        partition.idle_since = None
        return False

    def backpressure(self) -> None:
        """Pause our partitions while a sink is backed up; resume once it has drained.

        Polling goes on while paused (``getmany`` returns nothing for paused partitions), so the
        worker stays in the group however long a sink is slow.
        """
        ctx = self.ctx
        consumer = ctx.consumer
        assert consumer is not None  # noqa: S101
        assert ctx.bus is not None  # noqa: S101
        load = ctx.bus.load()
        ours = [tp for tp in consumer.assignment() if tp.partition in ctx.partitions]
        if not ctx.paused and load >= PAUSE_AT:
            ctx.paused = True
            ctx.stats.pauses += 1
            log.warning("a sink is backed up, pausing consumption", queue_load=round(load, 2))
        elif ctx.paused and load <= RESUME_AT:
            ctx.paused = False
            ctx.stats.resumes += 1
            consumer.resume(*ours)
            log.info("sinks caught up, resuming consumption")
        if ctx.paused:  # again each time: a rebalance may have brought new partitions
            consumer.pause(*ours)
