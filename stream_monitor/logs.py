"""Structured logging, configured once: console renderer in dev, JSON lines in prod.

Agents bind the batch context (topic, partition, offsets, model) with :func:`batch_context`;
every log line emitted inside carries it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import orjson
import structlog

from stream_monitor.config.settings import LoggingSettings

__all__ = ["batch_context", "configure_logging", "get_logger"]


def _orjson_dumps(event: Any, **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


def configure_logging(settings: LoggingSettings, stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library root logger (for aiokafka's logs)."""
    level = logging.getLevelNamesMapping()[settings.level]
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor
    if settings.format == "json":
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    out = stream or sys.stderr
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Library loggers (aiokafka) stay at WARNING unless DEBUG is asked for: they are chatty.
    root.setLevel(level if level == logging.DEBUG else max(level, logging.WARNING))


def get_logger(name: str) -> Any:
    """A structlog logger carrying ``component=name``.

    Lazy: safe to create at import time, it follows :func:`configure_logging` when used.
    """
    return structlog.get_logger(component=name)


@contextmanager
def batch_context(
    topic: str, partition: int, first_offset: int, last_offset: int, model_id: str | None = None
) -> Iterator[None]:
    """Bind the batch being processed to every log line emitted inside the block."""
    bound: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offsets": f"{first_offset}-{last_offset}",
    }
    if model_id is not None:
        bound["model_id"] = model_id
    with structlog.contextvars.bound_contextvars(**bound):
        yield
