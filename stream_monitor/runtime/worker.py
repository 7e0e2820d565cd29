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
loop fetches and publishes meanwhile.

The worker is a few rooms around one shared :class:`~stream_monitor.runtime.state.WorkerContext`:
the consume loop (``consume``), batch processing (``processing``), assignment and rebalances
(``assignment``), the commit protocol (``commits``), checkpoints (``checkpointing``) and
publishing with dead letters (``publishing``). This module starts, wires and stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from stream_monitor import __version__
from stream_monitor.config.settings import Settings
from stream_monitor.errors import StreamMonitorError
from stream_monitor.kafka.access import check_settings
from stream_monitor.kafka.partitioner import KeyPartitioner
from stream_monitor.logs import get_logger
from stream_monitor.monitor.reference import ReferenceProfile
from stream_monitor.observability.metrics import WorkerMetrics
from stream_monitor.observability.server import start_worker_endpoints
from stream_monitor.runtime.assignment import Assignment, Listener
from stream_monitor.runtime.checkpoint import STATE_MESSAGE_BYTES
from stream_monitor.runtime.checkpointing import Checkpointer
from stream_monitor.runtime.commits import Committer
from stream_monitor.runtime.consume import ConsumeLoop
from stream_monitor.runtime.processing import Processor
from stream_monitor.runtime.publishing import Publisher
from stream_monitor.runtime.state import PartitionState, WorkerContext, WorkerStats, retrieve
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
# seconds a thread holding the GIL keeps it while another waits (Python's default: 0.005)
SWITCH_INTERVAL = 0.001
# Python's cyclic garbage collector in a worker process: (threshold0, 1, 2), see steady_collector
COLLECTOR_THRESHOLDS = (50_000, 20, 20)


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


