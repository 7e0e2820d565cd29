"""Build sinks from their specs, by ``type`` (no isinstance dispatch in the callers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stream_monitor.config.sinks import SinkSpec
from stream_monitor.sinks.alertmanager import AlertmanagerSink
from stream_monitor.sinks.base import Sink
from stream_monitor.sinks.kafka import KafkaSink
from stream_monitor.sinks.simple import FileSink, LogSink
from stream_monitor.sinks.webhook import WebhookSink

__all__ = ["build_sinks"]


def build_sinks(specs: list[SinkSpec], producer: Any, alerts_topic: str) -> list[Sink]:
    """One sink per spec; Kafka sinks share the runtime's producer."""
    builders: dict[str, Callable[[Any], Sink]] = {
        "kafka": lambda spec: KafkaSink(spec, producer, alerts_topic),
        "log": LogSink,
        "file": FileSink,
        "webhook": WebhookSink,
        "alertmanager": AlertmanagerSink,
    }
    return [builders[spec.type](spec) for spec in specs]
