"""The state of one open window, and the warm-up buffer that learns a reference."""

from __future__ import annotations

import math
import operator
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from stream_monitor.events.fast import PredictionLike
from stream_monitor.monitor.accumulators import (
    CategoricalAccumulator,
    NumericAccumulator,
    NumericColumn,
)
from stream_monitor.monitor.quantiles import LogHistogram
from stream_monitor.monitor.reference import NumericReference

__all__ = ["Accumulator", "OpenWindow", "Run", "Warmup", "new_accumulator"]

_NAN = math.nan
_TIMESTAMP = operator.attrgetter("timestamp")
_LATENCY = operator.attrgetter("latency_ms")

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

    def add_run(self, run: Run) -> None:
        """Count a run of events at once."""
        self.count += len(run.events)
        run.prefetch(self.features)
        first, last = run.first_last()
        if self.first is None or first < self.first:
            self.first = first
        if self.last is None or last > self.last:
            self.last = last
        for name, accumulator in self.features.items():
            if isinstance(accumulator, NumericAccumulator):
                accumulator.add_column(run.numeric(name))
            else:
                accumulator.add_many(run.column(name))
        for names in run.non_finite():
            for name in names:
                if name in self.features:
                    self.features[name].mark_non_finite()
        prediction = self.prediction
        if prediction is not None:
            if isinstance(prediction, NumericAccumulator):
                prediction.add_column(run.numeric(None))
            else:
                prediction.add_many(run.column(None))
        self.latency.add_many(run.latencies())
        self.lag.add_many(run.lags)


class Run:
    """Consecutive events of one model that fall into the same windows, seen column by column.

    Columns are built on first use and shared by the window's accumulators and the change
    detectors.
    """

    __slots__ = ("_columns", "_numeric", "_times", "events", "lags", "signal")

    def __init__(self, events: list[PredictionLike], lags: list[int], signal: str | None) -> None:
        self.events = events
        self.lags = lags
        self.signal = signal  # "score", "prediction" or None
        self._columns: dict[str | None, Sequence[Any]] = {}
        self._numeric: dict[str | None, NumericColumn] = {}
        self._times: list[int] | None = None

    def column(self, name: str | None) -> Sequence[Any]:
        """Values of a feature (None where absent); name None: the prediction signal."""
        column = self._columns.get(name)
        if column is None:
            if name is None:
                if self.signal == "score":
                    column = [e.score for e in self.events]
                else:
                    column = [e.prediction for e in self.events]
            else:
                column = [e.features.get(name) for e in self.events]
            self._columns[name] = column
        return column

    def prefetch(self, names: Iterable[str]) -> None:
        """Take several feature columns in one pass (when every event has every feature)."""
        wanted = [name for name in names if name not in self._columns]
        if len(wanted) < 2 or not self.events:
            return
        getter = operator.itemgetter(*wanted)
        try:
            rows = [getter(e.features) for e in self.events]
        except KeyError:  # a feature is absent from some event: column by column
            return
        for name, column in zip(wanted, zip(*rows, strict=True), strict=True):
            self._columns[name] = column

    def numeric(self, name: str | None) -> NumericColumn:
        """The numbers of :meth:`column`, sorted out."""
        numeric = self._numeric.get(name)
        if numeric is None:
            numeric = self._numeric[name] = NumericColumn(self.column(name))
        return numeric

    def timestamps(self) -> list[int]:
        """Event times, in order."""
        if self._times is None:
            self._times = list(map(_TIMESTAMP, self.events))
        return self._times

    def first_last(self) -> tuple[int, int]:
        """Smallest and largest event time."""
        times = self.timestamps()
        return min(times), max(times)

    def latencies(self) -> list[float]:
        """Model latencies of the events that carry one."""
        return [v for v in map(_LATENCY, self.events) if v is not None]

    def non_finite(self) -> list[tuple[str, ...]]:
        """Per event with any, the features that arrived non-finite."""
        return [names for e in self.events if (names := e.non_finite_features)]


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

    def add(self, event: PredictionLike) -> bool:
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
