"""Alert sinks and the alert bus that fans alerts out to them."""

from stream_monitor.sinks.base import Sink, SinkError
from stream_monitor.sinks.bus import AlertBus
from stream_monitor.sinks.factory import build_sinks
from stream_monitor.sinks.kafka import KafkaSink
from stream_monitor.sinks.simple import FileSink, ListSink, LogSink
from stream_monitor.sinks.webhook import WebhookSink, payload_for

__all__ = [
    "AlertBus",
    "FileSink",
    "KafkaSink",
    "ListSink",
    "LogSink",
    "Sink",
    "SinkError",
    "WebhookSink",
    "build_sinks",
    "payload_for",
]
