"""`stream-monitor broker start/stop` really start brokers that clients can use."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from typer.testing import CliRunner

from stream_monitor.cli import app
from stream_monitor.devtools.broker import process

runner = CliRunner()


async def produce_and_consume(bootstrap: str) -> list[bytes]:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    for i in range(5):
        await producer.send_and_wait(topic, f"m{i}".encode())
    await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id="smoke", auto_offset_reset="earliest"
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(values) < 5:
                batches = await consumer.getmany(timeout_ms=500)
                values.extend(r.value for records in batches.values() for r in records)
    finally:
        await consumer.stop()
    return values


@pytest.mark.parametrize("kind", ["tansu", pytest.param("kafka", marks=pytest.mark.slow)])
async def test_broker_start_status_stop(kind: str) -> None:
    if (
        kind == "kafka"
        and shutil.which("java") is None
        and not os.environ.get("STREAM_MONITOR_REQUIRE_BROKER")
    ):
        pytest.skip("java is needed to run Apache Kafka (install OpenJDK 17+)")
    port = process.free_port()
    result = runner.invoke(app, ["broker", "start", "--kind", kind, "--port", str(port)])
    assert result.exit_code == 0, result.output
    logs = (process.run_dir_for(kind, port) / "data").resolve()
    try:
        assert f"127.0.0.1:{port}" in result.output
        if kind == "kafka" and process.memory_dir() is not None:
            assert logs.parent == process.memory_dir()  # a throwaway broker's logs in memory
        status = runner.invoke(app, ["broker", "status"])
        assert f"{kind}\t127.0.0.1:{port}" in status.output
        assert await produce_and_consume(f"127.0.0.1:{port}") == [
            f"m{i}".encode() for i in range(5)
        ]
        before = [b.pid for b in process.running_brokers() if b.port == port]
        restarted = runner.invoke(app, ["broker", "restart", "--port", str(port)])
        assert restarted.exit_code == 0, restarted.output
        after = [b.pid for b in process.running_brokers() if b.port == port]
        assert len(after) == 1
        assert after != before  # a new process on the same port
        assert await produce_and_consume(f"127.0.0.1:{port}") == [
            f"m{i}".encode() for i in range(5)
        ]
    finally:
        stopped = runner.invoke(app, ["broker", "stop", "--port", str(port)])
    assert f"stopped {kind} on 127.0.0.1:{port}" in stopped.output
    assert all(b.port != port for b in process.running_brokers())
    assert not logs.exists()


def test_restart_without_a_broker_on_that_port_says_so() -> None:
    port = process.free_port()
    result = runner.invoke(app, ["broker", "restart", "--port", str(port)])
    assert result.exit_code == 1
    assert f"no running broker on port {port}" in result.output
