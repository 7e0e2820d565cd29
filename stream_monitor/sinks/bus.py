"""The alert bus (observer pattern): sinks subscribe; each gets its own queue and worker.

A slow or failing sink never blocks the others: each sink drains its own bounded queue, retries
with exponential backoff and jitter, and after the last retry records the alert as failed
(logged at error with the alert, counted), never silently dropped. When a sink's queue is full,
``publish`` waits, and the worker pauses its partitions while any queue is half full or more
(see :meth:`load`), so a slow sink holds back consumption instead of growing memory.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

from stream_monitor.events.alerts import AlertEvent
from stream_monitor.logs import get_logger
from stream_monitor.sinks.base import Sink

__all__ = ["AlertBus"]

log = get_logger("stream_monitor.sinks")


@dataclass
class _Subscription:
    sink: Sink
    queue: asyncio.Queue[AlertEvent]
    retries: int
    backoff: float
    task: asyncio.Task[None] | None = None
    counts: Counter[str] = field(default_factory=Counter)
    accepted: int = 0  # alerts queued so far
    finished: int = 0  # alerts delivered or recorded as failed so far (queues are FIFO)


class AlertBus:
    """Fans alerts out to the subscribed sinks."""

    def __init__(self, sinks: list[Sink] | None = None, seed: int | None = None) -> None:
        self.subscriptions: list[_Subscription] = []
        self._jitter = random.Random(seed)  # noqa: S311 - jitter, not security
        for sink in sinks or []:
            self.subscribe(sink)

    def subscribe(self, sink: Sink) -> None:
        """Add a sink; it receives the alerts its filters accept from now on."""
        spec = sink.spec
        self.subscriptions.append(
            _Subscription(sink, asyncio.Queue(spec.queue_size), spec.retries, spec.backoff)
        )

    async def start(self) -> None:
        """Start one delivery worker per sink."""
        for sub in self.subscriptions:
            if sub.task is None:
                sub.task = asyncio.create_task(self._deliver(sub), name=f"sink-{sub.sink.name}")

    async def publish(self, alert: AlertEvent) -> None:
        """Queue the alert for every sink that accepts it (waits while a queue is full)."""
        for sub in self.subscriptions:
            if sub.sink.accepts(alert):
                await sub.queue.put(alert)
                sub.accepted += 1

    def mark(self) -> tuple[int, ...]:
        """A position in every sink's stream of alerts: what has been published up to now."""
        return tuple(sub.accepted for sub in self.subscriptions)

    def reached(self, mark: tuple[int, ...]) -> bool:
        """True once every alert published before ``mark`` is delivered or recorded as failed."""
        return all(sub.finished >= n for sub, n in zip(self.subscriptions, mark, strict=True))

    async def settle(self) -> None:
        """Make finished deliveries durable (``Sink.flush``) without waiting for the queues."""
        for sub in self.subscriptions:
            await sub.sink.flush()

    def load(self) -> float:
        """How full the fullest sink queue is, from 0.0 (all empty) to 1.0 (one is full)."""
        return max(
            (sub.queue.qsize() / sub.queue.maxsize for sub in self.subscriptions), default=0.0
        )

    async def flush(self) -> None:
        """Wait until every queued alert is delivered or recorded as failed; flush sinks."""
        for sub in self.subscriptions:
            await sub.queue.join()
            await sub.sink.flush()

    async def close(self) -> None:
        """Deliver what is queued, stop the workers and close the sinks."""
        await self.flush()
        for sub in self.subscriptions:
            if sub.task is not None:
                sub.task.cancel()
                await asyncio.gather(sub.task, return_exceptions=True)
            await sub.sink.close()

    def stats(self) -> dict[str, dict[str, int]]:
        """Per sink: delivered, retried and failed counts."""
        return {sub.sink.name: dict(sub.counts) for sub in self.subscriptions}

    async def _deliver(self, sub: _Subscription) -> None:
        while True:
            alert = await sub.queue.get()
            try:
                await self._deliver_one(sub, alert)
            finally:
                sub.finished += 1
                sub.queue.task_done()

    async def _deliver_one(self, sub: _Subscription, alert: AlertEvent) -> None:
        delay = sub.backoff
        for attempt in range(sub.retries + 1):
            try:
                await sub.sink.publish(alert)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any sink failure is retried the same way
                if attempt == sub.retries:
                    sub.counts["failed"] += 1
                    log.error(  # noqa: TRY400 - the alert is the payload, not a traceback
                        "alert delivery failed",
                        sink=sub.sink.name,
                        attempts=attempt + 1,
                        error=f"{type(exc).__name__}: {exc}",
                        alert=alert.model_dump(mode="json"),
                    )
                    return
                sub.counts["retried"] += 1
                await asyncio.sleep(delay * (0.5 + self._jitter.random()))
                delay *= 2
            else:
                sub.counts["delivered"] += 1
                return
