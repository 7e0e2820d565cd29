"""The chaos run's cluster side: the webhook endpoint that fails and stalls on schedule, the
input topics, the worker processes started and killed, the paced producer, and reading the
outputs back once every offset is committed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream_monitor.config.settings import Settings

__all__ = ["Webhook", "Workers", "committed_all", "create_inputs", "produce", "read_topic"]


class Webhook:
    """The webhook sink's endpoint: answers, fails (HTTP 500) or stalls, as the schedule says."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: Counter[str] = Counter()
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.runner = web.AppRunner(app)
        self.url = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def _hook(self, request: web.Request) -> web.Response:
        await request.read()
        if self.mode == "armed":
            self.mode = "fail"
            loop = asyncio.get_running_loop()
            loop.call_later(8, setattr, self, "mode", "stall")
            loop.call_later(16, setattr, self, "mode", "ok")
        mode = self.mode
        self.requests[mode] += 1
        if mode == "stall":
            await asyncio.sleep(30)
        if mode != "ok":
            return web.Response(status=500, text="chaos")
        return web.Response(status=200, text="ok")

    async def stop(self) -> None:
        await self.runner.cleanup()


async def create_inputs(settings: Settings) -> None:
    """The input topics, kept whatever their records' age: the records carry event times days
    in the past (the same every run), and the default retention of 7 days would let the broker
    delete them in the middle of a run (the consumer then skips to the new log start, silently
    for lack of records: what looked like a stalled worker in the long run)."""
    topics = settings.topics
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(name, topics.partitions, 1, topic_configs={"retention.ms": "-1"})
                for name in (topics.predictions, topics.labels)
            ]
        )
    finally:
        await admin.close()


class Workers:
    """The ``stream-monitor run`` processes of the run, each with its own log file."""

    def __init__(self, config: Path, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_MONITOR_")}
        self.running: list[tuple[int, subprocess.Popen[bytes]]] = []
        self.started = 0
        self.crashed: list[str] = []  # "worker N: exit code C" of those that exited by themselves

    def start(self) -> None:
        self.started += 1
        with (self.folder / f"worker-{self.started}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "stream_monitor", "run", "--config", str(self.config)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.running.append((self.started, process))

    def signal(self, index: int, sig: signal.Signals) -> int:
        """Send ``sig`` to a running worker and wait for it (a SIGTERMed one within its
        shutdown bound); its exit code."""
        _, process = self.running.pop(index)
        process.send_signal(sig)
        if sig == signal.SIGTERM:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:  # pragma: no cover - past the shutdown bound
                process.kill()
        return process.wait()

    def reap(self) -> int:
        """Forget workers that exited on their own; how many did (each is a crash: only the
        schedule stops workers)."""
        exited = [(n, p) for n, p in self.running if p.poll() is not None]
        self.running = [(n, p) for n, p in self.running if p.poll() is None]
        self.crashed += [
            f"worker {n}: exit code {p.returncode}: {self.last_lines(n)}" for n, p in exited
        ]
        return len(exited)

    def last_lines(self, number: int, count: int = 3) -> str:
        """The last lines worker ``number`` logged (what it said before it exited)."""
        lines = (self.folder / f"worker-{number}.log").read_text(errors="replace").splitlines()
        return " | ".join(line.strip() for line in lines[-count:])

    def stop_all(self) -> int:
        """SIGTERM every worker; how many did not exit with code 0 (everything committed)."""
        failed = 0
        while self.running:
            failed += self.signal(0, signal.SIGTERM) != 0
        return failed


# -- the run ----------------------------------------------------------------------------------


async def produce(
    settings: Settings,
    records: list[tuple[int, int, str, bytes, bytes]],
    rate: float,
    hold: asyncio.Event,
    malformed: set[tuple[str, int, int]],
) -> None:
    """Every record, in order, to its topic with its event time as timestamp, at ``rate``;
    holds still while ``hold`` is clear. Idempotent, one batch in flight: order is kept."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=60_000,
    )
    await producer.start()
    topics = {
        "prediction": settings.topics.predictions,
        "bad-prediction": settings.topics.predictions,
        "label": settings.topics.labels,
        "bad-label": settings.topics.labels,
    }
    try:
        chunk = 2_000
        started = time.monotonic()
        for first in range(0, len(records), chunk):
            await hold.wait()
            pending = []
            for at, _, kind, key, value in records[first : first + chunk]:
                future = await producer.send(topics[kind], value, key=key, timestamp_ms=at)
                pending.append((kind, future))
            for kind, future in pending:
                meta = await future
                if kind.startswith("bad-"):
                    malformed.add((meta.topic, meta.partition, meta.offset))
            ahead = (first + chunk) / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        await producer.stop()


async def committed_all(settings: Settings) -> bool:
    """Whether the group has committed every input partition up to its end."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in (settings.topics.predictions, settings.topics.labels)
            for p in range(settings.topics.partitions)
        ]
        ends = await consumer.end_offsets(tps)
        try:
            offsets = await admin.list_consumer_group_offsets(settings.kafka.group_id)
        except Exception:  # noqa: BLE001 - no coordinator yet: nothing committed
            return False
        done = {tp: meta.offset for tp, meta in offsets.items()}
        return all(done.get(tp, 0) >= ends[tp] for tp in tps)  # an empty one is never committed
    finally:
        await consumer.stop()
        await admin.close()


async def read_topic(bootstrap: str, topic: str, *, committed: bool) -> list[Any]:
    """Every record of ``topic`` up to its end now (its stable end when ``committed``)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed" if committed else "read_uncommitted",
    )
    await consumer.start()
    try:
        out: list[Any] = []
        ends: dict[TopicPartition, int] | None = None
        for _ in range(600):  # at most about 5 minutes
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            out += [r for rs in batches.values() for r in rs]
            tps = consumer.assignment()
            if not tps:
                continue
            if ends is None:
                ends = await consumer.end_offsets(list(tps))
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= ends[tp] for tp in tps):
                return out
        raise TimeoutError(f"{topic} not read to its end")
    finally:
        await consumer.stop()
