"""The state of one open window, and the warm-up buffer that learns a reference."""

from __future__ import annotations

from typing import Any

from stream_monitor.events.schemas import PredictionEvent
from stream_monitor.monitor.accumulators import CategoricalAccumulator, NumericAccumulator
from stream_monitor.monitor.quantiles import LogHistogram
from stream_monitor.monitor.reference import NumericReference

__all__ = ["Accumulator", "OpenWindow", "Warmup", "new_accumulator"]

Accumulator = NumericAccumulator | CategoricalAccumulator


def new_accumulator(kind: str, reference: Any) -> Accumulator:
    """An accumulator for a feature of ``kind``, binned on ``reference`` when it matches."""
    if kind == "numeric":
        return NumericAccumulator(reference if isinstance(reference, NumericReference) else None)
    return CategoricalAccumulator(
        reference if reference and reference.kind == "categorical" else None
    )


class OpenWindow:
    """Accumulators of one open window."""

    __slots__ = ("count", "detections", "features", "first", "lag", "last", "latency", "prediction")

    def __init__(self, features: dict[str, Accumulator], prediction: Accumulator | None) -> None:
        self.features = features
        self.prediction = prediction
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None
        self.latency = LogHistogram()
        self.lag = LogHistogram()
        self.detections: dict[str, int] = {}

    def add(self, event: PredictionEvent, signal: Any, lag: int) -> None:
        """Count one event (``signal``: its score or prediction; ``lag``: behind the newest)."""
        self.count += 1
        t = event.timestamp
        if self.first is None or t < self.first:
            self.first = t
        if self.last is None or t > self.last:
            self.last = t
        values = event.features
        for name, accumulator in self.features.items():
            accumulator.add(values.get(name))
        for name in event.non_finite_features:
            if name in self.features:
                self.features[name].mark_non_finite()
        if self.prediction is not None:
            self.prediction.add(signal)
        if event.latency_ms is not None:
            self.latency.add(event.latency_ms)
        self.lag.add(lag)


class Warmup:
    """The first events of a model, kept to learn its reference (and feature types)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rows: list[tuple[dict[str, Any], Any, Any]] = []

    def add(self, event: PredictionEvent) -> bool:
        """Keep one event; True when enough have been seen."""
        self.rows.append((dict(event.features), event.score, event.prediction))
        return len(self.rows) >= self.size
