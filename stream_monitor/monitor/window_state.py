"""The state of one open window, and the warm-up buffer that learns a reference."""

from __future__ import annotations

import math
from array import array
from typing import Any

from stream_monitor.events.schemas import PredictionEvent
from stream_monitor.monitor.accumulators import CategoricalAccumulator, NumericAccumulator
from stream_monitor.monitor.quantiles import LogHistogram
from stream_monitor.monitor.reference import NumericReference

__all__ = ["Accumulator", "OpenWindow", "Warmup", "new_accumulator"]

_NAN = math.nan

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
    """The first events of a model, kept column by column to learn its reference.

    Numbers are kept in ``array('d')`` columns (8 bytes a value; NaN marks a missing value);
    a column turns into a plain list the first time it meets a string or boolean.
    """

    def __init__(self, size: int, categorical: frozenset[str] = frozenset()) -> None:
        self.size = size
        self.count = 0
        # Declared categorical features keep their values exactly (1 stays 1, not 1.0).
        self.columns: dict[str, array[float] | list[Any]] = {name: [] for name in categorical}
        self.scores: array[float] = array("d")
        self.predictions: list[Any] = []

    def add(self, event: PredictionEvent) -> bool:
        """Keep one event; True when enough have been seen."""
        columns = self.columns
        count = self.count
        for name, value in event.features.items():
            column = columns.get(name)
            if column is None:
                column = columns[name] = array("d", [_NAN]) * count  # absent so far
            kind = type(value)
            if type(column) is array:
                if kind is float or kind is int:
                    column.append(value)  # type: ignore[arg-type]
                    continue
                if value is None:
                    column.append(_NAN)
                    continue
                column = columns[name] = [None if math.isnan(x) else x for x in column]
            column.append(value)  # type: ignore[arg-type]
        self.count = count = count + 1
        if len(columns) != len(event.features):
            for column in columns.values():
                if len(column) < count:
                    column.append(_NAN if type(column) is array else None)  # type: ignore[arg-type]
        score = event.score
        self.scores.append(_NAN if score is None else score)
        self.predictions.append(event.prediction)
        return count >= self.size
