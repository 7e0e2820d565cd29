"""Startup check for exactly-once: does the broker really run Kafka transactions?

Advertising the transaction APIs is not enough (some Kafka-compatible brokers list them and then
refuse ``InitProducerId`` with a transactional id), so the check starts a transactional producer
and commits one empty transaction, within the configured request timeout.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from stream_monitor.config.settings import Settings
from stream_monitor.errors import StreamMonitorError
from stream_monitor.kafka.connection import client_kwargs

__all__ = ["require_transactions"]


async def require_transactions(settings: Settings) -> None:
    """Raise :class:`StreamMonitorError` when the brokers cannot run a transaction."""
    kafka = settings.kafka
    producer = AIOKafkaProducer(
        transactional_id=f"{kafka.group_id}.transactions-check", **client_kwargs(kafka)
    )
    try:
        async with asyncio.timeout(kafka.request_timeout):
            await producer.start()
            await producer.begin_transaction()
            await producer.commit_transaction()
    except (KafkaError, TimeoutError) as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise StreamMonitorError(
            f"processing.guarantee is exactly_once, but the broker at {kafka.bootstrap_servers} "
            f"cannot run Kafka transactions ({reason}). Use a broker with transactions enabled "
            "(Apache Kafka, with transaction.state.log.* set for its cluster size) or set "
            "processing.guarantee: at_least_once."
        ) from exc
    finally:
        await producer.stop()
