"""The monitoring core: pure, deterministic, no I/O. Events in; window summaries and alerts out."""

from stream_monitor.monitor.lifecycle import AlertTracker, RuleCheck
from stream_monitor.monitor.model_monitor import ModelMonitor, Output
from stream_monitor.monitor.reference import ReferenceError, ReferenceProfile
from stream_monitor.monitor.registry import MonitorSet, UnknownModelError
from stream_monitor.monitor.windows import CountWindows, EventTimeWindows, WindowBounds

__all__ = [
    "AlertTracker",
    "CountWindows",
    "EventTimeWindows",
    "ModelMonitor",
    "MonitorSet",
    "Output",
    "ReferenceError",
    "ReferenceProfile",
    "RuleCheck",
    "UnknownModelError",
    "WindowBounds",
]
