"""Topics the runtime needs: created when configured to be, else checked, with clear errors."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream_monitor.config.settings import Settings
from stream_monitor.errors import StreamMonitorError
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.runtime.checkpoint import STATE_MESSAGE_BYTES

__all__ = ["TopicError", "ensure_topics"]


class TopicError(StreamMonitorError):
    """A topic the monitor needs is missing and auto-creation is off."""


async def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create missing topics (``topics.auto_create``) or fail; returns partitions per topic."""
    topics = settings.topics
    wanted = {
        topics.predictions: {},
        topics.labels: {},
        topics.alerts: {},
        topics.metrics: {},
        topics.dead_letters: {},
        topics.state: {
            "cleanup.policy": "compact",
            "min.cleanable.dirty.ratio": "0.1",
            "max.message.bytes": str(STATE_MESSAGE_BYTES),
        },
    }
    admin = AIOKafkaAdminClient(**client_kwargs(settings.kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if missing and not topics.auto_create:
            raise TopicError(
                f"topics {', '.join(sorted(missing))} do not exist on "
                f"{settings.kafka.bootstrap_servers}; create them or set topics.auto_create: true"
            )
        if missing:
            requests = [
                NewTopic(
                    name,
                    topics.partitions,
                    topics.replication_factor,
                    topic_configs=wanted[name] or None,
                )
                for name in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                await admin.create_topics(requests)
        return await _ready(admin, list(wanted))
    finally:
        await admin.close()


async def _ready(
    admin: AIOKafkaAdminClient, names: list[str], budget: float = 15.0
) -> dict[str, int]:
    """Partitions per topic once the broker's metadata has every topic with a leader for each
    partition. A topic just created can be missing from it for a moment; a consumer group that
    joined then would be assigned none of its partitions until its next metadata refresh
    (minutes), which was seen as a worker given no partition on a fresh broker."""
    deadline = asyncio.get_running_loop().time() + budget
    while True:
        described = await admin.describe_topics(names)
        ready = all(
            t["error_code"] == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        )
        if ready or asyncio.get_running_loop().time() > deadline:
            return {t["topic"]: len(t["partitions"]) for t in described}
        await asyncio.sleep(0.1)
