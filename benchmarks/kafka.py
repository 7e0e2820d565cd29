"""The broker a benchmark runs against."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from stream_monitor.devtools.broker import start_kafka, stop
from stream_monitor.devtools.broker.process import free_port


@contextmanager
def a_broker(bootstrap: str | None) -> Iterator[str]:
    """``bootstrap`` when given, else an Apache Kafka broker started on a free port for the run
    (and stopped after it)."""
    if bootstrap:
        yield bootstrap
        return
    info = start_kafka(free_port())
    try:
        yield f"127.0.0.1:{info.port}"
    finally:
        stop(info)
