"""Performance per window from inline and late labels, with revisions of closed windows.

The tracker keeps a performance accumulator for every open window and for the most recent
``revision_windows`` closed ones. A label that arrives after its window closed updates that window
and marks it for a revised summary (``revision`` + 1), on which the performance rule runs again.
"""

from __future__ import annotations

import math
import operator
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from stream_monitor.config.models import ModelSpec
from stream_monitor.events.alerts import WindowSummary
from stream_monitor.monitor.detectors import BlockErrorDetector
from stream_monitor.monitor.estimation import Band, calibrate, estimate, standard_error
from stream_monitor.monitor.labels import LabelJoin, Pending
from stream_monitor.monitor.performance import (
    SCORE_BINS,
    BinaryPerformance,
    Performance,
    binary_add_many,
    label_key,
    label_keys,
    make_performance,
    score_histogram,
)
from stream_monitor.monitor.quantiles import LogHistogram
from stream_monitor.monitor.rolling import RollingHits, RollingMean
from stream_monitor.monitor.windows import WindowBounds

if TYPE_CHECKING:
    from stream_monitor._native import Batch

__all__ = ["Outcomes", "RunColumns", "WindowOutcome", "rolling_value"]


class RunColumns(Protocol):
    """A run's events (``positions`` of a decoded ``batch``) as columns: what labels and
    performance read."""

    batch: Batch
    positions: list[int]

    def columns(self) -> tuple[list[Any], ...]:
        """(event ids, times, predictions, scores, per-class scores, labels)."""
        ...


@dataclass
class WindowOutcome:
    """Labels and performance of one window."""

    performance: Performance
    delays: LogHistogram = field(default_factory=LogHistogram)
    labelled: int = 0
    pending: int = 0  # predictions of this window still waiting for their label
    summary: WindowSummary | None = None  # set once the window closed
    # Scored predictions per score bin, predicted positive and predicted negative (estimation).
    scored: array[int] | None = None  # per score bin: predicted positives', then negatives'
    bounds: WindowBounds | None = None
    dirty: bool = False


