"""``ModelMonitor``: everything stream-monitor measures for one model, driven by its events.

Feed prediction events with :meth:`ModelMonitor.update`; it returns the window summaries and alert
events they caused, in a deterministic order. Pure: no I/O, no clock, no logging; time is the
events' own timestamps. Bad values inside an event are counted in data quality, never raised.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from stream_monitor.config.models import FeatureType, ModelSpec
from stream_monitor.events.alerts import AlertEvent, WindowSummary
from stream_monitor.events.fast import PredictionLike
from stream_monitor.events.schemas import LabelEvent
from stream_monitor.monitor.detectors import StandardisedDetector
from stream_monitor.monitor.lifecycle import AlertTracker, RuleCheck
from stream_monitor.monitor.outcomes import Outcomes, WindowOutcome, rolling_value
from stream_monitor.monitor.reference import (
    NumericReference,
    ReferenceProfile,
    profile_from_columns,
)
from stream_monitor.monitor.rules import (
    DriftInput,
    drift_checks,
    performance_check,
    quality_checks,
)
from stream_monitor.monitor.snapshot import SnapshotError, dump_state, load_state, unpack_state
from stream_monitor.monitor.window_state import OpenWindow, Run, Warmup, new_accumulator
from stream_monitor.monitor.windows import CountWindows, EventTimeWindows, WindowBounds

__all__ = ["ERRORS", "PREDICTION", "ModelMonitor", "Output"]

Output = WindowSummary | AlertEvent
PREDICTION = "<prediction>"  # detections key of the prediction signal
ERRORS = "<errors>"  # detections key of the error stream


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
        self.warmup: Warmup | None = None
        window = spec.window
        self.windows: CountWindows | EventTimeWindows
        if window.kind == "count":
            self.windows = CountWindows(window.events)
        else:
            size = round(window.size * 1000)
            step = round((window.step or window.size) * 1000)
            self.windows = EventTimeWindows(size, step, round(window.allowed_lateness * 1000))
        self.open: dict[int, OpenWindow] = {}
        self.late = 0
        self.max_time: int | None = None
        self.events = 0
        self.model_version: str | None = None
        self.tracker = AlertTracker(model_id, spec.alerting, spec.runbook_url, spec.labels)
        self.outcomes = Outcomes(spec, reference.performance if reference else None)
        if reference is not None:
            self._use_reference(reference)
        else:
            self.warmup = Warmup(spec.warmup_events, self._categorical())

    # -- events ---------------------------------------------------------------------------

    def update(self, event: PredictionLike) -> list[Output]:
        """Account for one prediction event; returns the summaries and alerts it caused."""
        return self.update_batch((event,))

    def update_batch(self, events: Sequence[PredictionLike]) -> list[Output]:
        """Account for prediction events in order; the summaries and alerts they caused.

        The same outputs as :meth:`update` event by event, however the events are batched:
        events are taken in runs that fall into the same windows, and a run ends where a window
        closes, the warm-up ends or the model version changes, so each run is counted column
        by column at once.
        """
        if isinstance(self.windows, CountWindows):
            return self._update_counted(events, self.windows)
        out: list[Output] = []
        run: list[PredictionLike] = []
        lags: list[int] = []
        run_keys: tuple[int, ...] = ()
        windows = self.windows
        for event in events:
            version = event.model_version
            if version is not None and version != self.model_version:
                if run:
                    self._apply(Run(run, lags, self.signal), run_keys, out)
                    run, lags = [], []
                self.model_version = version
            self.events += 1
            t = event.timestamp
            if self.max_time is None or t > self.max_time:
                self.max_time = t
                lag = 0
            else:
                lag = self.max_time - t
            keys = tuple(windows.open_windows(t))
            if not keys:
                self.late += 1
            if run and keys != run_keys:
                self._apply(Run(run, lags, self.signal), run_keys, out)
                run, lags = [], []
            run.append(event)
            lags.append(lag)
            run_keys = keys
            closed = windows.closed_windows()
            warmup = self.warmup
            if closed or (warmup is not None and warmup.count + len(run) >= warmup.size):
                self._apply(Run(run, lags, self.signal), run_keys, out)
                run, lags = [], []
                for key, bounds in closed:
                    out.extend(self._close(key, bounds))
        if run:
            self._apply(Run(run, lags, self.signal), run_keys, out)
        return out

    def _update_counted(
        self, events: Sequence[PredictionLike], windows: CountWindows
    ) -> list[Output]:
        """:meth:`update_batch` for count windows: runs are slices up to the next close."""
        out: list[Output] = []
        start, total = 0, len(events)
        while start < total:
            room = windows.size - windows.count
            if self.warmup is not None:
                room = min(room, self.warmup.size - self.warmup.count)
            run = list(events[start : start + max(room, 1)])
            versions = set(map(_VERSION, run))
            versions.discard(None)
            if versions and versions != {self.model_version}:
                run = self._until_new_version(run)  # a new model version also ends a run
            start += len(run)
            self.events += len(run)
            chunk = Run(run, [], self.signal)
            chunk.lags = _lags(chunk.timestamps(), self.max_time)
            first, last = chunk.first_last()
            self.max_time = last if self.max_time is None else max(self.max_time, last)
            windows.take(len(run), first, last)
            self._apply(chunk, (windows.index,), out)
            for key, bounds in windows.closed_windows():
                out.extend(self._close(key, bounds))
        return out

    def _until_new_version(self, run: list[PredictionLike]) -> list[PredictionLike]:
        """The run up to the event before the next model version (taking the first's)."""
        version = self.model_version
        for i, event in enumerate(run):
            if event.model_version is not None and event.model_version != version:
                if i:
                    return run[:i]
                version = self.model_version = event.model_version
        return run

    def _apply(self, run: Run, keys: tuple[int, ...], out: list[Output]) -> None:
        """Count a run of events that all fall into windows ``keys``, then raise what it fired."""
        before: dict[int, tuple[int, int | None]] = {}
        for key in keys:
            window = self.open.get(key)
            if window is None:
                window = self.open[key] = self._new_window()
            before[key] = (window.count, window.first)
            window.add_run(run)
        hits = self._detections(run, keys) if self.detectors and keys else []
        for position, names in self.outcomes.on_predictions(run.events, keys):
            hits.append((position, 1, 0, names))
        # Alerts in the order event-by-event processing raises them.
        hits.sort(key=lambda hit: hit[:3])
        for position, source, _, what in hits:
            at = _At(run, position, before)
            if source == 1:
                self._error_alerts(what, run.events[position].timestamp, out, at)
            else:
                self._detector_alert(what, at, keys[-1], out)
        warmup = self.warmup
        if warmup is not None:
            for event in run.events:
                if warmup.add(event):
                    self._finish_warmup()
                    break  # a run ends where the warm-up does

    def update_label(self, label: LabelEvent) -> list[Output]:
        """Join a label to its prediction; returns the alerts of error-stream detectors.

        Late labels revise closed windows; their revised summaries come from :meth:`revisions`
        (called after each batch of labels, and at every window close).
        """
        fired = self.outcomes.on_label(label.event_id, label.label, label.timestamp)
        out: list[Output] = []
        if fired:
            self._error_alerts(fired, label.timestamp, out)
        return out

    def revisions(self) -> list[Output]:
        """Revised summaries of closed windows that late labels changed, and their alerts."""
        out: list[Output] = []
        for _, outcome in self.outcomes.dirty():
            if outcome.summary is None or outcome.bounds is None:  # pragma: no cover
                continue  # only closed windows are ever dirty
            revised = outcome.summary.model_copy(
                update={
                    "revision": outcome.summary.revision + 1,
                    **self._label_fields(outcome, outcome.summary.sample_size),
                }
            )
            outcome.summary = revised
            out.append(revised)
            check = performance_check(
                self.spec, revised.performance, outcome.labelled, self.outcomes.reference
            )
            # Revisions can raise an alert, but never count as a healthy window again.
            if check is not None and check.severity is not None:
                alert = self.tracker.observe(
                    check,
                    window=outcome.bounds,
                    sample_size=revised.sample_size,
                    model_version=self.model_version,
                )
                if alert is not None:
                    out.append(alert)
        return out

    def _label_fields(self, outcome: WindowOutcome, events: int) -> dict[str, Any]:
        counts = dict(sorted(self.outcomes.join.counts.items()))
        if self.outcomes.too_late:
            counts["labels_too_late"] = self.outcomes.too_late
        return {
            "performance": {
                **(outcome.performance.metrics() if outcome.labelled else {}),
                **rolling_value(self.outcomes),
            },
            "label_coverage": outcome.labelled / events if events else None,
            "label_delay_ms": outcome.delays.percentiles(),
            "label_stats": counts,
        }

    def _detections(self, run: Run, keys: tuple[int, ...]) -> list[tuple[int, int, int, Any]]:
        """Feed the run to the change detectors: (position, 0, order, what fired) per signal."""
        hits: list[tuple[int, int, int, Any]] = []
        order = 0
        for name, detectors in self.detectors.items():
            column = run.numeric(None if name == PREDICTION else name)
            values, positions = column.for_detectors()
            for detector in detectors:
                done = detector.detections
                for n, i in enumerate(detector.update_many(values)):
                    hits.append((int(positions[i]), 0, order, (name, detector, done + n + 1)))
                order += 1
        return hits

    def _error_alerts(
        self, fired: list[str], at: int, out: list[Output], when: _At | None = None
    ) -> None:
        keys = list(self.open)
        window = self.open[keys[-1]] if keys else None
        count, first = _as_of(window, keys[-1] if keys else None, when)
        for name in fired:
            if window is not None:
                window.detections[ERRORS] = window.detections.get(ERRORS, 0) + 1
            check = self._error_check(name, at, severity="warning")
            start = first if first is not None else at
            alert = self.tracker.observe(
                check,
                window=WindowBounds(-1, start, at),
                sample_size=count,
                model_version=self.model_version,
            )
            if alert is not None:
                out.append(alert)

    def _error_check(self, name: str, at: int, severity: Any) -> RuleCheck:
        return RuleCheck(
            rule=f"detector.{name}",
            kind="concept_drift",
            feature=None,
            statistic=name,
            value=None,
            threshold=None,
            severity=severity,
            evidence={"event_time": at, "signal": "error rate of labelled predictions"},
        )

    def snapshot(self, key: bytes | None = None) -> bytes:
        """Everything this monitor knows, as bytes (signed with ``key`` when given)."""
        return dump_state(("model", self.model_id, self.__dict__), key)

    def restore(self, data: bytes, key: bytes | None = None) -> None:
        """Continue exactly where the monitor that made ``data`` stopped.

        Raises :class:`SnapshotError` when the snapshot is unreadable, tampered, of another
        model, or made under a different spec (the configuration changed: start fresh).
        """
        _, model_id, state = unpack_state(load_state(data, key), "model")
        if model_id != self.model_id:
            raise SnapshotError(f"snapshot is of model {model_id!r}, not {self.model_id!r}")
        if state.get("spec") != self.spec:
            raise SnapshotError(
                f"model {model_id!r}: its configuration changed since the snapshot; "
                "its state cannot be reused"
            )
        self.__dict__.update(state)

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
                    StandardisedDetector(
                        d, drift.detector_delta, ref.mean, ref.std, drift.detector_block
                    )
                    for d in drift.detectors
                ]

    def _categorical(self) -> frozenset[str]:
        return frozenset(name for name, kind in self.types.items() if kind == "categorical")

    def _finish_warmup(self) -> None:
        assert self.warmup is not None  # noqa: S101
        warm, self.warmup = self.warmup, None
        self._use_reference(
            profile_from_columns(
                self.model_id,
                self.types,
                self.spec.task,
                warm.columns,
                scores=warm.scores,
                predictions=warm.predictions,
            )
        )

    # -- windows --------------------------------------------------------------------------

    def _new_window(self) -> OpenWindow:
        ref = self.reference
        features = {
            name: new_accumulator(kind, ref.features.get(name) if ref else None)
            for name, kind in self.types.items()
        }
        prediction = None
        if self.signal is not None and ref is not None and ref.prediction is not None:
            prediction = new_accumulator(ref.prediction.kind, ref.prediction)
        return OpenWindow(features, prediction)

    def _detector_alert(
        self, what: tuple[str, StandardisedDetector, int], when: _At, key: int, out: list[Output]
    ) -> None:
        name, detector, detections = what
        at = when.run.events[when.position].timestamp
        window = self.open[key]
        window.detections[name] = window.detections.get(name, 0) + 1
        count, first = _as_of(window, key, when)
        check = self._detector_check(name, detector, detections, at, severity="warning")
        bounds = WindowBounds(-1, first or at, at)
        alert = self.tracker.observe(
            check, window=bounds, sample_size=count, model_version=self.model_version
        )
        if alert is not None:
            out.append(alert)

    def _detector_check(
        self, name: str, detector: StandardisedDetector, detections: int, at: int, severity: Any
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
                "detections_total": detections,
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
            **self._label_fields(self.outcomes.window(key), window.count),
        )
        outcome = self.outcomes.close(key, bounds, summary)
        if self.max_time is not None:
            self.outcomes.expire(self.max_time)
        checks = self._window_checks(window, drift, quality, prediction, reference_id)
        performance = performance_check(
            self.spec, summary.performance, outcome.labelled, self.outcomes.reference
        )
        if performance is not None:
            checks.append(performance)
        if not window.detections.get(ERRORS):
            checks += [self._error_check(name, -1, None) for name, _ in self.outcomes.detectors]
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
            self.warmup = Warmup(self.spec.warmup_events, self._categorical())
        return [summary, *alerts, *self.revisions()]

    def _window_checks(
        self,
        window: OpenWindow,
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
        # Share of new values beyond a sample's min/max: 2/(n+1) on average, but the extremes
        # of a sample are themselves random; use the 99.9% upper bound, 2 * (1 - 0.001^(1/n)).
        range_null = {
            n: 2.0 * (1.0 - 0.001 ** (1.0 / max(r.sample_size, 1)))
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
                    checks.append(
                        self._detector_check(name, detector, detector.detections, -1, severity=None)
                    )
        return checks


class _At(NamedTuple):
    """Just after event ``position`` of a run; ``before``: (count, first) of its windows."""

    run: Run
    position: int
    before: dict[int, tuple[int, int | None]]


def _as_of(window: OpenWindow | None, key: int | None, when: _At | None) -> tuple[int, int | None]:
    """A window's event count and first event time as they were at ``when``."""
    if window is None:
        return 0, None
    if when is None or key not in when.before:
        return window.count, window.first
    count, first = when.before[key]
    position = when.position
    earliest = min(when.run.timestamps()[: position + 1])
    return count + position + 1, earliest if first is None else min(first, earliest)


_VERSION = operator.attrgetter("model_version")


def _lags(times: list[int], latest: int | None) -> list[int]:
    """How far each event time is behind the newest one before it (0 when it is the newest)."""
    if (latest is None or times[0] >= latest) and all(map(operator.le, times, times[1:])):
        return [0] * len(times)  # in order: the usual case
    newest = list(itertools.accumulate(times, max, initial=times[0] if latest is None else latest))
    return [n - t if n > t else 0 for n, t in zip(newest, times, strict=False)]
