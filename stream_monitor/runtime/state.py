"""What a worker's rooms share: each owned input partition's state, the worker's clients and
counters, and the small helpers around a partition's deliveries.

The consume loop, assignment, the commit protocol, checkpoints and publishing each read and
change this state, and nothing else of one another: the worker builds them around one
:class:`WorkerContext`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from stream_monitor.config.settings import Settings
from stream_monitor.errors import MonitorError
from stream_monitor.events.codec import EventCodec
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.logs import get_logger
from stream_monitor.monitor.reference import ReferenceProfile
from stream_monitor.monitor.registry import MonitorSet
from stream_monitor.observability.metrics import WorkerMetrics
from stream_monitor.runtime.merge import Merge
from stream_monitor.runtime.outputs import Processed
from stream_monitor.sinks.base import Sink
from stream_monitor.sinks.bus import AlertBus

__all__ = [
    "Computing",
    "PartitionState",
    "Target",
    "WorkerContext",
    "WorkerStats",
    "checkpoint_written",
    "covered",
    "retrieve",
    "stop_quietly",
]

log = get_logger("stream_monitor.worker")


@dataclass
class WorkerStats:
    """Counters of a worker's life (also exposed to metrics)."""

    consumed: int = 0
    skipped: int = 0  # input offsets that held no record when read (retention, compaction)
    processed: int = 0
    dead_lettered: int = 0
    alerts: int = 0
    summaries: int = 0
    checkpoints: int = 0
    restored: int = 0
    transactions: int = 0
    rollbacks: int = 0
    poison: int = 0  # events found to make the monitor raise
    pauses: int = 0
    resumes: int = 0


@dataclass
class PartitionState:
    """One owned input partition: its monitors, its place in both topics, what it owes."""

    monitors: MonitorSet
    # fetched records of both input topics waiting for their place in timestamp order
    merge: Merge
    offsets: dict[str, int] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)
    # at-least-once: the offsets of the latest checkpoint known to be written; no commit goes
    # past them, so a restart never resumes after events its state has not seen
    checkpointed: dict[str, int] = field(default_factory=dict)
    checkpointed_at: float = field(default_factory=time.monotonic)
    committed_at: float = field(default_factory=time.monotonic)
    # after each batch: the alert bus's mark and the offsets; offsets are committed only once
    # the alerts published before them have left the sink queues
    marks: deque[tuple[tuple[int, ...], dict[str, int]]] = field(default_factory=deque)
    # exactly-once only: the partition's transactional producer
    producer: AIOKafkaProducer | None = None
    in_transaction: bool = False
    # deliveries of the summaries and dead letters sent since the last commit
    sent: list[asyncio.Future[Any]] = field(default_factory=list)
    # since when a topic with nothing buffered has held the other back (processing.max_task_idle)
    idle_since: float | None = None
    # since when records have been held back in the merge, and whether that was logged
    held_since: float | None = None
    held_logged: bool = False
    # a batch of it was computed but never published (something raised first): its state is
    # ahead of its offsets, so it is neither checkpointed nor committed until it is taken again
    stale: bool = False

    def delivery_error(self) -> KafkaError | None:
        """The first failed delivery among those sent since the last commit, if any."""
        sent, self.sent = self.sent, []
        error = None
        for future in sent:
            if not future.done():  # only after a failure: its outcome no longer matters
                future.add_done_callback(retrieve)
                continue
            exc = None if future.cancelled() else future.exception()
            if error is None and isinstance(exc, KafkaError):
                error = exc
        return error


class Target(NamedTuple):
    """What a commit takes of a partition: its batches ``reached`` (outputs delivered, state
    checkpointed) and the offsets after the last of them."""

    partition: PartitionState
    reached: int
    target: dict[str, int]


class Computing(NamedTuple):
    """A batch's processing under way on the compute thread, when it was started, and how many
    of its records are labels."""

    future: asyncio.Future[Processed]
    started: float
    labelled: int


class WorkerContext:
    """The state a worker's rooms share (see the module's docstring)."""

    def __init__(
        self,
        settings: Settings,
        references: dict[str, ReferenceProfile] | None = None,
    ) -> None:
        self.settings = settings
        self.references = references or {}
        self.codec = EventCodec(settings.limits)
        self.inputs = (settings.topics.predictions, settings.topics.labels)
        self.partitions: dict[int, PartitionState] = {}
        self.stats = WorkerStats()
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        key = settings.state.signing_key
        self.key = key.get_secret_value().encode() if key else None
        self.exactly_once = settings.processing.guarantee == "exactly_once"
        self.kafka = client_kwargs(settings.kafka)
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.bus: AlertBus | None = None
        self.transactional_sinks: list[Sink] = []
        self.paused = False
        self.metrics = WorkerMetrics(settings.http.max_series)
        # One thread computes batches in order; the lock keeps rebalances out of a batch.
        self.compute = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-compute")
        self.computing = asyncio.Lock()
        self.deadline = math.inf  # set by the worker's stop(): when it must have exited
        # per input partition: the records of batches that made the monitor raise (taken one by
        # one), and the poison events found (dead-lettered and skipped on every replay); both
        # by (topic, offset)
        self.suspects: dict[int, set[tuple[str, int]]] = {}
        self.poison: dict[int, dict[tuple[str, int], MonitorError]] = {}

    def monitor_set(self) -> MonitorSet:
        """A fresh partition's monitors."""
        return MonitorSet.from_settings(self.settings, self.references)

    def left(self) -> float:
        """Seconds left before the shutdown deadline."""
        return max(0.0, self.deadline - time.monotonic())


def covered(offsets: dict[str, int], checkpointed: dict[str, int]) -> bool:
    """Whether a checkpoint at ``checkpointed`` holds the state after ``offsets``."""
    return all(offset <= checkpointed.get(topic, -1) for topic, offset in offsets.items())


def checkpoint_written(
    partition: PartitionState, offsets: dict[str, int], sent: asyncio.Future[Any]
) -> None:
    """A checkpoint's delivery is known: written, its offsets may be committed (never going
    back to an older checkpoint's)."""
    if sent.cancelled() or sent.exception() is not None:
        return
    if partition.checkpointed and covered(offsets, partition.checkpointed):
        return
    partition.checkpointed = offsets


def retrieve(future: asyncio.Future[Any]) -> None:
    """Retrieve a future's exception (so none is reported as never retrieved)."""
    if not future.cancelled():
        future.exception()


async def stop_quietly(producer: AIOKafkaProducer | None) -> None:
    """Close a partition's producer; a broker error while closing changes nothing."""
    if producer is None:
        return
    try:
        await producer.stop()
    except KafkaError as exc:
        log.warning("producer did not close cleanly", error=str(exc))