class Outcomes:
    """Inline and late labels of one model: join, per-window performance, reference, detectors."""

    # Defaults for state pickled before estimation existed (such state is refused anyway when
    # its spec differs, but never half-read).
    estimating: bool = False
    calibration: array[float] | None = None
    estimated_reference: Band | None = None
    reference_error: float | None = None

    def __init__(self, spec: ModelSpec, reference: dict[str, float | None] | None = None) -> None:
        perf = spec.performance
        self.task = spec.task
        self.positive = perf.positive_label
        self.retain = perf.revision_windows
        self.join = LabelJoin(
            round(perf.label_ttl * 1000),
            perf.max_pending_predictions,
            perf.max_pending_labels,
        )
        self.windows: dict[int, WindowOutcome] = {}
        self.closed: OrderedDict[int, WindowOutcome] = OrderedDict()
        self.reference: dict[str, float | None] = dict(reference or {})
        self.reference_size = perf.reference_labels
        self.learning: Performance | None = None if reference else self._new()
        self.detectors = [
            (name, BlockErrorDetector(name, perf.detector_block, perf.detector_confidence))
            for name in perf.detectors
            if spec.task != "regression"
        ]
        self.too_late = 0
        # The rolling view over the latest labelled predictions, whatever their window.
        regression = spec.task == "regression"
        self.rolling_name = "rolling_mae" if regression else "rolling_accuracy"
        self.rolling = (
            RollingMean(perf.rolling_window) if regression else RollingHits(perf.rolling_window)
        )
        # Label-free estimation (binary with scores): calibrated once the reference is learnt.
        self.estimating = perf.estimation and spec.task == "binary_classification"
        self.calibration: array[float] | None = None  # P(positive) per score bin
        self.metric = perf.metric
        self.reference_error: float | None = None  # the reference metric's standard error
        # The reference's own estimate of the metric, which windows' estimates are tested against
        self.estimated_reference: Band | None = None

    def _new(self) -> Performance:
        return make_performance(self.task, self.positive)

    def window(self, key: int) -> WindowOutcome:
        """The outcome of an open window, created on first use."""
        outcome = self.windows.get(key)
        if outcome is None:
            outcome = self.windows[key] = WindowOutcome(self._new())
        return outcome

    def on_prediction(
        self,
        event_id: str,
        keys: tuple[int, ...],
        timestamp: int,
        *,
        prediction: Any,
        score: float | None,
        scores: Any,
        label: Any,
    ) -> list[str]:
        """Register a prediction; returns the error detectors that fired (inline/early label)."""
        pending = Pending(keys, timestamp, prediction, score, scores)
        windows = self._register(keys)
        if label is not None:
            return self._apply(pending, label, timestamp)
        early = self.join.add_prediction(event_id, list(keys), timestamp, prediction, score, scores)
        if early is None:
            for key in keys:
                windows[key].pending += 1
            self._drain()
            return []
        label_value, label_time = early
        return self._apply(pending, label_value, max(label_time, timestamp))

    def _register(self, keys: tuple[int, ...]) -> dict[int, WindowOutcome]:
        """Open windows ``keys`` where needed; the open windows."""
        windows = self.windows
        for key in keys:
            if key not in windows:
                windows[key] = WindowOutcome(self._new())
        return windows

    def on_run(self, run: RunColumns, keys: tuple[int, ...]) -> list[tuple[int, list[str]]]:
        """Register a run of predictions in windows ``keys``, as :meth:`on_prediction` one by
        one; returns (index in the run, error detectors that fired) where any fired."""
        windows = self._register(keys)
        if self.task == "binary_classification" and self.learning is None:
            counted = self._labelled_run(run, keys)
            if counted is not None:
                return counted
        _, times, predictions, scores, per_class, labels = run.columns()
        # the predicted classes' keys, worked out once for the run (classifiers only)
        classifier = self.task != "regression"
        predicted = label_keys(predictions) if classifier and self.estimating else None
        if predicted is not None:
            self._count_scored(keys, predicted, scores)
        # The unlabelled events wait for their labels: registered natively, in one call.
        waiting, early = self.join.add_run(run.batch, run.positions, list(keys))
        for key in keys:
            windows[key].pending += waiting
        fired: list[tuple[int, list[str]]] = []
        if early or labels.count(None) < len(labels):  # counted in C: most runs have none
            if classifier and predicted is None:
                predicted = label_keys(predictions)
            # Labelled events (inline, or whose label came first) in order: performance and
            # the error-stream detectors see them as event by event.
            matched = {i: (label, at) for i, label, at in early}
            start = 0
            for i, label in enumerate(labels):
                if label is not None:
                    continue  # labelled at once: taken together below
                if start < i:
                    fired += self._apply_inline(run, start, i, keys, predicted)
                start = i + 1
                if i in matched:
                    label_value, label_time = matched[i]
                    pending = Pending(keys, times[i], predictions[i], scores[i], per_class[i])
                    names = self._apply(pending, label_value, max(label_time, times[i]))
                    if names:
                        fired.append((i, names))
            if start < len(labels):
                fired += self._apply_inline(run, start, len(labels), keys, predicted)
        self._drain()
        return fired

    def _labelled_run(
        self, run: RunColumns, keys: tuple[int, ...]
    ) -> list[tuple[int, list[str]]] | None:
        """:meth:`on_run` of a binary classifier's run whose events all carry their label (the
        usual case when labels ride on the predictions), counted natively without building
        the run's columns; None, and nothing counted, when one of them waits for its label.
        The counts, sums and alarms are those of the general path."""
        outcomes = [self.windows[key] for key in keys]
        made = []  # score histograms made here, dropped again if no event has a score
        if self.estimating:
            for outcome in outcomes:
                if outcome.scored is None:
                    outcome.scored = score_histogram()
                    made.append(outcome)
        performances = [cast("BinaryPerformance", outcome.performance) for outcome in outcomes]
        counted = run.batch.binary_labelled(
            run.positions,
            self.positive,
            [performance.scores for performance in performances],
            [(performance.log_loss_sum, performance.log_loss_sq) for performance in performances],
            [outcome.scored for outcome in outcomes if outcome.scored is not None],
        )
        if counted is None or not counted[6]:
            for outcome in made:
                outcome.scored = None
        if counted is None:
            return None
        tp, fp, fn, tn, sums, scores, _, wrong, hits = counted
        for outcome, performance, total in zip(outcomes, performances, sums, strict=True):
            performance.tp += tp
            performance.fp += fp
            performance.fn += fn
            performance.tn += tn
            performance.log_loss_sum, performance.log_loss_sq = total
            performance.log_loss_n += scores
            outcome.labelled += len(wrong)
            outcome.delays.add_zeros(len(wrong))  # label time == prediction time
        self.rolling.update_many(hits)
        fired: dict[int, list[str]] = {}
        for name, detector in self.detectors:
            for i in detector.update_many(wrong):
                fired.setdefault(i, []).append(name)
        self._drain()
        return sorted(fired.items())

    def _count_scored(
        self, keys: tuple[int, ...], predicted: list[Any], scores: list[float | None]
    ) -> None:
        """Count the run's scores per bin and predicted class (``predicted``: their keys),
        labelled or not (natively)."""
        if scores.count(None) == len(scores):  # counted in C
            return
        for key in keys:
            outcome = self.windows[key]
            if outcome.scored is None:
                outcome.scored = score_histogram()
            # Counted as binary_add_many counts labelled scores, the predicted class in place
            # of the label: the first half gets predicted positives.
            binary_add_many(predicted, predicted, self.positive, scores, outcome.scored, (0.0, 0.0))

    def _apply_inline(
        self,
        run: RunColumns,
        start: int,
        stop: int,
        keys: tuple[int, ...],
        predicted: list[Any] | None,
    ) -> list[tuple[int, list[str]]]:
        """:meth:`_apply` for events ``start:stop``, each labelled in the event itself
        (``predicted``: the run's predicted class keys, classifiers only)."""
        _, _, all_predictions, all_scores, all_per_class, all_labels = run.columns()
        predictions = all_predictions[start:stop]
        scores = all_scores[start:stop]
        per_class = all_per_class[start:stop]
        labels = all_labels[start:stop]
        classes = None
        if predicted is not None:  # class keys worked out once for every window
            whole = start == 0 and stop == len(all_labels)
            classes = (label_keys(labels), predicted if whole else predicted[start:stop])
        wrong = [False] * len(labels)
        for key in keys:
            outcome = self.windows[key]  # open: registered by on_run
            wrong = outcome.performance.add_many(
                predictions, scores, per_class, labels, classes=classes
            )
            outcome.labelled += len(labels)
            outcome.delays.add_many([0] * len(labels))  # label time == prediction time
        if classes is not None:
            hits = map(operator.eq, *classes)
            self.rolling.update_many(list(hits))
        else:
            self.rolling.update_many(
                [
                    abs(float(p) - float(y))
                    for p, y in zip(predictions, labels, strict=True)
                    if _is_number(y) and _is_number(p)
                ]
            )
        if self.learning is not None:  # the first labels set the reference, counted together
            room = max(self.reference_size - _count(self.learning), 0)
            if room:
                self.learning.add_many(
                    predictions[:room], scores[:room], per_class[:room], labels[:room]
                )
            self._learnt()
        fired: dict[int, list[str]] = {}
        for name, detector in self.detectors:
            for i in detector.update_many(wrong):
                fired.setdefault(start + i, []).append(name)
        return sorted(fired.items())

    def on_label(self, event_id: str, label: Any, timestamp: int) -> list[str]:
        """Match a label event; returns the error detectors that fired."""
        found = self.join.add_label(event_id, label, timestamp)
        if found is None:
            return []
        pending = Pending(*found)
        self._unpend(pending.windows)
        return self._apply(pending, label, timestamp)

    def expire(self, now: int) -> None:
        """Forget predictions and labels older than the label TTL at event time ``now``."""
        self.join.expire(now)
        self._drain()

    def _drain(self) -> None:
        for key, count in self.join.take_dropped():
            outcome = self.windows.get(key) or self.closed.get(key)
            if outcome is not None:
                outcome.pending -= count

    def _unpend(self, windows: tuple[int, ...]) -> None:
        for key in windows:
            outcome = self.windows.get(key) or self.closed.get(key)
            if outcome is not None:
                outcome.pending -= 1

    def _apply(self, pending: Pending, label: Any, label_time: int) -> list[str]:
        wrong = False
        for key in pending.windows:
            outcome = self.windows.get(key) or self.closed.get(key)
            if outcome is None:
                self.too_late += 1
                continue
            wrong = outcome.performance.add(
                pending.prediction, pending.score, pending.scores, label
            )
            outcome.labelled += 1
            outcome.delays.add(max(label_time - pending.timestamp, 0))
            if outcome.summary is not None:
                outcome.dirty = True
        if self.task != "regression":
            self.rolling.update(int(label_key(label) == label_key(pending.prediction)))
        elif _is_number(label) and _is_number(pending.prediction):
            self.rolling.update(abs(float(pending.prediction) - float(label)))
        if self.learning is not None:
            self._learn(pending.prediction, pending.score, pending.scores, label)
        fired: list[str] = []
        for name, detector in self.detectors:
            if detector.update(wrong):
                fired.append(name)
        return fired

    def _learn(self, prediction: Any, score: float | None, scores: Any, label: Any) -> None:
        """Count a labelled prediction towards the reference performance, until it is learnt."""
        assert self.learning is not None  # noqa: S101
        self.learning.add(prediction, score, scores, label)
        self._learnt()

    def _learnt(self) -> None:
        """Fix the reference performance once enough labels were counted towards it."""
        if self.learning is not None and _count(self.learning) >= self.reference_size:
            self.reference = {**self.learning.metrics(), "labelled": float(self.reference_size)}
            self.reference_error = self.learning.standard_error(self.metric)
            if self.estimating and isinstance(self.learning, BinaryPerformance):
                rates = calibrate(self.learning.pos_scores, self.learning.neg_scores)
                self.calibration = None if rates is None else array("d", rates)
                self.estimated_reference = self._estimate_reference(self.learning)
            self.learning = None

    def _estimate_reference(self, learnt: BinaryPerformance) -> Band | None:
        """The estimate of the metric over the reference's scored predictions (predicted
        positive from a score of 0.5 on), and its standard error there."""
        if self.calibration is None:
            return None
        half = SCORE_BINS // 2
        scored = [p + n for p, n in zip(learnt.pos_scores, learnt.neg_scores, strict=True)]
        positive = [0] * half + scored[half:]
        negative = scored[:half] + [0] * (SCORE_BINS - half)
        value = estimate(self.calibration, positive, negative).get(self.metric)
        spread = standard_error(self.metric, self.calibration, positive, negative)
        return None if value is None or spread is None else Band(value, spread)

    def estimation_band(self, outcome: WindowOutcome) -> tuple[Band, float] | None:
        """The reference's estimate and the window estimate's standard error, or None."""
        if self.estimated_reference is None or self.calibration is None or outcome.scored is None:
            return None
        scored = outcome.scored
        spread = standard_error(
            self.metric, self.calibration, scored[:SCORE_BINS], scored[SCORE_BINS:]
        )
        return None if spread is None else (self.estimated_reference, spread)

    def estimated(self, outcome: WindowOutcome) -> dict[str, float | None]:
        """The window's estimated metrics (empty without a calibration or scores)."""
        if self.calibration is None or outcome.scored is None:
            return {}
        scored = outcome.scored
        return estimate(self.calibration, scored[:SCORE_BINS], scored[SCORE_BINS:])

    def close(self, key: int, bounds: WindowBounds, summary: WindowSummary) -> WindowOutcome:
        """Move an open window to the closed ones (kept for revisions); returns its outcome."""
        outcome = self.windows.pop(key, None) or WindowOutcome(self._new())
        outcome.summary, outcome.bounds = summary, bounds
        if self.retain and outcome.pending:  # only windows that late labels can still change
            self.closed[key] = outcome
            while len(self.closed) > self.retain:
                self.closed.popitem(last=False)
        return outcome

    def dirty(self) -> list[tuple[int, WindowOutcome]]:
        """Closed windows changed by late labels since their last summary (oldest first)."""
        changed = [(key, outcome) for key, outcome in self.closed.items() if outcome.dirty]
        for key, outcome in changed:
            outcome.dirty = False
            if not outcome.pending:  # every label is in: no further revision possible
                del self.closed[key]
        return changed


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def rolling_value(outcomes: Outcomes) -> dict[str, float | None]:
    """The rolling view, once it has seen a labelled prediction."""
    value = outcomes.rolling.get()
    return {} if value is None or not math.isfinite(value) else {outcomes.rolling_name: value}


def _count(performance: Performance) -> int:
    return int(getattr(performance, "count", 0))
