"""The Faust adapter on the real broker: same summaries and alert ids as the native runtime,
also across a kill -9 and restart of the Faust worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stream_monitor.runtime.topics import ensure_topics

from .runtime_helpers import isolated_settings
from .test_failures import (
    environment,
    kill_9_mid_stream_then_restart,
    outputs,
    reference_run,
    wait_for_summaries,
)

pytest.importorskip("faust", reason="install the faust extra: pip install -e '.[faust]'")


def faust_worker(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """`faust -A stream_monitor.faust.app worker`, its output appended to faust.log in ``cwd``."""
    with (cwd / "faust.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", "stream_monitor.faust.app", "worker"],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def test_faust_worker_matches_the_native_runtime_across_a_kill_9(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    expected_summaries, expected_alerts = await reference_run(kafka_bootstrap)
    assert expected_alerts
    settings = isolated_settings(kafka_bootstrap)
    await ensure_topics(settings)
    env = environment(settings)
    await kill_9_mid_stream_then_restart(
        kafka_bootstrap,
        settings,
        lambda: faust_worker(env, tmp_path),
        lambda n: wait_for_summaries(kafka_bootstrap, settings, n, budget=150),
        len(expected_summaries),
        warmup=8.0,  # Faust joins the group and recovers its (empty) table
        pause=0.5,
    )
    summaries, alerts = await outputs(kafka_bootstrap, settings)
    assert summaries == expected_summaries  # byte-identical window summaries
    assert alerts == expected_alerts  # the same alert ids


async def test_records_the_stream_skipped_are_read_back_from_the_partition(
    kafka_bootstrap: str,
) -> None:
    from types import SimpleNamespace

    from aiokafka import AIOKafkaProducer

    from stream_monitor.faust.adapter import _Partition, create_app
    from stream_monitor.monitor import MonitorSet

    settings = isolated_settings(kafka_bootstrap)
    await ensure_topics(settings)
    topic = settings.topics.predictions
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"v{i}".encode(), partition=0)
    finally:
        await producer.stop()
    _, monitor = create_app(settings)
    partition = _Partition(MonitorSet.from_settings(settings), {topic: 2})
    delivered = [
        SimpleNamespace(topic=topic, offset=o, value=f"v{o}".encode()) for o in (1, 2, 3, 7, 8)
    ]
    fresh = await monitor._fresh(0, partition, delivered)
    # 1 is already in the state; 4 to 6 were skipped by the stream and are read back
    assert [m.offset for m in fresh] == [2, 3, 4, 5, 6, 7, 8]
    assert [m.value for m in fresh] == [f"v{o}".encode() for o in range(2, 9)]
