"""The emitter SDK's former import path, kept so model servers need no change: it now lives in
:mod:`stream_monitor.integrations.client`."""

from stream_monitor.integrations.client import AsyncEmitter, Counters, Emitter, monitored

__all__ = ["AsyncEmitter", "Counters", "Emitter", "monitored"]
