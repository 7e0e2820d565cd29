"""Checkpoints: each partition's monitors written to the compacted state topic with the input
offsets they reflect (at-least-once; under exactly-once every transaction carries one).

Periodic checkpoints are sent without waiting for them, oldest partition first, and at most
``CHECKPOINT_BUDGET`` of snapshots a turn: each counts for commits once acknowledged.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from aiokafka import AIOKafkaProducer

from stream_monitor.runtime.checkpoint import Checkpoint
from stream_monitor.runtime.state import PartitionState, WorkerContext, checkpoint_written

__all__ = ["CHECKPOINT_BUDGET", "Checkpointer"]

# Seconds of snapshots one turn of the loop may take for periodic checkpoints (at least one)
CHECKPOINT_BUDGET = 0.01


class Checkpointer:
    """Writes partitions' checkpoints when they are due, or when asked (revocation, stop)."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx

    async def maybe_checkpoint(self) -> None:
        """Checkpoint the partitions whose ``processing.checkpoint_interval`` has passed."""
        ctx = self.ctx
        assert ctx.bus is not None  # noqa: S101
        if ctx.exactly_once:
            return  # every transaction carries its partition's checkpoint
        if not ctx.bus.reached(ctx.bus.mark()):
            return  # a checkpoint must not get ahead of alerts still waiting in a sink queue
        interval = ctx.settings.processing.checkpoint_interval
        started = time.monotonic()
        due = sorted(
            (p.checkpointed_at, n)
            for n, p in ctx.partitions.items()
            if started - p.checkpointed_at >= interval
        )
        # Oldest first, and only as many as CHECKPOINT_BUDGET allows in one turn (at least one):
        # a snapshot holds the loop and the compute thread (the state must not move under it),
        # and all partitions at once stalled a turn by tens of milliseconds every interval.
        for _, number in due:
            await self.checkpoint([number], wait=False)
            if time.monotonic() - started >= CHECKPOINT_BUDGET:
                break

    async def checkpoint(self, numbers: list[int], *, wait: bool = True) -> None:
        """At-least-once: write the partitions' checkpoints; the offsets of each may be
        committed once it is written. ``wait``: until they are (revocation, shutdown); else
        the loop goes on, and each counts from its acknowledgement (a flush waits for every
        output sent before it: under load, hundreds of milliseconds the loop would not read)."""
        ctx = self.ctx
        assert ctx.producer is not None  # noqa: S101
        if ctx.exactly_once:
            return
        written: list[tuple[PartitionState, dict[str, int], asyncio.Future[Any]]] = []
        for number in numbers:
            partition = ctx.partitions.get(number)
            if partition is None or not partition.offsets or partition.stale:
                continue
            sent, offsets = await self.send(ctx.producer, number, partition)
            sent.add_done_callback(functools.partial(checkpoint_written, partition, offsets))
            written.append((partition, offsets, sent))
        if wait:
            await ctx.producer.flush()
            for partition, offsets, sent in written:  # now, not when the callbacks run
                if sent.done():
                    checkpoint_written(partition, offsets, sent)

    async def send(
        self, producer: AIOKafkaProducer, number: int, partition: PartitionState
    ) -> tuple[asyncio.Future[Any], dict[str, int]]:
        """Send the partition's checkpoint; its delivery, and the offsets it holds."""
        ctx = self.ctx
        checkpoint = Checkpoint(
            number, dict(partition.offsets), partition.monitors.snapshot(ctx.key)
        )
        sent: asyncio.Future[Any] = await producer.send(
            ctx.settings.topics.state,
            checkpoint.encode(),
            key=str(number).encode(),
            partition=number,
        )
        partition.sent.append(sent)
        partition.checkpointed_at = time.monotonic()
        ctx.stats.checkpoints += 1
        return sent, checkpoint.offsets
