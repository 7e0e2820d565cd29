"""``ModelMonitor``: everything stream-monitor measures for one model, driven by its events.

Feed prediction events with :meth:`ModelMonitor.update`; it returns the window summaries and alert
events they caused, in a deterministic order. Pure: no I/O, no clock, no logging; time is the
events' own timestamps. Bad values inside an event are counted in data quality, never raised.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from stream_monitor.config.models import FeatureType, ModelSpec
from stream_monitor.events.alerts import AlertEvent, WindowSummary
from stream_monitor.events.schemas import PredictionEvent
from stream_monitor.monitor.accumulators import CategoricalAccumulator, NumericAccumulator
from stream_monitor.monitor.detectors import StandardisedDetector
from stream_monitor.monitor.lifecycle import AlertTracker, RuleCheck
from stream_monitor.monitor.quantiles import LogHistogram
from stream_monitor.monitor.reference import (
    NumericReference,
    ReferenceProfile,
    profile_from_rows,
)
from stream_monitor.monitor.rules import DriftInput, drift_checks, quality_checks
from stream_monitor.monitor.windows import CountWindows, EventTimeWindows, WindowBounds

__all__ = ["PREDICTION", "ModelMonitor", "Output"]

Output = WindowSummary | AlertEvent
Accumulator = NumericAccumulator | CategoricalAccumulator
PREDICTION = "<prediction>"  # detections key of the prediction signal


def _accumulator(kind: str, reference: Any) -> Accumulator:
    if kind == "numeric":
        return NumericAccumulator(reference if isinstance(reference, NumericReference) else None)
    return CategoricalAccumulator(
        reference if reference and reference.kind == "categorical" else None
    )


class _Window:
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


class _Warmup:
    """The first events of a model, kept to learn its reference (and feature types)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rows: list[tuple[dict[str, Any], Any, Any]] = []

    def add(self, event: PredictionEvent) -> bool:
        """Keep one event; True when enough have been seen."""
        self.rows.append((dict(event.features), event.score, event.prediction))
        return len(self.rows) >= self.size


