"""stream-monitor: watch ML models in production through Kafka.

The public surface: configuration, event schemas and codec, and the error tree. The monitoring
core, streaming runtime and sinks live in their subpackages.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

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

try:
    __version__ = _version("stream-monitor")
except _PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0+unknown"

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
