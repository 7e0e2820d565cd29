"""The streaming worker: consume predictions and labels, run the monitors, publish, checkpoint.

One consumer group. Partitions of the predictions and labels topics are co-assigned (range
assignor, same partition counts, both keyed by model id), so partition ``p`` of both topics and
its monitors live in one worker. Per batch (``getmany``): decode, route to the partition's
``MonitorSet``, hand alerts to the alert bus and window summaries to the metrics topic, send
invalid events to the dead-letter topic. Every ``processing.checkpoint_interval`` seconds, and
when partitions are revoked or the worker stops, each partition's monitors are written to the
compacted state topic with the offsets they reflect; on assignment they are restored and
consumption resumes right after those offsets. At-least-once, every
``processing.commit_interval``: flush the bus and the producer and commit the offsets, only as
far as a written checkpoint covers them. State is never ahead of outputs (a checkpoint waits for
the sinks) and offsets are never ahead of state (a commit waits for a checkpoint), so a worker
killed at any moment restarts from its checkpoint, or from the beginning when it wrote none.

Under ``processing.guarantee: exactly_once`` each input partition has its own transactional
producer (transactional id ``<group_id>.<predictions topic>.<partition>``). Everything a partition
emits (summaries, Kafka-sink alerts, dead letters) goes into that partition's open transaction;
every ``processing.commit_interval`` seconds, and on revocation and shutdown, the transaction gets
the partition's checkpoint and its input offsets (``send_offsets_to_transaction``) and commits, so
outputs, state and offsets move together or not at all. Zombies are fenced by the transactional
id: the worker that takes a partition over starts a producer with the same id, which bumps the
epoch and aborts the zombie's open transaction; the zombie's next send or commit fails with
``ProducerFenced`` and it drops the partition. A failed transaction is aborted and the partition
rolled back to its last committed checkpoint and offsets. Sinks outside Kafka (log, file,
webhook) cannot take part in a Kafka transaction: they get each alert through the bus as it is
made, and a partition commits only after they have delivered it, so for them delivery is
at-least-once (an alert of a rolled-back transaction comes again, with the same id).

CPU work (decoding and the monitors) runs in one compute thread, batch by batch
(``processing.batch_max_records``); the native core releases the GIL in its loops, so the event
loop works meanwhile. It overlaps as much as it can: each turn of the loop starts the next fetch
before processing what the last one brought (aiokafka unpacks records in Python, while the
compute thread mostly runs native code), hands every partition's batch to the compute thread at
once (the thread runs them back to back) and publishes each one's outputs while the next ones
compute; periodic checkpoints are sent without waiting for them (each counts for commits once
acknowledged). A turn's batches are processed, published and their offsets recorded under
``self.computing``, which rebalances and shutdown take too, so a partition is never
checkpointed or handed over in the middle of a batch. If something raises while batches are
queued, those computed but not published mark their partitions stale: never checkpointed or
committed, they go back to their last checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import math
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError, ProducerFenced
from aiokafka.structs import OffsetAndMetadata

from stream_monitor import __version__
from stream_monitor.config.settings import Settings
from stream_monitor.errors import (
    BatchFailedError,
    EventValidationError,
    MonitorError,
    StreamMonitorError,
)
from stream_monitor.events.alerts import AlertEvent
from stream_monitor.events.codec import EventCodec
from stream_monitor.kafka.access import check_settings
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.kafka.partitioner import KeyPartitioner
from stream_monitor.logs import batch_context, get_logger
from stream_monitor.monitor.model_monitor import Output
from stream_monitor.monitor.reference import ReferenceProfile
from stream_monitor.monitor.registry import MonitorSet, release_memory
from stream_monitor.monitor.snapshot import SnapshotError
from stream_monitor.observability.metrics import WorkerMetrics
from stream_monitor.observability.server import start_worker_endpoints
from stream_monitor.runtime.checkpoint import STATE_MESSAGE_BYTES, Checkpoint, read_checkpoint
from stream_monitor.runtime.merge import Merge
from stream_monitor.runtime.outputs import (
    Processed,
    dead_letter_headers,
    process_records,
    summary_message,
)
from stream_monitor.runtime.topics import ensure_topics
from stream_monitor.runtime.transactions import require_transactions
from stream_monitor.sinks.base import Sink
from stream_monitor.sinks.bus import AlertBus
from stream_monitor.sinks.factory import build_sinks

__all__ = ["Worker", "WorkerStats", "steady_collector"]

log = get_logger("stream_monitor.worker")

# Exit code of a worker stopped with outputs or offsets it could not flush or commit in time.
SHUTDOWN_INCOMPLETE = 3
# Seconds each connection gets to close once the shutdown deadline has passed.
CLOSE_AT_LEAST = 0.2

# Backpressure: pause fetching when a sink queue is this full, resume when it drains below.
PAUSE_AT = 0.5
RESUME_AT = 0.1
# seconds a thread holding the GIL keeps it while another waits (Python's default: 0.005)
SWITCH_INTERVAL = 0.001
# Python's cyclic garbage collector in a worker process: (threshold0, 1, 2), see steady_collector
COLLECTOR_THRESHOLDS = (50_000, 20, 20)
# Seconds of snapshots one turn of the loop may take for periodic checkpoints (at least one)
CHECKPOINT_BUDGET = 0.01


@contextlib.contextmanager
def steady_collector() -> Iterator[None]:
    """Tune the cyclic garbage collector while a worker runs (entered once it is set up).

    With Python's defaults (a young collection every 700 net new container objects), the
    records of a fetch, buffered for a turn or two, outlived two collections and were promoted
    to the oldest generation, and a full collection ran about once a second, each pausing both
    threads for 40 to 60 ms (it walks every object: the imported modules, schemas and buffers)
    while finding nothing to free: the alert latency tail. What exists once the worker is set up
    lives as long as it runs, so it is frozen out of collections, and young collections wait
    for 50,000 new objects: about one full collection in 30 s, of a few milliseconds, measured
    on the benchmark at half rate. The monitors make no reference cycles (a test checks it);
    what they free is freed by reference counting, so memory does not grow from this. On exit
    the collector is as it was (a worker run in-process, as tests do, leaves nothing frozen).
    """
    thresholds = gc.get_threshold()
    # Frozen as they are, without a collection first: in a worker process little is garbage
    # then, and in a process that ran other work (tests running workers in-process) a collection
    # here would report that work's leftovers (a future never retrieved) as this run's output.
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


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


class _Target(NamedTuple):
    """What a commit takes of a partition: its batches ``reached`` (outputs delivered, state
    checkpointed) and the offsets after the last of them."""

    partition: _Partition
    reached: int
    target: dict[str, int]


class _Computing(NamedTuple):
    """A batch's processing under way on the compute thread, and when it was started."""

    future: asyncio.Future[Processed]
    started: float


