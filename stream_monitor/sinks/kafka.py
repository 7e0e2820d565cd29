"""The Kafka sink: alerts to the alerts topic, keyed by dedup_key, with useful headers."""

from __future__ import annotations

from typing import Any

from stream_monitor.config.sinks import KafkaSinkSpec
from stream_monitor.events.alerts import AlertEvent
from stream_monitor.events.codec import encode_event
from stream_monitor.sinks.base import Sink

__all__ = ["KafkaSink"]


class KafkaSink(Sink):
    """Produces alerts with the runtime's producer.

    Under exactly-once the worker does not route Kafka sinks through the bus: it calls
    :meth:`send_with` with the transactional producer of the alert's input partition, so the
    alert commits (or aborts) together with that partition's summaries, checkpoint and offsets.
    """

    transactional = True

    def __init__(self, spec: KafkaSinkSpec, producer: Any, topic: str) -> None:
        super().__init__(spec)
        self.producer = producer
        self.topic = spec.topic or topic
        self.pending: list[Any] = []

    async def publish(self, alert: AlertEvent) -> None:
        """Send one alert (delivery is awaited in :meth:`flush`)."""
        self.pending.append(await self.send_with(self.producer, alert))

    async def send_with(self, producer: Any, alert: AlertEvent) -> Any:
        """Send one alert with ``producer``; returns the delivery future."""
        headers = [
            ("alert_id", alert.alert_id.encode()),
            ("status", alert.status.encode()),
            ("severity", alert.severity.encode()),
            ("model_id", alert.model_id.encode()),
            ("kind", alert.kind.encode()),
            ("content-type", b"application/json"),
        ]
        return await producer.send(
            self.topic, encode_event(alert), key=alert.dedup_key.encode(), headers=headers
        )

    async def flush(self) -> None:
        """Wait until every sent alert is acknowledged by the broker."""
        pending, self.pending = self.pending, []
        for future in pending:
            await future
