"""Prediction events as the native core reads them: their canonical JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from stream_monitor.events.schemas import PredictionLike

__all__ = ["encode_for_core"]


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def encode_for_core(event: PredictionLike) -> bytes:
    """An event's canonical JSON for the native core; NaN features written as NaN."""
    data: dict[str, Any] = {
        "event_id": event.event_id,
        "model_id": event.model_id,
        "timestamp": event.timestamp,
        "features": dict(event.features),
        "prediction": event.prediction,
    }
    for name in ("model_version", "score", "scores", "label", "latency_ms", "metadata"):
        value = getattr(event, name, None)  # metadata: not every event-like object has it
        if name == "metadata" and value:  # a non-finite number is no segment value: left out
            value = {k: v for k, v in value.items() if not _non_finite(v)}
        if value is not None:
            data[name] = value
    for name in event.non_finite_features:
        data["features"][name] = math.nan
    return json.dumps(data, allow_nan=True, separators=(",", ":")).encode()
