"""The checks a model's closed window and its detectors' signals are judged by, and the label
fields of its summary: pure functions of what the native core counted and the Python side
kept (the reference summary, the outcomes)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stream_monitor.config.models import ModelSpec
from stream_monitor.monitor.lifecycle import RuleCheck
from stream_monitor.monitor.outcomes import Outcomes, WindowOutcome, rolling_value
from stream_monitor.monitor.reference_view import JOINT, PREDICTION, ReferenceSummary
from stream_monitor.monitor.rules import DriftInput, drift_checks, quality_checks
from stream_monitor.monitor.runs import ClosedWindow

__all__ = [
    "ERRORS",
    "JOINT",
    "PREDICTION",
    "detector_check",
    "error_check",
    "label_fields",
    "window_checks",
]

ERRORS = "<errors>"  # detections key of the error stream


def detector_check(
    name: str,
    detector: str,
    detections: int,
    at: int,
    *,
    severity: Any,
    reference_id: str | None,
) -> RuleCheck:
    """A change detector's check on signal ``name`` (firing at event time ``at`` with a
    severity, or healthy with None)."""
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
            "reference_id": reference_id,
            **(
                {"signal": "each event's reconstruction error (multivariate drift)"}
                if name == JOINT
                else {}
            ),
        },
    )


def error_check(name: str, at: int, severity: Any) -> RuleCheck:
    """An error-stream detector's check (concept drift)."""
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


def window_checks(
    spec: ModelSpec,
    window: ClosedWindow,
    reference: ReferenceSummary | None,
    detectors: Mapping[str, Sequence[str]],
    totals: Sequence[Sequence[int]],
    *,
    tracks: Callable[[str, str | None], bool],
) -> list[RuleCheck]:
    """Drift, quality and the quiet detectors' checks of a closed window (``totals``: each
    signal's detections so far, per detector)."""
    drift, quality, sizes = window.drift, window.quality, window.sizes
    prediction, detections = window.prediction, window.detections
    reference_id = reference.reference_id if reference else None
    inputs = [DriftInput(name, stats, sizes[name]) for name, stats in drift.items() if stats]
    predicted = DriftInput(PREDICTION, prediction, window.prediction_size) if prediction else None
    tested = None
    if window.joint is not None:
        tested = (window.joint, window.joint_events)
    checks = drift_checks(spec, inputs, predicted, reference_id, tested, tracks=tracks)
    features = reference.features if reference else {}
    baseline = {n: r.missing_rate for n, r in features.items()}
    # Share of new values beyond a sample's min/max: 2/(n+1) on average, but the extremes
    # of a sample are themselves random; use the 99.9% upper bound, 2 * (1 - 0.001^(1/n)).
    range_null = {
        n: 2.0 * (1.0 - 0.001 ** (1.0 / max(r.sample_size, 1)))
        for n, r in features.items()
        if r.kind == "numeric"
    }
    checks += quality_checks(
        spec,
        quality=quality,
        events=window.events,
        baseline_missing=baseline,
        range_null_rate=range_null,
        reference_id=reference_id,
        tracks=tracks,
    )
    for (name, names), counts in zip(detectors.items(), totals, strict=True):
        for detector, total in zip(names, counts, strict=True):
            if not detections.get(name) and tracks(
                f"detector.{detector}", None if name == PREDICTION else name
            ):
                checks.append(
                    detector_check(
                        name, detector, total, -1, severity=None, reference_id=reference_id
                    )
                )
    return checks


def label_fields(
    spec: ModelSpec, outcomes: Outcomes, outcome: WindowOutcome, events: int
) -> dict[str, Any]:
    """The performance, label coverage, delay and join fields of a window's summary."""
    counts = dict(sorted(outcomes.join.counts.items()))
    if outcomes.too_late:
        counts["labels_too_late"] = outcomes.too_late
    realised = outcome.performance.metrics() if outcome.labelled else {}
    estimated = outcomes.estimated(outcome)
    # Beside the realised metrics once labels are in: how far off the estimate was.
    errors = {
        f"estimation_error_{name}": value - real
        for name, value in estimated.items()
        if value is not None
        and (real := realised.get(name)) is not None
        and outcome.labelled >= spec.performance.min_labels
    }
    return {
        "performance": {
            **realised,
            **rolling_value(outcomes),
            **{f"estimated_{n}": v for n, v in estimated.items() if v is not None},
            **errors,
        },
        "label_coverage": outcome.labelled / events if events else None,
        "label_delay_ms": outcome.delays.percentiles(),
        "label_stats": counts,
    }
