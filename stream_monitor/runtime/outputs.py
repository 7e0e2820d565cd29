"""How outputs look on Kafka, shared by the native worker and the Faust adapter."""

from __future__ import annotations

from typing import Any

from stream_monitor import __version__
from stream_monitor.errors import EventValidationError
from stream_monitor.events.alerts import WindowSummary
from stream_monitor.events.codec import encode_event

__all__ = ["dead_letter_headers", "summary_message"]

Headers = list[tuple[str, bytes]]


def summary_message(summary: WindowSummary) -> tuple[bytes, bytes, Headers]:
    """Value, key (the model id) and headers of a window summary on the metrics topic."""
    return (
        encode_event(summary),
        summary.model_id.encode(),
        [("revision", str(summary.revision).encode())],
    )


def dead_letter_headers(
    headers: Any, topic: str, partition: int, offset: int, error: EventValidationError
) -> Headers:
    """The original headers plus why and where the event failed."""
    return [
        *(headers or ()),
        ("error.reason", error.reason.encode()[:1000]),
        ("error.field", error.field.encode()[:200]),
        ("error.value", error.value.encode()[:200]),
        ("error.class", type(error).__name__.encode()),
        ("source.topic", topic.encode()),
        ("source.partition", str(partition).encode()),
        ("source.offset", str(offset).encode()),
        ("service.version", __version__.encode()),
    ]
