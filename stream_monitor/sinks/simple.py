"""The log and file sinks, and a list sink for tests and embedding."""

from __future__ import annotations

import asyncio
from pathlib import Path

from stream_monitor.config.sinks import FileSinkSpec, LogSinkSpec
from stream_monitor.events.alerts import AlertEvent
from stream_monitor.events.codec import encode_event
from stream_monitor.logs import get_logger
from stream_monitor.sinks.base import Sink

__all__ = ["FileSink", "ListSink", "LogSink"]


class LogSink(Sink):
    """Alerts as structured log lines (warning for firing, info for resolved)."""

    def __init__(self, spec: LogSinkSpec | None = None) -> None:
        super().__init__(spec or LogSinkSpec())
        self.log = get_logger("stream_monitor.alerts")

    async def publish(self, alert: AlertEvent) -> None:
        """Log one alert."""
        emit = self.log.warning if alert.status == "firing" else self.log.info
        emit(
            alert.summary,
            status=alert.status,
            severity=alert.severity,
            model_id=alert.model_id,
            rule=alert.rule,
            feature=alert.feature,
            value=alert.value,
            alert_id=alert.alert_id,
            dedup_key=alert.dedup_key,
        )


class FileSink(Sink):
    """Alerts appended as JSON lines; flushed to the OS on every flush of the bus."""

    def __init__(self, spec: FileSinkSpec) -> None:
        super().__init__(spec)
        self.path = Path(spec.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.path.open("ab")

    async def publish(self, alert: AlertEvent) -> None:
        """Append one alert."""
        self.handle.write(encode_event(alert) + b"\n")

    async def flush(self) -> None:
        """Push written alerts to the OS."""
        await asyncio.to_thread(self.handle.flush)

    async def close(self) -> None:
        """Close the file."""
        self.handle.close()


class ListSink(Sink):
    """Keeps alerts in a list (tests, notebooks)."""

    def __init__(self, spec: LogSinkSpec | None = None) -> None:
        super().__init__(spec or LogSinkSpec(name="list"))
        self.alerts: list[AlertEvent] = []

    async def publish(self, alert: AlertEvent) -> None:
        """Keep one alert."""
        self.alerts.append(alert)
