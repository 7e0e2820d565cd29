"""The worker's /metrics: the latest drift statistics and performance of window summaries."""

from __future__ import annotations

import math
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from stream_monitor.events.alerts import WindowSummary
from stream_monitor.observability.metrics import WorkerMetrics
from tests.unit.sinks.test_sinks import alert  # an alert of kind drift


def summary(index: int, segment: str | None = None, **fields: Any) -> WindowSummary:
    return WindowSummary(
        model_id="m",
        segment=segment,
        window_kind="count",
        window_index=index,
        window_start=1_795_800_000_000,
        window_end=1_795_800_001_000,
        sample_size=1_000,
        **fields,
    )


def samples(metrics: WorkerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def drift(feature: str, statistic: str, segment: str = "") -> tuple[str, Any]:
    labels = {"model": "m", "feature": feature, "statistic": statistic, "segment": segment}
    return ("stream_monitor_drift_statistic", tuple(sorted(labels.items())))


def test_gauges_keep_each_series_latest_value_and_undefined_values_are_nan() -> None:
    metrics = WorkerMetrics()
    metrics.summary(summary(0, drift={"x": {"psi": 0.1, "ks": 0.3}}, performance={"f1": 0.5}))
    metrics.summary(
        summary(
            1,
            drift={"x": {"psi": 0.2}},
            prediction_drift={"psi": 0.05},
            multivariate={"joint_z": 1.5},
            performance={"f1": None},
        )
    )
    metrics.summary(summary(1, "channel=web", drift={"x": {"psi": 0.7}}))
    got = samples(metrics)
    assert got[drift("x", "psi")] == 0.2  # the latest window's
    assert got[drift("x", "ks")] == 0.3  # a statistic not in the latest window keeps its value
    assert got[drift("__prediction__", "psi")] == 0.05
    assert got[drift("__joint__", "joint_z")] == 1.5
    assert got[drift("x", "psi", "channel=web")] == 0.7
    f1 = ("stream_monitor_performance", (("metric", "f1"), ("model", "m"), ("segment", "")))
    assert math.isnan(got[f1])
    assert got[("stream_monitor_window_summaries_total", ())] == 3


def test_series_beyond_max_series_are_dropped_and_counted() -> None:
    metrics = WorkerMetrics(max_series=3)
    metrics.summary(summary(0, drift={"x": {"psi": 0.1, "ks": 0.2}}))
    metrics.summary(summary(1, drift={"x": {"psi": 0.3}, "y": {"psi": 0.4, "ks": 0.5}}))
    metrics.summary(summary(2, performance={"accuracy": 0.9}))
    got = samples(metrics)
    assert got[drift("x", "psi")] == 0.3  # series already kept still move
    assert drift("y", "psi") not in got
    assert got[("stream_monitor_metric_series_dropped_total", ())] == 2
    accuracy = (
        "stream_monitor_performance",
        (("metric", "accuracy"), ("model", "m"), ("segment", "")),
    )
    assert got[accuracy] == 0.9  # the third series
    assert metrics.series == 3


def test_alerts_are_counted_by_kind_severity_and_status() -> None:
    metrics = WorkerMetrics()
    for severity, status in (
        ("warning", "firing"),
        ("warning", "firing"),
        ("warning", "resolved"),
        ("critical", "firing"),
    ):
        metrics.alert(alert(severity=severity, status=status))
    got = samples(metrics)

    def count(status: str, severity: str) -> float:
        labels = {"kind": "drift", "severity": severity, "status": status}
        return got[("stream_monitor_alerts_total", tuple(sorted(labels.items())))]

    assert count("firing", "warning") == 2
    assert count("resolved", "warning") == 1
    assert count("firing", "critical") == 1
