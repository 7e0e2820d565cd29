"""A real Kafka broker for integration tests.

Order: ``STREAM_MONITOR_TEST_BOOTSTRAP`` if set (``make test`` starts Apache Kafka and sets it);
else a testcontainers Kafka when a Docker engine answers; else the tests are skipped with a
message saying how to get a broker. With ``STREAM_MONITOR_REQUIRE_BROKER=1`` (CI) a missing broker
fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

HOW_TO_GET_A_BROKER = (
    "no Kafka broker for integration tests: run `make test` (starts one), or "
    "`stream-monitor broker start --kind kafka --port 19092` and "
    "`export STREAM_MONITOR_TEST_BOOTSTRAP=127.0.0.1:19092`, or start a Docker engine"
)


def _answers(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            return True
    except OSError:
        return False


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run([docker, "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _no_broker(reason: str) -> None:
    if os.environ.get("STREAM_MONITOR_REQUIRE_BROKER") == "1":
        pytest.fail(f"{reason} (STREAM_MONITOR_REQUIRE_BROKER=1, so this fails)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a real Kafka broker."""
    configured = os.environ.get("STREAM_MONITOR_TEST_BOOTSTRAP")
    if configured:
        if not _answers(configured):
            _no_broker(f"STREAM_MONITOR_TEST_BOOTSTRAP={configured} does not answer")
        yield configured
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    _no_broker(HOW_TO_GET_A_BROKER)


TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def new_topic(kafka_bootstrap: str) -> AsyncIterator[TopicFactory]:
    """Create uniquely named topics for one test; they are deleted afterwards."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    created: list[str] = []

    async def make(prefix: str = "t", partitions: int = 1, **configs: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or None)])
        created.append(name)
        return name

    try:
        yield make
    finally:
        if created:
            await admin.delete_topics(created)
        await admin.close()


@pytest.fixture
def group_id() -> str:
    """A consumer group id no other test uses."""
    return f"g-{uuid.uuid4().hex[:12]}"
