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

from collections.abc import Sequence
from typing import Any, Literal

from stream_monitor._native import Batch, ModelCore, decode_batch
from stream_monitor.config.models import FeatureType, ModelSpec
from stream_monitor.events.alerts import Output, WindowSummary
from stream_monitor.events.schemas import LabelEvent, PredictionLike
from stream_monitor.monitor.encoding import encode_for_core
from stream_monitor.monitor.lifecycle import AlertTracker, RuleCheck
from stream_monitor.monitor.outcomes import Outcomes, WindowOutcome
from stream_monitor.monitor.reference import (
    ReferenceProfile,
    profile_from_columns,
)
from stream_monitor.monitor.reference_view import (
    ReferenceSummary,
    describe,
    shared,
    watched_signals,
)
from stream_monitor.monitor.rules import estimation_check, performance_check
from stream_monitor.monitor.runs import ClosedWindow, LazyRunColumns, RunTimes, version_at
from stream_monitor.monitor.segments import Segments, segment_window
from stream_monitor.monitor.snapshot import SnapshotError, dump_state, load_state, unpack_state
from stream_monitor.monitor.window_rules import (
    ERRORS,
    JOINT,
    PREDICTION,
    detector_check,
    error_check,
    label_fields,
    window_checks,
)
from stream_monitor.monitor.windows import WindowBounds, core_window

__all__ = ["ERRORS", "JOINT", "PREDICTION", "ModelMonitor", "Output", "encode_for_core"]


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
        followed = segment_window(spec) if segment is not None else None
        shape, self.window_kind = core_window(spec.window, followed)
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
            Segments(
                model_id,
                spec,
                ModelMonitor,
                reference.segments if reference else None,
            )
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
        columns = LazyRunColumns(batch, positions)
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
        at = RunTimes(columns.timestamps, dict(zip(keys, before, strict=True)), last_open)
        for position, source, _, what in hits:
            event_time = columns.timestamps[position]
            version = version_at(versions, position, self.model_version)
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

    def waits_for(self, event_id: str) -> bool:
        """Whether one of this model's predictions waits for the label of ``event_id``."""
        return bool(self.outcomes.join.waiting(event_id))

    def revisions(self) -> list[Output]:
        """Revised summaries of closed windows that late labels changed, and their alerts."""
        out: list[Output] = []
        for _, outcome in self.outcomes.dirty():
            if outcome.summary is None or outcome.bounds is None:  # pragma: no cover
                continue  # only closed windows are ever dirty
            revised = outcome.summary.model_copy(
                update={
                    "revision": outcome.summary.revision + 1,
                    **label_fields(self.spec, self.outcomes, outcome, outcome.summary.sample_size),
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
            check = error_check(name, at, severity="warning")
            start = first if first is not None else at
            alert = self.tracker.observe(
                check,
                window=WindowBounds(-1, start, at),
                sample_size=count,
                model_version=version or self.model_version,
            )
            if alert is not None:
                out.append(alert)

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
            self.types = shared({name: ref.kind for name, ref in reference.features.items()})
        self.signal = reference.prediction_signal
        self.detectors, watched, joint = watched_signals(reference, self.types, self.spec.drift)
        names = list(self.types)
        prediction = reference.prediction
        self.core.set_reference(
            list(self.types.items()),
            [describe(reference.features.get(name), kind) for name, kind in self.types.items()],
            self.signal,
            (prediction.kind, describe(prediction, prediction.kind)) if prediction else None,
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
        reference_id = self.reference.reference_id if self.reference else None
        check = detector_check(
            name,
            self.detectors[name][detector],
            detections,
            at,
            severity="warning",
            reference_id=reference_id,
        )
        bounds = WindowBounds(-1, first or at, at)
        alert = self.tracker.observe(
            check, window=bounds, sample_size=count, model_version=version or self.model_version
        )
        if alert is not None:
            out.append(alert)

    def _close(self, closed: tuple[Any, ...]) -> list[Output]:
        window = ClosedWindow.of(closed, self.joint, self.window_detections.pop(closed[0], {}))
        key, bounds, count, detections = window.key, window.bounds, window.events, window.detections
        reference_id = self.reference.reference_id if self.reference else None
        summary = WindowSummary(
            model_id=self.model_id,
            model_version=self.model_version,
            segment=self.segment,
            window_kind=self.window_kind,
            window_index=bounds.index,
            window_start=bounds.start,
            window_end=bounds.end,
            sample_size=count,
            late_events=window.late,
            drift={name: stats for name, stats in window.drift.items() if stats},
            prediction_drift=window.prediction,
            multivariate=window.joint.summary() if window.joint is not None else {},
            quality={name: stats for name, stats in window.quality.items() if stats},
            latency_ms=window.latency,
            event_lag_ms=window.lag,
            detections=dict(sorted(detections.items())),
            reference_id=reference_id,
            distributions=window.distributions,
            **label_fields(self.spec, self.outcomes, self.outcomes.window(key), count),
        )
        outcome = self.outcomes.close(key, bounds, summary)
        max_time = self.core.max_time
        if max_time is not None:
            self.outcomes.expire(max_time)
        # A segment's window too small to judge is published but not judged.
        judged = self.segment is None or count >= self.spec.segments.min_events
        checks = (
            window_checks(
                self.spec,
                window,
                self.reference,
                self.detectors,
                self.core.detections(),
                tracks=self.tracker.tracks,
            )
            if judged
            else []
        )
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
                error_check(name, -1, None)
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