class ModelMonitor:
    """Windows, drift, data quality, change detectors and alert lifecycle for one model."""

    def __init__(
        self, model_id: str, spec: ModelSpec, reference: ReferenceProfile | None = None
    ) -> None:
        self.model_id = model_id
        self.spec = spec
        self.types: dict[str, FeatureType] = dict(spec.features)
        self.signal: Literal["score", "prediction"] | None = None
        self.reference: ReferenceProfile | None = None
        self.detectors: dict[str, list[StandardisedDetector]] = {}
        self.warmup: _Warmup | None = None
        window = spec.window
        self.windows: CountWindows | EventTimeWindows
        if window.kind == "count":
            self.windows = CountWindows(window.events)
        else:
            size = round(window.size * 1000)
            step = round((window.step or window.size) * 1000)
            self.windows = EventTimeWindows(size, step, round(window.allowed_lateness * 1000))
        self.open: dict[int, _Window] = {}
        self.late = 0
        self.max_time: int | None = None
        self.events = 0
        self.model_version: str | None = None
        self.tracker = AlertTracker(model_id, spec.alerting, spec.runbook_url, spec.labels)
        if reference is not None:
            self._use_reference(reference)
        else:
            self.warmup = _Warmup(spec.warmup_events)

    # -- events ---------------------------------------------------------------------------

    def update(self, event: PredictionEvent) -> list[Output]:
        """Account for one prediction event; returns the summaries and alerts it caused."""
        self.events += 1
        if event.model_version is not None:
            self.model_version = event.model_version
        t = event.timestamp
        lag = 0
        if self.max_time is None or t > self.max_time:
            self.max_time = t
        else:
            lag = self.max_time - t
        signal = event.score if self.signal == "score" else event.prediction
        keys = self.windows.open_windows(t)
        for key in keys:
            window = self.open.get(key)
            if window is None:
                window = self.open[key] = self._new_window()
            window.add(event, signal, lag)
        if not keys:
            self.late += 1
        out: list[Output] = []
        if self.detectors and keys:
            self._detect(event, signal, self.open[keys[-1]], out)
        if self.warmup is not None and self.warmup.add(event):
            self._finish_warmup()
        for key, bounds in self.windows.closed_windows():
            out.extend(self._close(key, bounds))
        return out

    def flush(self) -> list[Output]:
        """Close every open window (end of a finite stream, e.g. a backtest)."""
        out: list[Output] = []
        for key, bounds in self.windows.flush():
            out.extend(self._close(key, bounds))
        return out

    # -- reference ------------------------------------------------------------------------

    def _use_reference(self, reference: ReferenceProfile) -> None:
        self.reference = reference
        if not self.types:
            self.types = {name: ref.kind for name, ref in reference.features.items()}
        self.signal = reference.prediction_signal
        self.detectors = {}
        drift = self.spec.drift
        signals: list[tuple[str, Any]] = [
            (name, reference.features.get(name)) for name in self.types
        ]
        signals.append((PREDICTION, reference.prediction))
        for name, ref in signals:
            if isinstance(ref, NumericReference) and drift.detectors:
                self.detectors[name] = [
                    StandardisedDetector(d, drift.detector_delta, ref.mean, ref.std)
                    for d in drift.detectors
                ]

    def _finish_warmup(self) -> None:
        assert self.warmup is not None  # noqa: S101
        rows, self.warmup = self.warmup.rows, None
        self._use_reference(profile_from_rows(self.model_id, self.types, self.spec.task, rows))

    # -- windows --------------------------------------------------------------------------

    def _new_window(self) -> _Window:
        ref = self.reference
        features = {
            name: _accumulator(kind, ref.features.get(name) if ref else None)
            for name, kind in self.types.items()
        }
        prediction = None
        if self.signal is not None and ref is not None and ref.prediction is not None:
            prediction = _accumulator(ref.prediction.kind, ref.prediction)
        return _Window(features, prediction)

    def _detect(
        self, event: PredictionEvent, signal: Any, window: _Window, out: list[Output]
    ) -> None:
        values = event.features
        for name, detectors in self.detectors.items():
            value = signal if name == PREDICTION else values.get(name)
            if type(value) is int:
                value = float(value)
            elif type(value) is not float or not math.isfinite(value):
                continue
            for detector in detectors:
                if not detector.update(value):
                    continue
                window.detections[name] = window.detections.get(name, 0) + 1
                check = self._detector_check(name, detector, event.timestamp, severity="warning")
                bounds = WindowBounds(-1, window.first or event.timestamp, event.timestamp)
                alert = self.tracker.observe(
                    check, window=bounds, sample_size=window.count, model_version=self.model_version
                )
                if alert is not None:
                    out.append(alert)

    def _detector_check(
        self, name: str, detector: StandardisedDetector, at: int, severity: Any
    ) -> RuleCheck:
        return RuleCheck(
            rule=f"detector.{detector.name}",
            kind="prediction_drift" if name == PREDICTION else "drift",
            feature=None if name == PREDICTION else name,
            statistic=detector.name,
            value=None,
            threshold=None,
            severity=severity,
            evidence={
                "event_time": at,
                "detections_total": detector.detections,
                "reference_id": self.reference.reference_id if self.reference else None,
            },
        )

    def _close(self, key: int, bounds: WindowBounds) -> list[Output]:
        window = self.open.pop(key, None) or self._new_window()
        late, self.late = self.late, 0
        ref = self.reference
        reference_id = ref.reference_id if ref else None
        drift = {name: acc.drift() for name, acc in window.features.items()}
        quality = {name: acc.quality(window.count) for name, acc in window.features.items()}
        prediction = window.prediction.drift() if window.prediction else {}
        summary = WindowSummary(
            model_id=self.model_id,
            model_version=self.model_version,
            window_kind=self.windows.kind,
            window_index=bounds.index,
            window_start=bounds.start,
            window_end=bounds.end,
            sample_size=window.count,
            late_events=late,
            drift={name: stats for name, stats in drift.items() if stats},
            prediction_drift=prediction,
            quality={name: stats for name, stats in quality.items() if stats},
            latency_ms=window.latency.percentiles(),
            event_lag_ms=window.lag.percentiles(),
            detections=dict(sorted(window.detections.items())),
            reference_id=reference_id,
        )
        checks = self._window_checks(window, drift, quality, prediction, reference_id)
        alerts = [
            alert
            for check in checks
            if (
                alert := self.tracker.observe(
                    check, window=bounds, sample_size=window.count, model_version=self.model_version
                )
            )
        ]
        if (
            self.spec.drift.rebaseline_after_resolve
            and self.warmup is None
            and any(
                a.status == "resolved" and a.kind in ("drift", "prediction_drift") for a in alerts
            )
        ):
            self.warmup = _Warmup(self.spec.warmup_events)
        return [summary, *alerts]

    def _window_checks(
        self,
        window: _Window,
        drift: dict[str, Any],
        quality: dict[str, Any],
        prediction: dict[str, Any],
        reference_id: str | None,
    ) -> list[RuleCheck]:
        ref = self.reference
        inputs = [
            DriftInput(name, stats, window.features[name].n)
            for name, stats in drift.items()
            if stats
        ]
        predicted = (
            DriftInput(PREDICTION, prediction, window.prediction.n)
            if prediction and window.prediction
            else None
        )
        checks = drift_checks(self.spec, inputs, predicted, reference_id)
        baseline = {n: r.missing_rate for n, r in ref.features.items()} if ref else {}
        range_null = {
            n: 2.0 / (r.sample_size + 1)
            for n, r in (ref.features.items() if ref else ())
            if isinstance(r, NumericReference)
        }
        checks += quality_checks(
            self.spec,
            quality=quality,
            events=window.count,
            baseline_missing=baseline,
            range_null_rate=range_null,
            reference_id=reference_id,
        )
        for name, detectors in self.detectors.items():
            for detector in detectors:
                if not window.detections.get(name):
                    checks.append(self._detector_check(name, detector, -1, severity=None))
        return checks
