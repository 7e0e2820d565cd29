"""The commit protocol: offsets committed only as far as the outputs before them are delivered
and, at least once, a written checkpoint covers them; under exactly-once, each partition's
transaction committed with its checkpoint and offsets.

At-least-once, a commit does not hold the loop while the broker acknowledges the outputs: it
notes what it will commit, the acknowledgements are awaited in a task, and a later turn commits
once they are in (a revocation or shutdown, ``force``, still waits).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from stream_monitor.logs import get_logger
from stream_monitor.runtime.checkpointing import Checkpointer
from stream_monitor.runtime.publishing import Publisher
from stream_monitor.runtime.state import Target, WorkerContext, covered, retrieve

__all__ = ["Committer", "Recover"]

log = get_logger("stream_monitor.worker")

# Roll partition ``number`` back to its last checkpoint after ``error`` (assignment does it).
Recover = Callable[[int, Exception], Awaitable[None]]


class Committer:
    """Commits what the partitions processed and delivered since their last commit."""

    def __init__(
        self,
        ctx: WorkerContext,
        publisher: Publisher,
        checkpointer: Checkpointer,
        recover: Recover,
    ) -> None:
        self.ctx = ctx
        self.publisher = publisher
        self.checkpointer = checkpointer
        self.recover = recover
        # Commits of the loop and of a revocation (the rebalance runs in aiokafka's task):
        # each pops the marks it committed, so they must not interleave.
        self.lock = asyncio.Lock()
        self.committed_at = time.monotonic()  # at_least_once: the last offset commit
        # at_least_once: a commit waiting for its outputs' acknowledgements while the loop goes
        # on (the wait, then what it will commit per partition)
        self.acknowledging: tuple[asyncio.Task[None], dict[int, Target]] | None = None

    async def commit(self, numbers: list[int] | None = None, *, force: bool = False) -> None:
        """Commit what the partitions processed and delivered since their last commit.

        Offsets are committed only once the alerts published before them have been delivered
        (or recorded as failed) by every sink, so a slow sink never loses an alert to a crash;
        meanwhile the loop goes on polling (with partitions paused under backpressure).
        ``force`` (revocation, shutdown) first waits for every sink queue to drain.

        At-least-once: once ``processing.commit_interval`` has passed, note the offsets that
        may be committed and wait for the broker's acknowledgement of their outputs in a task;
        the first call after it is done commits them through the consumer (``force`` waits
        here). Exactly-once: commit each partition's transaction (with its checkpoint and
        offsets) once ``processing.commit_interval`` has passed.
        """
        async with self.lock:  # the loop's and a revocation's: one at a time
            await self.commit_now(numbers, force=force)

    async def commit_now(self, numbers: list[int] | None, *, force: bool) -> None:
        """:meth:`commit`, with the lock held."""
        ctx = self.ctx
        assert ctx.bus is not None  # noqa: S101
        partitions = ctx.partitions
        chosen = sorted(partitions if numbers is None else set(numbers) & set(partitions))
        now = time.monotonic()
        interval = ctx.settings.processing.commit_interval
        if not force:  # once per interval: waiting for the broker per batch cost a third
            if ctx.exactly_once:
                chosen = [n for n in chosen if now - partitions[n].committed_at >= interval]
            elif self.acknowledging is not None:
                await self.commit_acknowledged()
                return
            elif now - self.committed_at < interval:
                return
        if force:
            await self.drop_acknowledging()  # what it waits for is committed here, and more
            await ctx.bus.flush()
        targets = {
            number: Target(partitions[number], *found)
            for number in chosen
            if (found := self.reached(number))
        }
        if ctx.exactly_once:
            # A transaction holds every output of its partition: all or nothing.
            ready = [n for n, t in targets.items() if t.reached == len(t.partition.marks)]
            await self.commit_transactions(ready)
            return
        self.committed_at = now
        if force:
            await self.publisher.flush(drain=False)
            await self.commit_offsets(targets)
            return
        # The outputs of these batches are sent, not yet acknowledged: the loop goes on while
        # the broker acknowledges them (a burst of alerts takes tens of milliseconds), and a
        # later turn commits once it has.
        waiting = asyncio.create_task(self.publisher.flush(drain=False), name="acknowledgements")
        waiting.add_done_callback(retrieve)
        self.acknowledging = (waiting, targets)

    async def drop_acknowledging(self, within: float | None = None) -> None:
        """Let go of the commit waiting for acknowledgements without committing it (its marks
        stay, for the caller's commit or the next): its wait is awaited, so a failed delivery
        raises here as it would have there; with ``within`` (closing), stopped past it."""
        if self.acknowledging is None:
            return
        waiting, _ = self.acknowledging
        self.acknowledging = None
        if within is None:
            await waiting
            return
        await asyncio.wait({waiting}, timeout=within)
        if not waiting.done():  # nothing is committed after closing: its outcome is moot
            waiting.cancel()

    async def commit_acknowledged(self) -> None:
        """Commit what the acknowledgements under way were for, once they are all in."""
        assert self.acknowledging is not None  # noqa: S101
        waiting, targets = self.acknowledging
        if not waiting.done():
            return
        self.acknowledging = None
        waiting.result()  # raised as the flush itself would have
        # Partitions handed over or rolled back meanwhile are new objects: theirs is not ours.
        await self.commit_offsets(
            {n: t for n, t in targets.items() if self.ctx.partitions.get(n) is t.partition}
        )

    async def commit_offsets(self, targets: dict[int, Target]) -> None:
        """At-least-once: commit ``targets`` (their outputs acknowledged) and drop their marks."""
        consumer = self.ctx.consumer
        assert consumer is not None  # noqa: S101
        for number in list(targets):
            error = targets[number].partition.delivery_error()
            if error is not None:  # an output was lost: replay from the last checkpoint
                del targets[number]
                await self.recover(number, error)
        owned = consumer.assignment()
        offsets = {
            TopicPartition(topic, number): OffsetAndMetadata(offset, "")
            for number, (partition, _, target) in targets.items()
            if target != partition.committed
            for topic, offset in target.items()
            if TopicPartition(topic, number) in owned
        }
        if offsets:
            try:
                await consumer.commit(offsets)
            except CommitFailedError as exc:  # a rebalance is under way: events are replayed
                log.warning("commit failed during a rebalance", error=str(exc))
                return
        for partition, reached, target in targets.values():
            partition.committed = target
            for _ in range(reached):
                partition.marks.popleft()

    def reached(self, number: int) -> tuple[int, dict[str, int]] | None:
        """How many of partition ``number``'s batches may be committed (their alerts delivered,
        and, at least once, their state checkpointed), and the offsets after the last of them."""
        ctx = self.ctx
        assert ctx.bus is not None  # noqa: S101
        partition = ctx.partitions[number]
        marks = partition.marks
        reached = 0
        while (
            reached < len(marks)
            and ctx.bus.reached(marks[reached][0])
            and (ctx.exactly_once or covered(marks[reached][1], partition.checkpointed))
        ):
            reached += 1
        return (reached, marks[reached - 1][1]) if reached else None

    async def commit_transactions(self, numbers: list[int]) -> None:
        """Commit the transactions of partitions ``numbers`` (chosen by :meth:`commit_now`:
        their commit interval passed, or the commit is forced)."""
        ctx = self.ctx
        for number in numbers:
            partition = ctx.partitions[number]
            if partition.stale:
                continue  # a stale partition's open transaction is aborted when it is taken
            try:
                producer = await self.publisher.producer_for(number)
                await self.checkpointer.send(producer, number, partition)
                await producer.send_offsets_to_transaction(
                    {
                        TopicPartition(topic, number): offset
                        for topic, offset in partition.offsets.items()
                    },
                    ctx.settings.kafka.group_id,
                )
                await producer.commit_transaction()
            except KafkaError as exc:
                await self.recover(number, exc)
                continue
            partition.sent.clear()  # the commit succeeded, so every send in it did
            partition.marks.clear()
            partition.in_transaction = False
            partition.committed = dict(partition.offsets)
            partition.committed_at = time.monotonic()
            ctx.stats.transactions += 1
