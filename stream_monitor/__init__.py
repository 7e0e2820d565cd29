"""stream-monitor: watch ML models in production through Kafka.

The public surface: configuration, event schemas and codec, and the error tree. The monitoring
core, streaming runtime and sinks live in their subpackages.
"""

from typing import Any as _Any

from stream_monitor.config import ModelSpec, Settings, load_settings
from stream_monitor.errors import (
    BrokerError,
    ConfigError,
    ConfigProblem,
    EventValidationError,
    StreamMonitorError,
)
from stream_monitor.events import (
    AlertEvent,
    EventCodec,
    LabelEvent,
    PredictionEvent,
    WindowSummary,
    encode_event,
)

__version__: str


def __getattr__(name: str) -> _Any:
    """``__version__``, read from the installed metadata on first use (importlib.metadata
    costs a command's start-up more than all the rest of this package's top level)."""
    if name != "__version__":
        raise AttributeError(f"module 'stream_monitor' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        value = version("stream-monitor")
    except PackageNotFoundError:  # pragma: no cover - source tree without install
        value = "0.0.0+unknown"
    globals()["__version__"] = value
    return value


__all__ = [
    "AlertEvent",
    "BrokerError",
    "ConfigError",
    "ConfigProblem",
    "EventCodec",
    "EventValidationError",
    "LabelEvent",
    "ModelSpec",
    "PredictionEvent",
    "Settings",
    "StreamMonitorError",
    "WindowSummary",
    "__version__",
    "encode_event",
    "load_settings",
]