class Worker:
    """One stream-monitor worker process (run several with the same group id to scale out)."""

    def __init__(
        self,
        settings: Settings,
        references: dict[str, ReferenceProfile] | None = None,
        sinks: list[Sink] | None = None,
    ) -> None:
        self.settings = settings
        self.extra_sinks = sinks or []
        self.ctx = ctx = WorkerContext(settings, references)
        ctx.metrics.attach(self)
        self.publisher = Publisher(ctx)
        self.checkpointer = Checkpointer(ctx)
        self.assignment = Assignment(ctx, self._settle)
        recover = self.assignment.recover
        self.committer = Committer(ctx, self.publisher, self.checkpointer, recover)
        self.processor = Processor(ctx, self.publisher, recover)
        self.loop = ConsumeLoop(ctx, self.processor, self.committer, self.checkpointer, recover)
        self.http: web.AppRunner | None = None
        self.http_port: int | None = None
        # 0: stopped with everything flushed and committed; SHUTDOWN_INCOMPLETE otherwise
        self.exit_code = 0

    # The shared state, as operators and tests read it.
    @property
    def partitions(self) -> dict[int, PartitionState]:
        """The input partitions owned, by number."""
        return self.ctx.partitions

    @property
    def stats(self) -> WorkerStats:
        """Counters of the worker's life."""
        return self.ctx.stats

    @property
    def ready(self) -> asyncio.Event:
        """Set once the first assignment has been taken."""
        return self.ctx.ready

    @property
    def stopping(self) -> asyncio.Event:
        """Set by :meth:`stop`."""
        return self.ctx.stopping

    @property
    def metrics(self) -> WorkerMetrics:
        """The worker's Prometheus metrics."""
        return self.ctx.metrics

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        """The group consumer (once running)."""
        return self.ctx.consumer

    @property
    def producer(self) -> AIOKafkaProducer | None:
        """The shared producer (once running)."""
        return self.ctx.producer

    @property
    def bus(self) -> AlertBus | None:
        """The alert bus (once running)."""
        return self.ctx.bus

    def stop(self) -> None:
        """Ask the worker to finish its batch, checkpoint, commit and leave the group, all
        within ``processing.shutdown_timeout`` (see :attr:`exit_code`)."""
        if not self.ctx.stopping.is_set():
            self.ctx.deadline = time.monotonic() + self.settings.processing.shutdown_timeout
        self.ctx.stopping.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until :meth:`stop`; always checkpoints, commits and closes on the way out."""
        settings = self.settings
        # The compute thread holds the GIL in its Python parts (window closes, alerts), and the
        # event loop waits for it, up to the switch interval, each time it has a fetch or a send
        # to make: 1 ms instead of Python's 5 keeps it fetching and publishing through a burst
        # of closes and alerts (the latency tail, measured; the throughput is the same).
        sys.setswitchinterval(SWITCH_INTERVAL)
        ctx = self.ctx
        await check_settings(settings, group=True, transactions=ctx.exactly_once)
        await ensure_topics(settings)
        if ctx.exactly_once:
            await require_transactions(settings)
        kafka = ctx.kafka
        ctx.producer = AIOKafkaProducer(
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
        ctx.consumer = AIOKafkaConsumer(
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
            isolation_level="read_committed" if ctx.exactly_once else "read_uncommitted",
            **kafka,
        )
        await ctx.producer.start()
        sinks = [
            *build_sinks(settings.sinks, ctx.producer, settings.topics.alerts),
            *self.extra_sinks,
        ]
        if ctx.exactly_once:  # Kafka sinks write inside the partitions' transactions
            ctx.transactional_sinks = [sink for sink in sinks if sink.transactional]
            sinks = [sink for sink in sinks if not sink.transactional]
        ctx.bus = AlertBus(sinks)
        await ctx.bus.start()
        await ctx.consumer.start()
        ctx.consumer.subscribe(
            [settings.topics.predictions, settings.topics.labels],
            listener=Listener(self.assignment),
        )
        log.info(
            "worker started",
            group_id=settings.kafka.group_id,
            version=__version__,
            guarantee=settings.processing.guarantee,
        )
        try:
            if settings.http.enabled:
                self.http, self.http_port = await start_worker_endpoints(
                    self, self.metrics, settings.http
                )
                log.info("endpoints", url=f"http://{settings.http.host}:{self.http_port}/metrics")
            await self._loop_until_stopped()
        finally:
            await self._shutdown()

    async def _loop_until_stopped(self) -> None:
        """Run the loop; once stopped, give its batch until the deadline, then cancel it."""
        loop = asyncio.create_task(self.loop.run(), name="the processing loop")
        stopped = asyncio.create_task(self.ctx.stopping.wait())
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
        await asyncio.wait({task}, timeout=self.ctx.left())
        if not task.done():
            log.error(late)
            self.exit_code = SHUTDOWN_INCOMPLETE
            task.cancel()
            await asyncio.wait({task})
        elif not task.cancelled():
            task.result()
        elif not self.ctx.stopping.is_set():  # a CancelledError from inside, not a stop
            raise StreamMonitorError(f"{task.get_name()} was cancelled without a stop")

    async def _shutdown(self) -> None:
        """Flush, checkpoint, commit and close, within the deadline when stopping."""
        if not self.ctx.stopping.is_set():  # the loop failed: the same bound from now
            self.stop()
        try:
            if self.exit_code == 0 and self.ctx.consumer is not None and self.ctx.partitions:
                await self._by_deadline(
                    asyncio.create_task(self._finish()),
                    "flush, checkpoint and commit did not finish before the deadline",
                )
        finally:
            if self.exit_code != 0:
                self._report_uncommitted()
            await self._close()

    async def _finish(self) -> None:
        await self._settle(None)
        if any(p.committed != p.offsets for p in self.ctx.partitions.values()):
            self.exit_code = SHUTDOWN_INCOMPLETE  # a commit was refused (rebalance, failure)

    async def _settle(self, numbers: list[int] | None) -> None:
        """Flush the outputs, checkpoint and commit partitions ``numbers`` (None: all), as
        before a revocation or at a stop."""
        await self.publisher.flush()
        await self.checkpointer.checkpoint(
            list(self.ctx.partitions) if numbers is None else numbers
        )
        await self.committer.commit(numbers, force=True)

    def _report_uncommitted(self) -> None:
        """Log what a restart replays: per partition, the offsets processed and committed."""
        pending = [
            {"partition": n, "processed": dict(p.offsets), "committed": dict(p.committed)}
            for n, p in sorted(self.ctx.partitions.items())
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
        ctx = self.ctx
        await self.committer.drop_acknowledging(within=max(ctx.left(), CLOSE_AT_LEAST))
        steps: list[tuple[str, Any]] = [
            ("partition producer", p.producer.stop)
            for p in ctx.partitions.values()
            if p.producer is not None
        ]
        if ctx.consumer is not None:
            steps.append(("consumer", ctx.consumer.stop))  # leaves the group
        if ctx.bus is not None:
            steps.append(("alert sinks", ctx.bus.close))
        if ctx.producer is not None:
            steps.append(("producer", ctx.producer.stop))
        for name, close in steps:
            closing = asyncio.create_task(close())
            await asyncio.wait({closing}, timeout=max(ctx.left(), CLOSE_AT_LEAST))
            if not closing.done():
                log.warning("not closed before the shutdown deadline", what=name)
                closing.cancel()  # not awaited: a client stuck on a dead broker may not yield
                closing.add_done_callback(retrieve)
                continue
            error = None if closing.cancelled() else closing.exception()
            if isinstance(error, KafkaError):
                log.warning("did not close cleanly", what=name, error=str(error))
            elif error is not None:
                raise error
        if self.http is not None:
            await self.http.cleanup()
            self.http = None
        ctx.compute.shutdown(wait=self.exit_code == 0)
        log.info("worker stopped", exit_code=self.exit_code, **vars(ctx.stats))

    # -- what operators see ---------------------------------------------------------------

    def lags(self) -> dict[tuple[str, int], int]:
        """Per input partition owned: records after the next one to read (when known)."""
        consumer = self.ctx.consumer
        if consumer is None:
            return {}
        out: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            partition = self.ctx.partitions.get(tp.partition)
            end = consumer.highwater(tp)
            if partition is None or end is None or tp.topic not in partition.offsets:
                continue
            out[(tp.topic, tp.partition)] = max(0, end - partition.offsets[tp.topic])
        return out

    def checkpoint_ages(self) -> dict[int, float]:
        """Seconds since each owned partition was last checkpointed (or taken)."""
        now = time.monotonic()
        return {n: now - p.checkpointed_at for n, p in self.ctx.partitions.items()}

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready: partitions assigned, their state restored, lag within ``http.ready_max_lag``."""
        reasons: list[str] = []
        ctx = self.ctx
        if ctx.stopping.is_set():
            reasons.append("shutting down")
        if not ctx.ready.is_set() or ctx.consumer is None:
            reasons.append("no partition assignment yet")
        else:
            restoring = sorted(
                {tp.partition for tp in ctx.consumer.assignment()} - set(ctx.partitions)
            )
            if restoring:
                reasons.append(f"restoring state of partitions {restoring}")
        limit = self.settings.http.ready_max_lag
        for (topic, number), lag in sorted(self.lags().items()):
            if lag > limit:
                reasons.append(f"{topic}[{number}] lags {lag} records (http.ready_max_lag {limit})")
        return not reasons, reasons
