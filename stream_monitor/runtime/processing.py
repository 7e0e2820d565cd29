"""Processing a partition's batch: computed on the compute thread, its outputs published, its
offsets and the alert bus's mark recorded for the commit; a batch that makes the monitor raise
taken again one record at a time, and the record that does it dead-lettered (a poison event).
"""

from __future__ import annotations

import asyncio
import functools
import time
from operator import attrgetter
from typing import Any

from stream_monitor.errors import BatchFailedError, MonitorError
from stream_monitor.logs import batch_context, get_logger
from stream_monitor.runtime.commits import Recover
from stream_monitor.runtime.outputs import process_records
from stream_monitor.runtime.publishing import Publisher
from stream_monitor.runtime.state import Computing, PartitionState, WorkerContext

__all__ = ["Processor"]

log = get_logger("stream_monitor.worker")

_TOPIC = attrgetter("topic")
_VALUE = attrgetter("value")


class Processor:
    """Runs partitions' batches through their monitors and publishes what they give."""

    def __init__(self, ctx: WorkerContext, publisher: Publisher, recover: Recover) -> None:
        self.ctx = ctx
        self.publisher = publisher
        self.recover = recover

    async def process_guarded(
        self, number: int, records: list[Any], early: Computing | None = None
    ) -> None:
        """:meth:`process`, with the records of a batch that made the monitor raise taken one
        by one, and those that make it raise dead-lettered instead of crashing the worker.

        ``records``: partition ``number``'s predictions and labels in their merged order;
        ``early``: their computation, already under way (none of them needs care).
        A failed batch may have changed some monitors, so the partition goes back to its last
        checkpoint; on the replay, the failed batch's records are taken one at a time. The one
        that fails is a poison event: the partition goes back once more, and on the replay it
        is dead-lettered (with the class of what the monitor raised) and skipped. The monitors
        never see it, so every run gives the same outputs, whenever it crashed.
        """
        ctx = self.ctx
        suspects = ctx.suspects.setdefault(number, set())
        poison = ctx.poison.setdefault(number, {})

        def careful(record: Any) -> bool:
            where = (record.topic, record.offset)
            return where in suspects or where in poison

        # Records up to the last careful one are taken one by one; the rest as one batch.
        one_by_one = 0
        if suspects or poison:
            one_by_one = next(
                (i + 1 for i in range(len(records) - 1, -1, -1) if careful(records[i])), 0
            )
        for record in records[:one_by_one]:
            where = (record.topic, record.offset)
            if where in poison:
                await self.skip(number, record, poison[where])
                continue
            try:
                await self.process(number, [record])
            except BatchFailedError as exc:
                poison[where] = exc.failure
                ctx.stats.poison += 1
                log.exception(
                    "an event makes the monitor raise; it goes to the dead-letter topic",
                    topic=record.topic,
                    partition=number,
                    offset=record.offset,
                    error=exc.failure.reason,
                )
                await self.recover(number, exc)
                return
        rest = records[one_by_one:]
        if not rest:
            return
        try:
            await self.process(number, rest, early if one_by_one == 0 else None)
        except BatchFailedError as exc:
            suspects.update((record.topic, record.offset) for record in rest)
            log.exception(
                "a batch made the monitor raise; replaying it event by event",
                partition=number,
                offsets=[rest[0].offset, rest[-1].offset],
                error=exc.failure.reason,
            )
            await self.recover(number, exc)

    async def skip(self, number: int, record: Any, failure: MonitorError) -> None:
        """Dead-letter a poison event and move past it, as a batch of one refused record."""
        ctx = self.ctx
        assert ctx.bus is not None  # noqa: S101
        partition = ctx.partitions[number]
        ctx.stats.consumed += 1
        await self.publisher.dead_letter(number, record, failure)
        partition.offsets[record.topic] = record.offset + 1
        partition.marks.append((ctx.bus.mark(), dict(partition.offsets)))

    def compute(self, partition: PartitionState, records: list[Any]) -> Computing:
        """Start processing a partition's batch on the compute thread."""
        ctx = self.ctx
        # map() and attrgetter loop in C: these run per record on the event loop's thread
        is_label = list(map(ctx.settings.topics.labels.__eq__, map(_TOPIC, records)))
        values = list(map(_VALUE, records))
        future = asyncio.get_running_loop().run_in_executor(
            ctx.compute,
            functools.partial(process_records, ctx.codec, partition.monitors, values, is_label),
        )
        return Computing(future, time.perf_counter(), is_label.count(True))

    async def process(
        self, number: int, records: list[Any], early: Computing | None = None
    ) -> None:
        """Process a batch (or take ``early``, its computation under way), publish its outputs
        and record its offsets."""
        ctx = self.ctx
        assert ctx.bus is not None  # noqa: S101
        partition = ctx.partitions[number]
        labels_topic = ctx.settings.topics.labels
        computing = early if early is not None else self.compute(partition, records)
        started = computing.started
        first, last = records[0], records[-1]
        with batch_context(first.topic, number, first.offset, last.offset):
            ctx.stats.consumed += len(records)
            done = await computing.future
            for index, error in done.rejected:
                await self.publisher.dead_letter(number, records[index], error)
            ctx.stats.processed += len(records) - len(done.rejected)
            _advance(partition.offsets, records, mixed=0 < computing.labelled < len(records))
            await self.publisher.publish(number, done.outputs)
            partition.marks.append((ctx.bus.mark(), dict(partition.offsets)))
        elapsed = time.perf_counter() - started
        predictions_topic = ctx.settings.topics.predictions
        labelled = computing.labelled
        for topic, counts, size in (
            (predictions_topic, done.models, len(records) - labelled),
            (labels_topic, done.labels, labelled),
        ):
            for model, count in counts.items():
                ctx.metrics.processed.labels(topic, str(number), model).inc(count)
            if size:
                ctx.metrics.batch(topic, number, size, elapsed * size / len(records))


def _advance(offsets: dict[str, int], records: list[Any], *, mixed: bool) -> None:
    """Set each topic's next offset after ``records`` (in offset order within each topic;
    ``mixed``: of both input topics)."""
    if not mixed:
        last = records[-1]
        offsets[last.topic] = last.offset + 1  # one topic: its last record is its furthest
        return
    for record in records:
        offsets[record.topic] = record.offset + 1
