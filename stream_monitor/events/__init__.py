"""Event schemas and the codec: the wire contract between model servers, workers and on-call."""

from stream_monitor.events.alerts import (
    AlertEvent,
    AlertKind,
    AlertStatus,
    Severity,
    WindowSummary,
    alert_id_for,
    dedup_key_for,
)
from stream_monitor.events.codec import EventCodec, encode_event
from stream_monitor.events.schemas import SCHEMA_VERSION, LabelEvent, PredictionEvent

__all__ = [
    "SCHEMA_VERSION",
    "AlertEvent",
    "AlertKind",
    "AlertStatus",
    "EventCodec",
    "LabelEvent",
    "PredictionEvent",
    "Severity",
    "WindowSummary",
    "alert_id_for",
    "dedup_key_for",
    "encode_event",
]