@dataclass
class _Partition:
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
                future.add_done_callback(_retrieve)
                continue
            exc = None if future.cancelled() else future.exception()
            if error is None and isinstance(exc, KafkaError):
                error = exc
        return error


def _checkpoint_written(
    partition: _Partition, offsets: dict[str, int], sent: asyncio.Future[Any]
) -> None:
    """A checkpoint's delivery is known: written, its offsets may be committed (never going
    back to an older checkpoint's)."""
    if sent.cancelled() or sent.exception() is not None:
        return
    if partition.checkpointed and _covered(offsets, partition.checkpointed):
        return
    partition.checkpointed = offsets


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


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
        self.inputs = (settings.topics.predictions, settings.topics.labels)
        self.partitions: dict[int, _Partition] = {}
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
        self.metrics.attach(self)
        self.http: web.AppRunner | None = None
        self.http_port: int | None = None
        # One thread computes batches in order; the lock keeps rebalances out of a batch.
        self.compute = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-compute")
        self.computing = asyncio.Lock()
        self.fetching: asyncio.Task[None] | None = None  # the fetch under way, if any
        # Commits of the loop and of a revocation (the rebalance runs in aiokafka's task):
        # each pops the marks it committed, so they must not interleave.
        self.committing = asyncio.Lock()
        self.committed_at = time.monotonic()  # at_least_once: the last offset commit
        # at_least_once: a commit waiting for its outputs' acknowledgements while the loop goes
        # on (the wait, then what it will commit per partition)
        self.acknowledging: tuple[asyncio.Task[None], dict[int, _Target]] | None = None
        self.deadline = math.inf  # set by stop(): when the worker must have exited
        # per input partition: the records of batches that made the monitor raise (taken one by
        # one), and the poison events found (dead-lettered and skipped on every replay); both
        # by (topic, offset)
        self.suspects: dict[int, set[tuple[str, int]]] = {}
        self.poison: dict[int, dict[tuple[str, int], MonitorError]] = {}
        # 0: stopped with everything flushed and committed; SHUTDOWN_INCOMPLETE otherwise
        self.exit_code = 0

    def stop(self) -> None:
        """Ask the worker to finish its batch, checkpoint, commit and leave the group, all
        within ``processing.shutdown_timeout`` (see :attr:`exit_code`)."""
        if not self.stopping.is_set():
            self.deadline = time.monotonic() + self.settings.processing.shutdown_timeout
        self.stopping.set()

    def _left(self) -> float:
        """Seconds left before the shutdown deadline."""
        return max(0.0, self.deadline - time.monotonic())

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until :meth:`stop`; always checkpoints, commits and closes on the way out."""
        settings = self.settings
        # The compute thread holds the GIL in its Python parts (window closes, alerts), and the
        # event loop waits for it, up to the switch interval, each time it has a fetch or a send
        # to make: 1 ms instead of Python's 5 keeps it fetching and publishing through a burst
        # of closes and alerts (the latency tail, measured; the throughput is the same).
        sys.setswitchinterval(SWITCH_INTERVAL)
        await check_settings(settings, group=True, transactions=self.exactly_once)
        await ensure_topics(settings)
        if self.exactly_once:
            await require_transactions(settings)
        kafka = self.kafka
        self.producer = AIOKafkaProducer(
            acks="all",
            linger_ms=5,
            # A window's summaries (9 KB each, four per model with three segments) in one
            # request: with 16 KB batches, one or two per partition per round trip, and a burst
            # of closes waited hundreds of milliseconds to leave.
            max_batch_size=1024 * 1024,
            max_request_size=STATE_MESSAGE_BYTES,
            partitioner=KeyPartitioner(),
            **kafka,
        )
        self.consumer = AIOKafkaConsumer(
            group_id=settings.kafka.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_poll_interval_ms=300_000,
            # A busy partition's backlog in a few fetches, not 1 MB at a time.
            max_partition_fetch_bytes=4 * 1024 * 1024,
            # aiokafka keeps one fetch in flight per broker. One for partitions with nothing new
            # (an idle labels topic) is held by the broker for this long, and the predictions
            # that arrive meanwhile wait for it: 500 ms by default, the latency it added.
            fetch_max_wait_ms=20,
            isolation_level="read_committed" if self.exactly_once else "read_uncommitted",
            **kafka,
        )
        await self.producer.start()
        sinks = [
            *build_sinks(settings.sinks, self.producer, settings.topics.alerts),
            *self.extra_sinks,
        ]
        if self.exactly_once:  # Kafka sinks write inside the partitions' transactions
            self.transactional_sinks = [sink for sink in sinks if sink.transactional]
            sinks = [sink for sink in sinks if not sink.transactional]
        self.bus = AlertBus(sinks)
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
            if settings.http.enabled:
                self.http, self.http_port = await start_worker_endpoints(self, settings.http)
                log.info("endpoints", url=f"http://{settings.http.host}:{self.http_port}/metrics")
            await self._loop_until_stopped()
        finally:
            await self._shutdown()

    async def _loop_until_stopped(self) -> None:
        """Run the loop; once stopped, give its batch until the deadline, then cancel it."""
        loop = asyncio.create_task(self._loop(), name="the processing loop")
        stopped = asyncio.create_task(self.stopping.wait())
        try:
            await asyncio.wait({loop, stopped}, return_when=asyncio.FIRST_COMPLETED)
            # Stuck on a broker that does not answer, the batch's outputs may be half sent, so
            # nothing more is checkpointed or committed (it is all replayed on restart).
            await self._by_deadline(loop, "the batch did not finish before the shutdown deadline")
        finally:
            stopped.cancel()

    async def _by_deadline(self, task: asyncio.Task[None], late: str) -> None:
        """Wait for ``task`` until the shutdown deadline; past it, cancel it, log ``late`` and
        set the exit code. What ``task`` raised is raised."""
        await asyncio.wait({task}, timeout=self._left())
        if not task.done():
            log.error(late)
            self.exit_code = SHUTDOWN_INCOMPLETE
            task.cancel()
            await asyncio.wait({task})
        elif not task.cancelled():
            task.result()
        elif not self.stopping.is_set():  # a CancelledError from inside, not a stop
            raise StreamMonitorError(f"{task.get_name()} was cancelled without a stop")

    async def _loop(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    await self._once()
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if self.stopping.is_set() or (task is not None and task.cancelling()):
                        raise
                    # Not a cancellation of ours: a client call gave up that way (seen while
                    # the broker restarts). What it left half done is rolled back to the
                    # checkpoints.
                    log.exception("a Kafka client call was cancelled; rolling back to checkpoints")
                    for number in sorted(self.partitions):
                        await self._recover(number, KafkaError("a client call was cancelled"))
        finally:
            fetching, self.fetching = self.fetching, None
            if fetching is not None:  # what it fetches is not processed: fetched again
                fetching.cancel()
                # done before the consumer is stopped: no fetch of ours outlives it
                await asyncio.wait({fetching}, timeout=1.0)

    async def _once(self) -> None:
        """One turn of the loop: take what the last fetch brought, start the next fetch, process
        what is settled while it runs, commit, checkpoint."""
        self._backpressure()
        fetching, self.fetching = self.fetching, None
        await (fetching if fetching is not None else self._fetch())
        # The next records are fetched (aiokafka unpacks them in Python on this loop) while the
        # compute thread runs the monitors, mostly in native code without the GIL.
        self.fetching = asyncio.create_task(self._fetch(), name="the next fetch")
        await self._turns()
        await self._commit()
        await self._maybe_checkpoint()
        release_memory()  # what the last batches freed, once their outputs are published

    async def _fetch(self) -> None:
        """Fetch and put the records in their partitions' merges at once: records fetched are
        always those after each partition's latest seek (a partition sought meanwhile is a
        new object, and what the old one buffered goes with it)."""
        assert self.consumer is not None  # noqa: S101
        try:
            batches = await self.consumer.getmany(
                timeout_ms=200, max_records=self.settings.processing.batch_max_records
            )
        except KafkaError as exc:
            log.warning("fetch failed, retrying", error=str(exc))
            await asyncio.sleep(1.0)
            return
        for tp, records in batches.items():
            if tp.partition in self.partitions:
                self.partitions[tp.partition].merge.add(tp.topic, records)
            # Else fetched while the partition is being taken (its state restored): taking it
            # seeks both topics, so these come again.

    async def _turns(self) -> None:
        """Process what each partition's merge releases. Every batch that needs no care goes
        to the compute thread at once, which runs them back to back while this loop publishes
        each one's outputs in turn (and the next fetch comes in)."""
        released = await self._released()
        if not released:
            return
        async with self.computing:
            queued: list[tuple[int, _Partition, list[Any], _Computing | None]] = []
            for number, partition, records in released:
                if self.partitions.get(number) is not partition:
                    # Revoked or rolled back meanwhile: if ours again, it was restored and
                    # sought (a new partition object); these records are fetched again.
                    continue
                careful = self.suspects.get(number) or self.poison.get(number)
                early = None if careful else self._compute(partition, records)
                queued.append((number, partition, records, early))
            try:
                while queued:
                    number, partition, records, early = queued.pop(0)
                    try:
                        await self._process_guarded(number, records, early)
                    except KafkaError as exc:
                        if not self.exactly_once:
                            raise
                        await self._recover(number, exc)
                    await asyncio.sleep(0)  # let heartbeats and sinks run
            finally:
                for _, partition, _, early in queued:  # left by what was raised
                    if early is not None:
                        # Its batch is (being) computed but was never published: its state is
                        # ahead of its offsets, so it is never checkpointed or committed, and
                        # goes back to its checkpoint.
                        partition.stale = True

    async def _released(self) -> list[tuple[int, _Partition, list[Any]]]:
        """Per partition with records settled: its number, its state and those records."""
        stale = [number for number, partition in self.partitions.items() if partition.stale]
        for number in stale:  # left behind by a failure (see above): back to its checkpoint
            await self._recover(number, StreamMonitorError("its batch was not published"))
        released: list[tuple[int, _Partition, list[Any]]] = []
        for number in sorted(self.partitions):
            taken = self.partitions.get(number)
            if taken is None:  # taken away while an earlier one awaited
                continue
            records = await self._release(number, taken)
            if records:
                released.append((number, taken, records))
        return released

    async def _release(self, number: int, partition: _Partition) -> list[Any]:
        """What partition ``number``'s merge releases (records whose place in timestamp order is
        settled)."""
        if not len(partition.merge):
            return []
        lagging = {topic for topic in self.inputs if await self._lagging(partition, number, topic)}
        records = partition.merge.release(
            functools.partial(self._may_have_more, partition, lagging)
        )
        if records or not len(partition.merge):  # not held back: no wait under way
            partition.idle_since = partition.held_since = None
            partition.held_logged = False
        else:
            self._held_back(number, partition, lagging)
        return records

    async def _lagging(self, partition: _Partition, number: int, topic: str) -> bool:
        """Whether the broker may hold records of ``topic``'s partition ``number`` not fetched
        yet (or a rebalance or a pause leaves it unknown). ``partition``: its state when the
        turn began (a rebalance may take it away while this awaits)."""
        assert self.consumer is not None  # noqa: S101
        tp = TopicPartition(topic, number)
        if tp not in self.consumer.assignment() or self.paused:
            return True
        end = (
            self.consumer.last_stable_offset(tp)
            if self.exactly_once
            else self.consumer.highwater(tp)
        )
        position = partition.merge.next_offset(topic)
        if end is None or position is None:
            return True
        end = int(end)
        if position < end and not partition.merge.sizes()[topic]:
            # Nothing buffered of it: the consumer may have gone past offsets with no record.
            # (With records buffered, the next turn looks, once they are released.)
            position = await self._past_empty_offsets(partition, number, tp, position)
        return position < end

    async def _past_empty_offsets(
        self, partition: _Partition, number: int, tp: TopicPartition, expected: int
    ) -> int:
        """Where the merge of partition ``number`` stands on ``tp``: ``expected`` (after the
        last record it got), or the consumer's fetch position when that is further. Offsets can
        hold no record for us: transaction markers, aborted records, records deleted by
        retention or compaction before they were read (the consumer then resets to the log
        start). Without this, the other topic would wait for them for ever."""
        assert self.consumer is not None  # noqa: S101
        try:  # immediate unless the position is being reset
            fetched = int(await asyncio.wait_for(self.consumer.position(tp), 0.05))
        except (TimeoutError, KafkaError):
            return expected
        if fetched <= expected or self.partitions.get(number) is not partition:
            return expected
        partition.merge.expect(tp.topic, fetched)
        if fetched - expected > 1:  # more than a transaction marker
            self.stats.skipped += fetched - expected
            log.warning(
                "offsets skipped: the broker holds no record for them any more (deleted by "
                "retention or compaction before they were read, or aborted)",
                topic=tp.topic,
                partition=number,
                offsets=f"{expected}-{fetched - 1}",
            )
        return fetched

    def _held_back(self, number: int, partition: _Partition, lagging: set[str]) -> None:
        """Log once when a partition's records have waited long for the other input topic."""
        assert self.consumer is not None  # noqa: S101
        now = time.monotonic()
        if partition.held_since is None:
            partition.held_since = now
        limit = max(30.0, 2 * self.settings.processing.max_task_idle)
        if partition.held_logged or now - partition.held_since < limit:
            return
        partition.held_logged = True
        where = {}
        for topic in self.inputs:
            tp = TopicPartition(topic, number)
            if tp in self.consumer.assignment():
                where[topic] = {
                    "position": partition.merge.next_offset(topic),
                    "end": self.consumer.highwater(tp),
                    "paused": tp in self.consumer.paused(),
                }
        log.warning(
            "records wait for the other input topic",
            partition=number,
            seconds=round(now - partition.held_since, 1),
            buffered=partition.merge.sizes(),
            lagging=sorted(lagging),
            topics=where,
        )

    def _may_have_more(self, partition: _Partition, lagging: set[str], topic: str) -> bool:
        """Whether records of ``topic`` may still come before what is buffered of the other
        input topic: the broker holds more (``lagging``), or none has come for less than
        ``processing.max_task_idle``."""
        if topic in lagging:
            return True
        idle = self.settings.processing.max_task_idle
        if idle <= 0:
            return False
        now = time.monotonic()
        if partition.idle_since is None:
            partition.idle_since = now
        if now - partition.idle_since < idle:
            return True
        partition.idle_since = None
        return False

    def _backpressure(self) -> None:
        """Pause our partitions while a sink is backed up; resume once it has drained.

        Polling goes on while paused (``getmany`` returns nothing for paused partitions), so the
        worker stays in the group however long a sink is slow.
        """
        assert self.consumer is not None  # noqa: S101
        assert self.bus is not None  # noqa: S101
        load = self.bus.load()
        ours = [tp for tp in self.consumer.assignment() if tp.partition in self.partitions]
        if not self.paused and load >= PAUSE_AT:
            self.paused = True
            self.stats.pauses += 1
            log.warning("a sink is backed up, pausing consumption", queue_load=round(load, 2))
        elif self.paused and load <= RESUME_AT:
            self.paused = False
            self.stats.resumes += 1
            self.consumer.resume(*ours)
            log.info("sinks caught up, resuming consumption")
        if self.paused:  # again each time: a rebalance may have brought new partitions
            self.consumer.pause(*ours)

    async def _shutdown(self) -> None:
        """Flush, checkpoint, commit and close, within the deadline when stopping."""
        if not self.stopping.is_set():  # the loop failed: the same bound from now
            self.stop()
        try:
            if self.exit_code == 0 and self.consumer is not None and self.partitions:
                await self._by_deadline(
                    asyncio.create_task(self._finish()),
                    "flush, checkpoint and commit did not finish before the deadline",
                )
        finally:
            if self.exit_code != 0:
                self._report_uncommitted()
            await self._close()

    async def _finish(self) -> None:
        await self._flush_outputs()
        await self._checkpoint(list(self.partitions))
        await self._commit(force=True)
        if any(p.committed != p.offsets for p in self.partitions.values()):
            self.exit_code = SHUTDOWN_INCOMPLETE  # a commit was refused (rebalance, failure)

    def _report_uncommitted(self) -> None:
        """Log what a restart replays: per partition, the offsets processed and committed."""
        pending = [
            {"partition": n, "processed": dict(p.offsets), "committed": dict(p.committed)}
            for n, p in sorted(self.partitions.items())
            if p.offsets != p.committed
        ]
        log.error(
            "stopped without committing everything; a restart replays from the committed offsets",
            exit_code=self.exit_code,
            uncommitted=pending,
        )

    async def _close(self) -> None:
        """Close everything, each step bounded by the deadline (it may be past: then at once)."""
        # no task of ours outlives the clients
        await self._drop_acknowledging(within=max(self._left(), CLOSE_AT_LEAST))
        steps: list[tuple[str, Any]] = [
            ("partition producer", p.producer.stop)
            for p in self.partitions.values()
            if p.producer is not None
        ]
        if self.consumer is not None:
            steps.append(("consumer", self.consumer.stop))  # leaves the group
        if self.bus is not None:
            steps.append(("alert sinks", self.bus.close))
        if self.producer is not None:
            steps.append(("producer", self.producer.stop))
        for name, close in steps:
            closing = asyncio.create_task(close())
            await asyncio.wait({closing}, timeout=max(self._left(), CLOSE_AT_LEAST))
            if not closing.done():
                log.warning("not closed before the shutdown deadline", what=name)
                closing.cancel()  # not awaited: a client stuck on a dead broker may not yield
                closing.add_done_callback(_retrieve)
                continue
            error = None if closing.cancelled() else closing.exception()
            if isinstance(error, KafkaError):
                log.warning("did not close cleanly", what=name, error=str(error))
            elif error is not None:
                raise error
        if self.http is not None:
            await self.http.cleanup()
            self.http = None
        self.compute.shutdown(wait=self.exit_code == 0)
        log.info("worker stopped", exit_code=self.exit_code, **vars(self.stats))

    # -- rebalances -----------------------------------------------------------------------

    async def partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Checkpoint and commit what is being taken away, then forget it."""
        async with self.computing:  # the batch being computed finishes first
            await self._revoke(revoked)

    async def _revoke(self, revoked: list[TopicPartition]) -> None:
        numbers = sorted({tp.partition for tp in revoked} & set(self.partitions))
        if not numbers:
            return
        try:
            await self._flush_outputs()
            await self._checkpoint(numbers)
            await self._commit(numbers, force=True)
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
                partition = self.partitions.pop(number, None)
                if partition is not None:
                    await _stop_quietly(partition.producer)
        log.info("partitions revoked", partitions=numbers)

    async def partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Restore each partition from its checkpoint and seek right after its offsets.

        Every assigned partition is taken, also one this worker still holds: a rebalance
        resets the consumer's positions to the committed offsets, so state kept across it
        (a revocation that failed) would no longer match what is fetched."""
        for number in sorted({tp.partition for tp in assigned}):
            stale = self.partitions.pop(number, None)
            if stale is not None:
                await _stop_quietly(stale.producer)
            await self._take_until_taken(number)
        self.ready.set()
        log.info("partitions assigned", partitions=sorted(self.partitions))

    async def _take(self, number: int) -> None:
        """Own partition ``number``: fence its previous owner, restore its state, and seek both
        input topics to the checkpoint's offsets (else the committed ones, else the start)."""
        assert self.consumer is not None  # noqa: S101
        topics = self.settings.topics
        partition = _Partition(self._monitor_set(), Merge(topics.predictions, topics.labels))
        if self.exactly_once:
            # Same transactional id as any previous owner: starting it bumps the epoch, fences
            # that owner and aborts its open transaction before we read the checkpoint.
            partition.producer = AIOKafkaProducer(
                transactional_id=self._transactional_id(number),
                acks="all",
                max_request_size=STATE_MESSAGE_BYTES,
                partitioner=KeyPartitioner(),
                **self.kafka,
            )
            await partition.producer.start()
        checkpoint = await read_checkpoint(self.settings, number)
        if checkpoint is not None:
            try:
                partition.monitors.restore(checkpoint.snapshot, self.key)
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
            self.stats.restored += 1
        # Both topics are sought every time: records fetched but not yet merged into the
        # processing order were buffered by the partition object just dropped.
        offsets = dict(checkpoint.offsets) if checkpoint is not None else {}
        for tp in inputs:
            if offsets.get(tp.topic) is None:  # unseen by the state: committed, else the start
                offsets[tp.topic] = await self.consumer.committed(tp)
            if offsets[tp.topic] is None:
                offsets[tp.topic] = (await self.consumer.beginning_offsets([tp]))[tp]
        # Taken and sought at once (no await in between): records the loop fetches from here
        # on are the ones after the seek, and they go to this partition's merge.
        self.partitions[number] = partition
        for tp in inputs:
            self.consumer.seek(tp, offsets[tp.topic])
            partition.merge.expect(tp.topic, offsets[tp.topic])

    def _transactional_id(self, number: int) -> str:
        return f"{self.settings.kafka.group_id}.{self.settings.topics.predictions}.{number}"

    async def _recover(self, number: int, error: Exception) -> None:
        """A transaction or a batch of partition ``number`` failed: drop the partition, or roll
        it back to its last checkpoint and go on."""
        assert self.consumer is not None  # noqa: S101
        partition = self.partitions.pop(number, None)
        if partition is None:
            return
        partition.delivery_error()  # collect what the failure left behind
        await _stop_quietly(partition.producer)
        topics = self.settings.topics
        if isinstance(error, ProducerFenced):
            # Another worker owns this partition now; stop reading it until the rebalance
            # that takes it away reaches us.
            log.warning("partition fenced by its new owner, dropping it", partition=number)
            owned = self.consumer.assignment()
            self.consumer.pause(
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
        self.stats.rollbacks += 1
        log.warning(
            "rolling the partition back to its last checkpoint",
            partition=number,
            error=f"{type(error).__name__}: {error}",
        )
        await self._take_until_taken(number)

    async def _take_until_taken(self, number: int) -> None:
        """:meth:`_take`, retried with backoff while the broker does not answer (reading the
        checkpoint, the committed offsets); a partition assigned but not taken would have its
        records sought back forever."""
        delay = 0.5
        while not self.stopping.is_set():
            try:
                await self._take(number)
            except KafkaError as exc:
                log.warning("cannot take the partition yet", partition=number, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            else:
                return

    # -- what operators see ---------------------------------------------------------------

    def lags(self) -> dict[tuple[str, int], int]:
        """Per input partition owned: records after the next one to read (when known)."""
        if self.consumer is None:
            return {}
        out: dict[tuple[str, int], int] = {}
        for tp in self.consumer.assignment():
            partition = self.partitions.get(tp.partition)
            end = self.consumer.highwater(tp)
            if partition is None or end is None or tp.topic not in partition.offsets:
                continue
            out[(tp.topic, tp.partition)] = max(0, end - partition.offsets[tp.topic])
        return out

    def checkpoint_ages(self) -> dict[int, float]:
        """Seconds since each owned partition was last checkpointed (or taken)."""
        now = time.monotonic()
        return {n: now - p.checkpointed_at for n, p in self.partitions.items()}

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready: partitions assigned, their state restored, lag within ``http.ready_max_lag``."""
        reasons: list[str] = []
        if self.stopping.is_set():
            reasons.append("shutting down")
        if not self.ready.is_set() or self.consumer is None:
            reasons.append("no partition assignment yet")
        else:
            restoring = sorted(
                {tp.partition for tp in self.consumer.assignment()} - set(self.partitions)
            )
            if restoring:
                reasons.append(f"restoring state of partitions {restoring}")
        limit = self.settings.http.ready_max_lag
        for (topic, number), lag in sorted(self.lags().items()):
            if lag > limit:
                reasons.append(f"{topic}[{number}] lags {lag} records (http.ready_max_lag {limit})")
        return not reasons, reasons

    def _monitor_set(self) -> MonitorSet:
        return MonitorSet.from_settings(self.settings, self.references)

    # -- processing -----------------------------------------------------------------------

    async def _process_guarded(
        self, number: int, records: list[Any], early: _Computing | None = None
    ) -> None:
        """:meth:`_process`, with the records of a batch that made the monitor raise taken one
        by one, and those that make it raise dead-lettered instead of crashing the worker.

        ``records``: partition ``number``'s predictions and labels in their merged order;
        ``early``: their computation, already under way (none of them needs care).
        A failed batch may have changed some monitors, so the partition goes back to its last
        checkpoint; on the replay, the failed batch's records are taken one at a time. The one
        that fails is a poison event: the partition goes back once more, and on the replay it
        is dead-lettered (with the class of what the monitor raised) and skipped. The monitors
        never see it, so every run gives the same outputs, whenever it crashed.
        """
        suspects = self.suspects.setdefault(number, set())
        poison = self.poison.setdefault(number, {})

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
                await self._skip(number, record, poison[where])
                continue
            try:
                await self._process(number, [record])
            except BatchFailedError as exc:
                poison[where] = exc.failure
                self.stats.poison += 1
                log.exception(
                    "an event makes the monitor raise; it goes to the dead-letter topic",
                    topic=record.topic,
                    partition=number,
                    offset=record.offset,
                    error=exc.failure.reason,
                )
                await self._recover(number, exc)
                return
        rest = records[one_by_one:]
        if not rest:
            return
        try:
            await self._process(number, rest, early if one_by_one == 0 else None)
        except BatchFailedError as exc:
            suspects.update((record.topic, record.offset) for record in rest)
            log.exception(
                "a batch made the monitor raise; replaying it event by event",
                partition=number,
                offsets=[rest[0].offset, rest[-1].offset],
                error=exc.failure.reason,
            )
            await self._recover(number, exc)

    async def _skip(self, number: int, record: Any, failure: MonitorError) -> None:
        """Dead-letter a poison event and move past it, as a batch of one refused record."""
        assert self.bus is not None  # noqa: S101
        partition = self.partitions[number]
        self.stats.consumed += 1
        await self._dead_letter(number, record, failure)
        partition.offsets[record.topic] = record.offset + 1
        partition.marks.append((self.bus.mark(), dict(partition.offsets)))

    def _compute(self, partition: _Partition, records: list[Any]) -> _Computing:
        """Start processing a partition's batch on the compute thread."""
        labels_topic = self.settings.topics.labels
        is_label = [record.topic == labels_topic for record in records]
        values = [record.value for record in records]
        future = asyncio.get_running_loop().run_in_executor(
            self.compute,
            functools.partial(process_records, self.codec, partition.monitors, values, is_label),
        )
        return _Computing(future, time.perf_counter())

    async def _process(
        self, number: int, records: list[Any], early: _Computing | None = None
    ) -> None:
        """Process a batch (or take ``early``, its computation under way), publish its outputs
        and record its offsets."""
        assert self.bus is not None  # noqa: S101
        partition = self.partitions[number]
        labels_topic = self.settings.topics.labels
        computing = early if early is not None else self._compute(partition, records)
        started = computing.started
        first, last = records[0], records[-1]
        with batch_context(first.topic, number, first.offset, last.offset):
            self.stats.consumed += len(records)
            done = await computing.future
            for index, error in done.rejected:
                await self._dead_letter(number, records[index], error)
            self.stats.processed += len(records) - len(done.rejected)
            for record in records:  # in offset order within each topic
                partition.offsets[record.topic] = record.offset + 1
            await self._publish(number, done.outputs)
            partition.marks.append((self.bus.mark(), dict(partition.offsets)))
        elapsed = time.perf_counter() - started
        predictions_topic = self.settings.topics.predictions
        labelled = sum(record.topic == labels_topic for record in records)
        for topic, counts, size in (
            (predictions_topic, done.models, len(records) - labelled),
            (labels_topic, done.labels, labelled),
        ):
            for model, count in counts.items():
                self.metrics.processed.labels(topic, str(number), model).inc(count)
            if size:
                self.metrics.batch(topic, number, size, elapsed * size / len(records))

    async def _producer_for(self, number: int) -> AIOKafkaProducer:
        """Where partition ``number``'s outputs go: its open transaction, or the shared producer."""
        partition = self.partitions[number]
        if partition.producer is None:
            assert self.producer is not None  # noqa: S101
            return self.producer
        if not partition.in_transaction:
            await partition.producer.begin_transaction()
            partition.in_transaction = True
        return partition.producer

    async def _publish(self, number: int, outputs: list[Output]) -> None:
        assert self.bus is not None  # noqa: S101
        if not outputs:
            return
        producer = await self._producer_for(number)
        metrics = self.settings.topics.metrics
        for output in outputs:
            if isinstance(output, AlertEvent):
                self.stats.alerts += 1
                self.metrics.alert(output)
                if self.exactly_once:
                    for sink in self.transactional_sinks:
                        if sink.accepts(output):
                            self.partitions[number].sent.append(
                                await sink.send_with(producer, output)  # type: ignore[attr-defined]
                            )
                await self.bus.publish(output)
            else:
                self.stats.summaries += 1
                self.metrics.summary(output)
                value, key, headers = summary_message(output)
                self.partitions[number].sent.append(
                    await producer.send(metrics, value, key=key, headers=headers)
                )

    async def _dead_letter(self, number: int, record: Any, error: EventValidationError) -> None:
        producer = await self._producer_for(number)
        self.stats.dead_lettered += 1
        self.metrics.dead_lettered.labels(record.topic, str(record.partition), error.field).inc()
        headers = dead_letter_headers(
            record.headers, record.topic, record.partition, record.offset, error
        )
        self.partitions[number].sent.append(
            await producer.send(
                self.settings.topics.dead_letters, record.value, key=record.key, headers=headers
            )
        )
        log.warning(
            "event dead-lettered", field=error.field, reason=error.reason, offset=record.offset
        )

    async def _flush_outputs(self, *, drain: bool = True) -> None:
        """Wait for the producer's sends; ``drain`` also waits for every sink queue to empty."""
        assert self.producer is not None  # noqa: S101
        assert self.bus is not None  # noqa: S101
        if drain:
            await self.bus.flush()
        else:
            await self.bus.settle()
        await self.producer.flush()

    async def _commit(self, numbers: list[int] | None = None, *, force: bool = False) -> None:
        """Commit what the partitions processed and delivered since their last commit.

        Offsets are committed only once the alerts published before them have been delivered
        (or recorded as failed) by every sink, so a slow sink never loses an alert to a crash;
        meanwhile the loop goes on polling (with partitions paused, see :meth:`_backpressure`).
        ``force`` (revocation, shutdown) first waits for every sink queue to drain.

        At-least-once: once ``processing.commit_interval`` has passed, note the offsets that
        may be committed and wait for the broker's acknowledgement of their outputs in a task;
        the first call after it is done commits them through the consumer (``force`` waits
        here). Exactly-once: commit each partition's transaction (with its checkpoint and
        offsets) once ``processing.commit_interval`` has passed.
        """
        async with self.committing:  # the loop's and a revocation's: one at a time
            await self._commit_now(numbers, force=force)

    async def _commit_now(self, numbers: list[int] | None, *, force: bool) -> None:
        assert self.bus is not None  # noqa: S101
        chosen = sorted(self.partitions if numbers is None else set(numbers) & set(self.partitions))
        now = time.monotonic()
        interval = self.settings.processing.commit_interval
        if not force:  # once per interval: waiting for the broker per batch cost a third
            if self.exactly_once:
                chosen = [n for n in chosen if now - self.partitions[n].committed_at >= interval]
            elif self.acknowledging is not None:
                await self._commit_acknowledged()
                return
            elif now - self.committed_at < interval:
                return
        if force:
            await self._drop_acknowledging()  # what it waits for is committed here, and more
            await self.bus.flush()
        targets = {
            number: _Target(self.partitions[number], *found)
            for number in chosen
            if (found := self._reached(number))
        }
        if self.exactly_once:
            # A transaction holds every output of its partition: all or nothing.
            ready = [n for n, t in targets.items() if t.reached == len(t.partition.marks)]
            await self._commit_transactions(ready)
            return
        self.committed_at = now
        if force:
            await self._flush_outputs(drain=False)
            await self._commit_offsets(targets)
            return
        # The outputs of these batches are sent, not yet acknowledged: the loop goes on while
        # the broker acknowledges them (a burst of alerts takes tens of milliseconds), and a
        # later turn commits once it has.
        waiting = asyncio.create_task(self._flush_outputs(drain=False), name="acknowledgements")
        waiting.add_done_callback(_retrieve)
        self.acknowledging = (waiting, targets)

    async def _drop_acknowledging(self, within: float | None = None) -> None:
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

    async def _commit_acknowledged(self) -> None:
        """Commit what the acknowledgements under way were for, once they are all in."""
        assert self.acknowledging is not None  # noqa: S101
        waiting, targets = self.acknowledging
        if not waiting.done():
            return
        self.acknowledging = None
        waiting.result()  # raised as the flush itself would have
        # Partitions handed over or rolled back meanwhile are new objects: theirs is not ours.
        await self._commit_offsets(
            {n: t for n, t in targets.items() if self.partitions.get(n) is t.partition}
        )

    async def _commit_offsets(self, targets: dict[int, _Target]) -> None:
        """At-least-once: commit ``targets`` (their outputs acknowledged) and drop their marks."""
        assert self.consumer is not None  # noqa: S101
        for number in list(targets):
            error = targets[number].partition.delivery_error()
            if error is not None:  # an output was lost: replay from the last checkpoint
                del targets[number]
                await self._recover(number, error)
        owned = self.consumer.assignment()
        offsets = {
            TopicPartition(topic, number): OffsetAndMetadata(offset, "")
            for number, (partition, _, target) in targets.items()
            if target != partition.committed
            for topic, offset in target.items()
            if TopicPartition(topic, number) in owned
        }
        if offsets:
            try:
                await self.consumer.commit(offsets)
            except CommitFailedError as exc:  # a rebalance is under way: events are replayed
                log.warning("commit failed during a rebalance", error=str(exc))
                return
        for partition, reached, target in targets.values():
            partition.committed = target
            for _ in range(reached):
                partition.marks.popleft()

    def _reached(self, number: int) -> tuple[int, dict[str, int]] | None:
        """How many of partition ``number``'s batches may be committed (their alerts delivered,
        and, at least once, their state checkpointed), and the offsets after the last of them."""
        assert self.bus is not None  # noqa: S101
        partition = self.partitions[number]
        marks = partition.marks
        reached = 0
        while (
            reached < len(marks)
            and self.bus.reached(marks[reached][0])
            and (self.exactly_once or _covered(marks[reached][1], partition.checkpointed))
        ):
            reached += 1
        return (reached, marks[reached - 1][1]) if reached else None

    async def _commit_transactions(self, numbers: list[int]) -> None:
        """Commit the transactions of partitions ``numbers`` (chosen by :meth:`_commit_now`:
        their commit interval passed, or the commit is forced)."""
        assert self.bus is not None  # noqa: S101
        for number in numbers:
            partition = self.partitions[number]
            if partition.stale:
                continue  # a stale partition's open transaction is aborted when it is taken
            try:
                producer = await self._producer_for(number)
                await self._send_checkpoint(producer, number, partition)
                await producer.send_offsets_to_transaction(
                    {
                        TopicPartition(topic, number): offset
                        for topic, offset in partition.offsets.items()
                    },
                    self.settings.kafka.group_id,
                )
                await producer.commit_transaction()
            except KafkaError as exc:
                await self._recover(number, exc)
                continue
            partition.sent.clear()  # the commit succeeded, so every send in it did
            partition.marks.clear()
            partition.in_transaction = False
            partition.committed = dict(partition.offsets)
            partition.committed_at = time.monotonic()
            self.stats.transactions += 1

    async def _maybe_checkpoint(self) -> None:
        assert self.bus is not None  # noqa: S101
        if self.exactly_once:
            return  # every transaction carries its partition's checkpoint
        if not self.bus.reached(self.bus.mark()):
            return  # a checkpoint must not get ahead of alerts still waiting in a sink queue
        interval = self.settings.processing.checkpoint_interval
        started = time.monotonic()
        due = sorted(
            (p.checkpointed_at, n)
            for n, p in self.partitions.items()
            if started - p.checkpointed_at >= interval
        )
        # Oldest first, and only as many as CHECKPOINT_BUDGET allows in one turn (at least one):
        # a snapshot holds the loop and the compute thread (the state must not move under it),
        # and all partitions at once stalled a turn by tens of milliseconds every interval.
        for _, number in due:
            await self._checkpoint([number], wait=False)
            if time.monotonic() - started >= CHECKPOINT_BUDGET:
                break

    async def _checkpoint(self, numbers: list[int], *, wait: bool = True) -> None:
        """At-least-once: write the partitions' checkpoints; the offsets of each may be
        committed once it is written. ``wait``: until they are (revocation, shutdown); else
        the loop goes on, and each counts from its acknowledgement (a flush waits for every
        output sent before it: under load, hundreds of milliseconds the loop would not read)."""
        assert self.producer is not None  # noqa: S101
        if self.exactly_once:
            return
        written: list[tuple[_Partition, dict[str, int], asyncio.Future[Any]]] = []
        for number in numbers:
            partition = self.partitions.get(number)
            if partition is None or not partition.offsets or partition.stale:
                continue
            sent, offsets = await self._send_checkpoint(self.producer, number, partition)
            sent.add_done_callback(functools.partial(_checkpoint_written, partition, offsets))
            written.append((partition, offsets, sent))
        if wait:
            await self.producer.flush()
            for partition, offsets, sent in written:  # now, not when the callbacks run
                if sent.done():
                    _checkpoint_written(partition, offsets, sent)

    async def _send_checkpoint(
        self, producer: AIOKafkaProducer, number: int, partition: _Partition
    ) -> tuple[asyncio.Future[Any], dict[str, int]]:
        """Send the partition's checkpoint; its delivery, and the offsets it holds."""
        checkpoint = Checkpoint(
            number, dict(partition.offsets), partition.monitors.snapshot(self.key)
        )
        sent: asyncio.Future[Any] = await producer.send(
            self.settings.topics.state,
            checkpoint.encode(),
            key=str(number).encode(),
            partition=number,
        )
        partition.sent.append(sent)
        partition.checkpointed_at = time.monotonic()
        self.stats.checkpoints += 1
        return sent, checkpoint.offsets


def _covered(offsets: dict[str, int], checkpointed: dict[str, int]) -> bool:
    """Whether a checkpoint at ``checkpointed`` holds the state after ``offsets``."""
    return all(offset <= checkpointed.get(topic, -1) for topic, offset in offsets.items())


async def _stop_quietly(producer: AIOKafkaProducer | None) -> None:
    """Close a partition's producer; a broker error while closing changes nothing."""
    if producer is None:
        return
    try:
        await producer.stop()
    except KafkaError as exc:
        log.warning("producer did not close cleanly", error=str(exc))
