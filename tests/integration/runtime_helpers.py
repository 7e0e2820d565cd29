"""Helpers for runtime tests: isolated settings, a worker in the background, topic readers."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream_monitor.config import Settings, load_settings
from stream_monitor.runtime.worker import Worker

# Windows small enough for a test's few thousand events.
SMALL_WINDOWS: dict[str, Any] = {
    "default": {
        "warmup_events": 300,
        "window": {"kind": "count", "events": 300},
        "performance": {"reference_labels": 200, "min_labels": 100},
    }
}


def isolated_settings(bootstrap: str, **overrides: Any) -> Settings:
    """Settings whose topics and group belong to this test only."""
    tag = uuid.uuid4().hex[:10]
    data: dict[str, Any] = {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"g-{tag}"},
        "topics": {
            "predictions": f"pred-{tag}",
            "labels": f"lab-{tag}",
            "alerts": f"alerts-{tag}",
            "partitions": 2,
        },
        "processing": {"checkpoint_interval": 1.0, "batch_max_records": 500},
        "http": {"port": 0},
        "logging": {"level": "WARNING"},
        "monitoring": SMALL_WINDOWS,
        "sinks": [{"type": "kafka"}],
    }
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return load_settings(None, data)


async def produce(
    bootstrap: str,
    topic: str,
    records: list[tuple[bytes | None, bytes | None]],
    headers: list[tuple[str, bytes]] | None = None,
    timestamps: list[int] | None = None,
) -> None:
    """Produce ``records`` (key, value) in order; ``timestamps``: their record times (ms)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i, (key, value) in enumerate(records):
            at = timestamps[i] if timestamps else None
            await producer.send(topic, value, key=key, headers=headers, timestamp_ms=at)
        await producer.flush()
    finally:
        await producer.stop()


async def trickle(
    bootstrap: str,
    topic: str,
    records: list[tuple[bytes | None, bytes | None]],
    chunk: int = 200,
    pause: float = 0.25,
) -> None:
    """Produce ``records`` a chunk at a time, so that a worker is mid-stream for a while."""
    for start in range(0, len(records), chunk):
        await produce(bootstrap, topic, records[start : start + chunk])
        await asyncio.sleep(pause)


async def read_all(
    bootstrap: str,
    topic: str,
    idle: float = 2.0,
    *,
    committed: bool = False,
    client: dict[str, Any] | None = None,
) -> list[Any]:
    """Every record of ``topic`` (reads until nothing new arrives for ``idle`` seconds).

    ``committed`` reads with ``isolation_level=read_committed`` (what exactly-once consumers see);
    ``client``: connection arguments (``client_kwargs``) instead of ``bootstrap`` alone.
    """
    consumer = AIOKafkaConsumer(
        topic,
        **(client or {"bootstrap_servers": bootstrap}),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        isolation_level="read_committed" if committed else "read_uncommitted",
    )
    await consumer.start()
    records: list[Any] = []
    try:
        quiet = 0.0
        while quiet < idle:
            batches = await consumer.getmany(timeout_ms=500)
            got = [r for rs in batches.values() for r in rs]
            records += got
            quiet = 0.0 if got else quiet + 0.5
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: (r.partition, r.offset))


async def run_worker_until(
    worker: Worker,
    done: Callable[[], bool] | Callable[[], Awaitable[bool]],
    timeout: float = 60,  # noqa: ASYNC109 - a test helper's overall budget
) -> None:
    """Run ``worker`` until ``done()`` holds, then stop it gracefully."""
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(timeout):
            while True:
                if task.done():
                    task.result()
                result = done()
                if isinstance(result, Awaitable):
                    result = await result
                if result:
                    break
                await asyncio.sleep(0.2)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def run_with_config(config: dict[str, Any], path: Path) -> asyncio.subprocess.Process:
    """`stream-monitor run --config PATH` as a real process, ``config`` written to ``path`` as
    YAML, none of the test environment's STREAM_MONITOR_ variables; output on its stdout."""
    await asyncio.to_thread(path.write_text, yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_MONITOR_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stream_monitor",
        "run",
        "--config",
        str(path),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
