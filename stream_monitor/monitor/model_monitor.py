"""``ModelMonitor``: everything stream-monitor measures for one model, driven by its events.

The per-event work (runs, windows, accumulators, change detectors, the warm-up sample) is done by
the native core (``stream_monitor._native.ModelCore``) on a natively decoded batch; this class
keeps what is decided per window: labels and performance (``Outcomes``), the reference, the
rules, the alert lifecycle and the outputs. Feed a batch with :meth:`update_native` (or events
with :meth:`update`/:meth:`update_batch`); it returns the window summaries and alert events they
caused, in a deterministic order. Pure: no I/O, no clock, no logging; time is the events' own
timestamps. Bad values inside an event are counted in data quality, never raised.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, TypeVar

from stream_monitor._native import Batch, ModelCore, decode_batch
from stream_monitor.config.models import FeatureType, ModelSpec
from stream_monitor.events.alerts import AlertEvent, WindowSummary
from stream_monitor.events.schemas import LabelEvent, PredictionLike
from stream_monitor.monitor.lifecycle import AlertTracker, RuleCheck
from stream_monitor.monitor.multivariate import JointCheck
from stream_monitor.monitor.outcomes import Outcomes, WindowOutcome, rolling_value
from stream_monitor.monitor.reference import (
    CategoricalReference,
    FeatureReference,
    NumericReference,
    ReferenceProfile,
    profile_from_columns,
)
from stream_monitor.monitor.rules import (
    DriftInput,
    drift_checks,
    estimation_check,
    performance_check,
    quality_checks,
)
from stream_monitor.monitor.segments import Segments, segment_window
from stream_monitor.monitor.snapshot import SnapshotError, dump_state, load_state, unpack_state
from stream_monitor.monitor.windows import WindowBounds

__all__ = ["ERRORS", "JOINT", "PREDICTION", "ModelMonitor", "Output", "encode_for_core"]

Output = WindowSummary | AlertEvent
PREDICTION = "<prediction>"  # detections key of the prediction signal
JOINT = "__joint__"  # detections key (and alert feature) of the reconstruction error
ERRORS = "<errors>"  # detections key of the error stream


class ModelMonitor:
    """Windows, drift, data quality, change detectors and alert lifecycle for one model."""

    def __init__(
        self,
        model_id: str,
        spec: ModelSpec,
        reference: ReferenceProfile | None = None,
        *,
        segment: str | None = None,
    ) -> None:
        self.model_id = model_id
        self.spec = spec
        # A segment's monitor (``channel=phone``) follows its model's windows.
        self.segment = segment
        self.types: dict[str, FeatureType] = dict(spec.features)
        self.signal: Literal["score", "prediction"] | None = None
        # What the rules read of the reference; its bins live in the native core.
        self.reference: ReferenceSummary | None = None
        # multivariate drift: the features the core's joint reference covers, and its error
        self.joint: tuple[tuple[str, ...], float] | None = None
        # signal name -> detector names; the detectors themselves live in the native core
        self.detectors: dict[str, tuple[str, ...]] = {}
        window = spec.window
        followed = segment_window(spec) if segment is not None else None
        if followed is not None:
            shape: tuple[Any, ...] = followed
            self.window_kind = "count"
        elif window.kind == "count":
            shape = ("count", window.events)
            self.window_kind = "count"
        else:
            size = round(window.size * 1000)
            step = round((window.step or window.size) * 1000)
            shape = ("time", size, step, round(window.allowed_lateness * 1000))
            self.window_kind = "tumbling" if step == size else "hopping"
        drift = spec.drift
        self.core = ModelCore(
            shape,
            spec.warmup_events,
            list(self._categorical()),
            list(drift.detectors),
            drift.detector_delta,
            drift.detector_block,
            list(self.types.items()),
        )
        self.window_detections: dict[int, dict[str, int]] = {}  # per open window
        self.tracker = AlertTracker(
            model_id, spec.alerting, spec.runbook_url, spec.labels, segment=segment
        )
        self.outcomes = Outcomes(spec, reference.performance if reference else None)
        self.segments = (
            Segments(model_id, spec, reference.segments if reference else None)
            if spec.segments.by and segment is None
            else None
        )
        if reference is not None:
            self._use_reference(reference)
        else:
            self.core.start_warmup()

    @property
    def warming_up(self) -> bool:
        """Whether the model is still learning its reference."""
        return self.core.warming_up

    @property
    def model_version(self) -> str | None:
        """The model version of the latest events."""
        return self.core.model_version

    @property
    def events(self) -> int:
        """Prediction events counted."""
        return self.core.events

    # -- events ---------------------------------------------------------------------------

    def update(self, event: PredictionLike) -> list[Output]:
        """Account for one prediction event; returns the summaries and alerts it caused."""
        return self.update_batch((event,))

    def update_batch(self, events: Sequence[PredictionLike]) -> list[Output]:
        """Account for prediction events in order; the summaries and alerts they caused.

        The same outputs however the events are batched (runs end where a window closes, the
        warm-up ends or the model version changes). The events are handed to the native core as
        their canonical JSON.
        """
        if not events:
            return []
        batch = decode_batch([encode_for_core(e) for e in events], trusted=True)
        if deferred := batch.deferred():  # the encoding above is canonical: never deferred
            raise ValueError(
                f"event {events[deferred[0]].event_id!r} cannot be read by the native core"
            )
        return self.update_native(batch, list(range(len(events))))

    def update_native(self, batch: Batch, positions: list[int]) -> list[Output]:
        """Account for this model's events of a natively decoded ``batch`` (at ``positions``).

        Windows that labels revised since this model's last prediction are published first:
        revisions come out at points of the model's own stream (its next prediction, or a window
        close), never where a fetch or a batch happened to end, so every run publishes the same.
        """
        # A segment's revisions were published by its model's call, just before this one.
        out: list[Output] = self.revisions() if self.segment is None else []
        segments = self.segments
        if segments is not None:
            segments.route(batch, positions)
        runs, pause, what = self.core.feed(batch, positions)
        while True:
            for run in runs:
                self._apply(batch, run, out)
            if pause == "close":
                if segments is None:
                    out.extend(self._close(what))
                else:  # the segments count what the model counted, then close with it
                    cursor = self.core.cursor
                    out.extend(segments.feed(batch, positions[cursor - 1] if cursor else -1))
                    out.extend(self._close(what))
                    out.extend(segments.close(self.core.max_time, what[1]))
            elif pause == "warmup":
                self._finish_warmup(what)
            else:
                if segments is not None:
                    out.extend(segments.feed(batch))
                return out
            runs, pause, what = self.core.resume()

    def _apply(self, batch: Batch, run: tuple[Any, ...], out: list[Output]) -> None:
        """Python's share of a run the core counted: labels, performance and the alerts."""
        positions, keys, before, detector_hits, last_open, versions = run
        columns = _RunColumns(batch, positions)
        errors = self.outcomes.on_run(columns, keys)
        if not detector_hits and not errors:
            return  # most runs: nothing fired
        names = list(self.detectors)  # signals in the core's order, each with every detector
        per_signal = max(len(self.spec.drift.detectors), 1)
        hits: list[tuple[int, int, int, Any]] = [
            (position, 0, order, (names[order // per_signal], detector, detections))
            for position, order, detector, detections in detector_hits
        ]
        hits += [(position, 1, 0, fired) for position, fired in errors]
        # Alerts in the order event-by-event processing raises them.
        hits.sort(key=lambda hit: hit[:3])
        at = _At(columns.timestamps, dict(zip(keys, before, strict=True)), last_open)
        for position, source, _, what in hits:
            event_time = columns.timestamps[position]
            version = _version_at(versions, position, self.model_version)
            if source == 1:
                last = last_open[0] if last_open else None
                when = at.of(last, position)
                self._error_alerts(what, event_time, out, last, when, version=version)
            else:
                when = at.of(keys[-1], position)
                self._detector_alert(what, when, keys[-1], event_time, out, version=version)

    def update_label(self, label: LabelEvent) -> list[Output]:
        """Join a label to its prediction; returns the alerts of error-stream detectors.

        Late labels revise closed windows; their revised summaries come from :meth:`revisions`
        (called after each batch of labels, and at every window close).
        """
        # The segments first: the model's join forgets the prediction once matched.
        out: list[Output] = []
        if self.segments is not None:
            for segment in self.segments.on_label(label.event_id):
                out.extend(segment.update_label(label))
        fired = self.outcomes.on_label(label.event_id, label.label, label.timestamp)
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
            check = self._performance_check(revised, outcome)
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
        if self.segments is not None:
            out.extend(self.segments.revisions())
        return out

    def _performance_check(
        self, summary: WindowSummary, outcome: WindowOutcome
    ) -> RuleCheck | None:
        """The performance rule on a window's summary (first or revised)."""
        return performance_check(
            self.spec,
            summary.performance,
            outcome.labelled,
            self.outcomes.reference,
            (
                outcome.performance.standard_error(self.spec.performance.metric),
                self.outcomes.reference_error,
            ),
        )

    def _label_fields(self, outcome: WindowOutcome, events: int) -> dict[str, Any]:
        counts = dict(sorted(self.outcomes.join.counts.items()))
        if self.outcomes.too_late:
            counts["labels_too_late"] = self.outcomes.too_late
        realised = outcome.performance.metrics() if outcome.labelled else {}
        estimated = self.outcomes.estimated(outcome)
        # Beside the realised metrics once labels are in: how far off the estimate was.
        errors = {
            f"estimation_error_{name}": value - real
            for name, value in estimated.items()
            if value is not None
            and (real := realised.get(name)) is not None
            and outcome.labelled >= self.spec.performance.min_labels
        }
        return {
            "performance": {
                **realised,
                **rolling_value(self.outcomes),
                **{f"estimated_{n}": v for n, v in estimated.items() if v is not None},
                **errors,
            },
            "label_coverage": outcome.labelled / events if events else None,
            "label_delay_ms": outcome.delays.percentiles(),
            "label_stats": counts,
        }

    def _error_alerts(
        self,
        fired: list[str],
        at: int,
        out: list[Output],
        key: int | None = None,
        when: tuple[int, int | None] | None = None,
        *,
        version: str | None = None,
    ) -> None:
        """Alerts of error-stream detectors, counted on window ``key`` (by default the last
        open one) as it stood then (``when``: its count and first time)."""
        if when is None:
            keys = self.core.open_keys()
            key = keys[-1] if keys else None
            state = self.core.window_state(key) if key is not None else None
            when = state if state is not None else (0, None)
        count, first = when
        for name in fired:
            if key is not None:
                detections = self.window_detections.setdefault(key, {})
                detections[ERRORS] = detections.get(ERRORS, 0) + 1
            check = self._error_check(name, at, severity="warning")
            start = first if first is not None else at
            alert = self.tracker.observe(
                check,
                window=WindowBounds(-1, start, at),
                sample_size=count,
                model_version=version or self.model_version,
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

    def flush(self, bounds: tuple[int, int, int] | None = None) -> list[Output]:
        """Close every open window (end of a finite stream, e.g. a backtest); a segment's
        count window takes its model's last ``bounds``."""
        out: list[Output] = []
        last = bounds
        for closed in self.core.flush():
            out.extend(self._close(self._followed(closed, bounds)))
            last = closed[1]
        if self.segments is not None:
            out.extend(self.segments.flush(last))
        return out

    def follow(self, max_time: int | None, bounds: tuple[int, int, int]) -> list[Output]:
        """A segment's share of its model's close of the window of ``bounds`` (the model's
        newest event time ``max_time``): its windows that closed with it."""
        out: list[Output] = []
        for closed in self.core.close_through(max_time):
            out.extend(self._close(self._followed(closed, bounds)))
        return out

    def _followed(
        self, closed: tuple[Any, ...], bounds: tuple[int, int, int] | None
    ) -> tuple[Any, ...]:
        """A segment's closed count window under its model's window bounds."""
        if self.segment is None or bounds is None or self.spec.window.kind != "count":
            return closed
        return (closed[0], bounds, *closed[2:])

    # -- reference ------------------------------------------------------------------------

    def _use_reference(self, reference: ReferenceProfile) -> None:
        self.reference = ReferenceSummary.of(reference)
        if not self.types:
            self.types = _shared({name: ref.kind for name, ref in reference.features.items()})
        self.signal = reference.prediction_signal
        self.detectors = {}
        drift = self.spec.drift
        names = list(self.types)
        signals: list[tuple[str, int | None, Any]] = [
            (name, slot, reference.features.get(name)) for slot, name in enumerate(names)
        ]
        signals.append((PREDICTION, None, reference.prediction))
        watched: list[int | None] = []  # the detectors see each value's rank in its reference
        for name, slot, ref in signals:
            if isinstance(ref, NumericReference) and drift.detectors:
                self.detectors[name] = drift.detectors  # one tuple shared by every signal
                watched.append(slot)
        joint = reference.joint if drift.multivariate.enabled else None
        if joint is not None and not all(self.types.get(n) == "numeric" for n in joint.features):
            joint = None  # made for other features (a profile file of another schema)
        if joint is not None and drift.detectors:
            self.detectors[JOINT] = drift.detectors  # each event's reconstruction error, last
        self.detectors = _shared(self.detectors)
        prediction = reference.prediction
        self.core.set_reference(
            list(self.types.items()),
            [_describe(reference.features.get(name), kind) for name, kind in self.types.items()],
            self.signal,
            (prediction.kind, _describe(prediction, prediction.kind)) if prediction else None,
            watched,
        )
        self.joint = None if joint is None else (joint.features, joint.error_mean)
        self.core.set_joint(
            None if joint is None else joint.native([names.index(n) for n in joint.features])
        )

    def _categorical(self) -> frozenset[str]:
        return frozenset(name for name, kind in self.types.items() if kind == "categorical")

    def _finish_warmup(self, sample: tuple[Any, ...]) -> None:
        columns, scores, predictions = sample
        multivariate = self.spec.drift.multivariate
        self._use_reference(
            profile_from_columns(
                self.model_id,
                self.types,
                self.spec.task,
                columns,
                scores=scores,
                predictions=predictions,
                variance_share=multivariate.variance_share if multivariate.enabled else None,
            )
        )

    # -- windows --------------------------------------------------------------------------

    def _detector_alert(
        self,
        what: tuple[str, int, int],
        when: tuple[int, int | None],
        key: int,
        at: int,
        out: list[Output],
        *,
        version: str | None = None,
    ) -> None:
        name, detector, detections = what
        window = self.window_detections.setdefault(key, {})
        window[name] = window.get(name, 0) + 1
        count, first = when
        check = self._detector_check(
            name, self.detectors[name][detector], detections, at, severity="warning"
        )
        bounds = WindowBounds(-1, first or at, at)
        alert = self.tracker.observe(
            check, window=bounds, sample_size=count, model_version=version or self.model_version
        )
        if alert is not None:
            out.append(alert)

    def _detector_check(
        self, name: str, detector: str, detections: int, at: int, severity: Any
    ) -> RuleCheck:
        return RuleCheck(
            rule=f"detector.{detector}",
            kind="prediction_drift" if name == PREDICTION else "drift",
            feature=None if name == PREDICTION else name,
            statistic=detector,
            value=None,
            threshold=None,
            severity=severity,
            evidence={
                "event_time": at,
                "detections_total": detections,
                "reference_id": self.reference.reference_id if self.reference else None,
                **(
                    {"signal": "each event's reconstruction error (multivariate drift)"}
                    if name == JOINT
                    else {}
                ),
            },
        )

    def _close(self, closed: tuple[Any, ...]) -> list[Output]:
        key, (index, start, end), late, count, features, prediction, latency, lag, joint = closed
        bounds = WindowBounds(index, start, end)
        detections = self.window_detections.pop(key, {})
        ref = self.reference
        reference_id = ref.reference_id if ref else None
        drift = {name: stats for name, stats, _, _, _ in features}
        quality = {name: q for name, _, q, _, _ in features}
        sizes = {name: n for name, _, _, n, _ in features}
        distributions = {name: d for name, _, _, _, d in features if d is not None}
        if prediction and prediction[3] is not None:
            distributions[PREDICTION] = prediction[3]
        prediction_drift = prediction[0] if prediction else {}
        found = (
            JointCheck.of(*self.joint, joint)
            if joint is not None and self.joint is not None
            else None
        )
        summary = WindowSummary(
            model_id=self.model_id,
            model_version=self.model_version,
            segment=self.segment,
            window_kind=self.window_kind,
            window_index=bounds.index,
            window_start=bounds.start,
            window_end=bounds.end,
            sample_size=count,
            late_events=late,
            drift={name: stats for name, stats in drift.items() if stats},
            prediction_drift=prediction_drift,
            multivariate=found.summary() if found is not None else {},
            quality={name: stats for name, stats in quality.items() if stats},
            latency_ms=latency,
            event_lag_ms=lag,
            detections=dict(sorted(detections.items())),
            reference_id=reference_id,
            distributions=distributions,
            **self._label_fields(self.outcomes.window(key), count),
        )
        outcome = self.outcomes.close(key, bounds, summary)
        max_time = self.core.max_time
        if max_time is not None:
            self.outcomes.expire(max_time)
        closed_window = _Closed(
            drift,
            quality,
            sizes,
            prediction_drift,
            prediction[2] if prediction else 0,
            count,
            detections,
            found,
            joint[0] if joint else 0,
        )
        # A segment's window too small to judge is published but not judged.
        judged = self.segment is None or count >= self.spec.segments.min_events
        checks = self._window_checks(closed_window, reference_id) if judged else []
        performance = self._performance_check(summary, outcome)
        if performance is not None and judged:
            checks.append(performance)
        estimated = estimation_check(
            self.spec,
            summary.performance,
            outcome.labelled,
            count,
            self.outcomes.estimation_band(outcome),
        )
        if estimated is not None and judged:
            checks.append(estimated)
        if judged and not detections.get(ERRORS):
            tracks = self.tracker.tracks
            checks += [
                self._error_check(name, -1, None)
                for name, _ in self.outcomes.detectors
                if tracks(f"detector.{name}", None)
            ]
        alerts = [
            alert
            for check in checks
            if (
                alert := self.tracker.observe(
                    check, window=bounds, sample_size=count, model_version=self.model_version
                )
            )
        ]
        if (
            self.spec.drift.rebaseline_after_resolve
            and not self.core.warming_up
            and any(
                a.status == "resolved" and a.kind in ("drift", "prediction_drift") for a in alerts
            )
        ):
            self.core.start_warmup()
        return [summary, *alerts, *self.revisions()]

    def _window_checks(self, window: _Closed, reference_id: str | None) -> list[RuleCheck]:
        drift, quality, sizes = window.drift, window.quality, window.sizes
        prediction, detections = window.prediction, window.detections
        ref = self.reference
        inputs = [DriftInput(name, stats, sizes[name]) for name, stats in drift.items() if stats]
        predicted = (
            DriftInput(PREDICTION, prediction, window.prediction_size) if prediction else None
        )
        tested = None
        if window.joint is not None:
            tested = (window.joint, window.joint_events)
        tracks = self.tracker.tracks
        checks = drift_checks(self.spec, inputs, predicted, reference_id, tested, tracks=tracks)
        baseline = {n: r.missing_rate for n, r in ref.features.items()} if ref else {}
        # Share of new values beyond a sample's min/max: 2/(n+1) on average, but the extremes
        # of a sample are themselves random; use the 99.9% upper bound, 2 * (1 - 0.001^(1/n)).
        range_null = {
            n: 2.0 * (1.0 - 0.001 ** (1.0 / max(r.sample_size, 1)))
            for n, r in (ref.features.items() if ref else ())
            if r.kind == "numeric"
        }
        checks += quality_checks(
            self.spec,
            quality=quality,
            events=window.events,
            baseline_missing=baseline,
            range_null_rate=range_null,
            reference_id=reference_id,
            tracks=tracks,
        )
        counts = self.core.detections()
        for (name, detectors), totals in zip(self.detectors.items(), counts, strict=True):
            for detector, total in zip(detectors, totals, strict=True):
                if not detections.get(name) and tracks(
                    f"detector.{detector}", None if name == PREDICTION else name
                ):
                    checks.append(self._detector_check(name, detector, total, -1, severity=None))
        return checks


class FeatureSummary(NamedTuple):
    """What the rules read of a feature's reference."""

    kind: str
    missing_rate: float
    sample_size: int


class ReferenceSummary(NamedTuple):
    """What the rules read of a reference profile (the bins are in the native core)."""

    reference_id: str
    features: dict[str, FeatureSummary]

    @classmethod
    def of(cls, profile: ReferenceProfile) -> ReferenceSummary:
        # Features alike (same kind, missing rate and sample size) share one summary object.
        shared: dict[tuple[Any, ...], FeatureSummary] = {}
        features = {}
        for name, ref in profile.features.items():
            summary = FeatureSummary(ref.kind, ref.missing_rate, ref.sample_size)
            key = (ref.kind, type(ref.missing_rate), ref.missing_rate, ref.sample_size)
            features[name] = shared.setdefault(key, summary)
        return cls(profile.reference_id, features)


class _Closed(NamedTuple):
    """What the rules read of a closed window."""

    drift: dict[str, Any]
    quality: dict[str, Any]
    sizes: dict[str, int]
    prediction: dict[str, Any]
    prediction_size: int
    events: int
    detections: dict[str, int]
    joint: JointCheck | None  # the multivariate test
    joint_events: int


class _At(NamedTuple):
    """A run's event times, its windows' (count, first) before it, and the last open window."""

    timestamps: list[int]
    before: dict[int, tuple[int, int | None]]
    last_open: tuple[int, int, int | None] | None

    def of(self, key: int | None, position: int) -> tuple[int, int | None]:
        """(count, first event time) of window ``key`` just after event ``position``."""
        if key is None:
            return 0, None
        if key not in self.before:  # not one of the run's windows: as it was after the run
            assert self.last_open is not None  # noqa: S101 - key came from last_open
            return self.last_open[1], self.last_open[2]
        count, first = self.before[key]
        earliest = min(self.timestamps[: position + 1])
        return count + position + 1, earliest if first is None else min(first, earliest)


class _RunColumns:
    """The columns of a run's events that labels and performance read, built on first use."""

    __slots__ = ("_columns", "batch", "positions")

    def __init__(self, batch: Batch, positions: list[int]) -> None:
        self.batch = batch
        self.positions = positions
        self._columns: tuple[list[Any], ...] | None = None

    @property
    def timestamps(self) -> list[int]:
        """The events' times."""
        return self.columns()[1]

    def columns(self) -> tuple[list[Any], ...]:
        """(event ids, times, predictions, scores, per-class scores, labels)."""
        if self._columns is None:
            self._columns = self.batch.outcomes(self.positions)
        return self._columns


_V = TypeVar("_V")
_SHARED: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
_SHARED_MAX = 1_000


def _shared(mapping: dict[str, _V]) -> dict[str, _V]:
    """One dict for every model whose feature kinds (or detectors) are alike: models of the
    same feature set hold one copy, not one each. The dicts are never changed once made."""
    key = tuple(mapping.items())
    found = _SHARED.get(key)
    if found is not None:
        return found
    if len(_SHARED) < _SHARED_MAX:
        _SHARED[key] = mapping
    return mapping


def _version_at(
    versions: list[tuple[int, str | None]], position: int, latest: str | None
) -> str | None:
    """The model version of a run's event ``position``: ``versions`` lists where it changed in
    the run (empty: it did not, the version is the ``latest``)."""
    found = latest
    for start, version in versions:
        if start > position:
            break
        found = version
    return found


def _describe(reference: FeatureReference | None, kind: str) -> tuple[Any, ...] | None:
    """A feature reference as the native core takes it (None when of another kind)."""
    if isinstance(reference, NumericReference) and kind == "numeric":
        return (
            "numeric",
            reference.edges,
            reference.counts,
            reference.coarse_of,
            reference.minimum,
            reference.maximum,
            reference.std,
        )
    if isinstance(reference, CategoricalReference) and kind == "categorical":
        return ("categorical", reference.index, reference.known, reference.counts)
    return None


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
