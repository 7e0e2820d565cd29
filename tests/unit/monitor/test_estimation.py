"""Label-free performance estimation (CBPE): calibration, expected metrics, the rule, revisions."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from stream_monitor.config.models import ModelSpec
from stream_monitor.events import AlertEvent, LabelEvent, PredictionEvent, WindowSummary
from stream_monitor.monitor import ModelMonitor
from stream_monitor.monitor.estimation import calibrate, estimate
from stream_monitor.monitor.performance import BinaryPerformance

T0 = 1_795_800_000_000


def test_calibration_pools_adjacent_violators_and_interpolates_empty_bins() -> None:
    # rates 0, 0.25, -, 0.75, -, 1: already in order; bins 2 and 4 lie between their neighbours
    assert calibrate([0, 1, 0, 3, 0, 5], [5, 3, 0, 1, 0, 0]) == [0, 0.25, 0.5, 0.75, 0.875, 1]
    # 2/3 then 1/3 violate the order: pooled into 3/6
    assert calibrate([0, 2, 1], [3, 1, 2]) == [0, 0.5, 0.5]
    # beyond the labelled scores: the nearest rate
    assert calibrate([0, 1, 0, 0], [0, 1, 0, 0]) == [0.5, 0.5, 0.5, 0.5]
    assert calibrate([1, 2], [0, 0]) is None  # one class only: nothing to calibrate


def test_expected_metrics_follow_the_calibrated_probabilities() -> None:
    calibration = [0.1, 0.5, 0.9]
    # 10 predicted positive in bin 2 (0.9 right), 10 predicted negative in bin 0 (0.9 right)
    est = estimate(calibration, [0, 0, 10], [10, 0, 0])
    assert est["accuracy"] == pytest.approx(0.9)
    assert est["precision"] == pytest.approx(0.9)
    assert est["recall"] == pytest.approx(0.9)  # expected TP 9, FN 1
    # soft positives 1 and 9, negatives 9 and 1: (1 * 9 / 2 + 9 * (9 + 1 / 2)) / (10 * 10)
    assert est["roc_auc"] == pytest.approx(0.9)
    assert estimate(calibration, [0, 0, 0], [0, 0, 0]) == {}


def test_on_a_calibrated_model_the_estimate_is_close_to_the_realised_accuracy() -> None:
    rng = random.Random(3)
    learn, window = BinaryPerformance("1"), BinaryPerformance("1")
    predicted = ([0] * 100, [0] * 100)
    for i in range(40_000):
        score = rng.random()
        label = int(rng.random() < score)
        (learn if i < 20_000 else window).add(int(score > 0.5), score, None, label)
        if i >= 20_000:
            predicted[0 if score > 0.5 else 1][min(int(score * 100), 99)] += 1
    calibration = calibrate(learn.pos_scores, learn.neg_scores)
    assert calibration is not None
    est = estimate(calibration, *predicted)
    real = window.metrics()
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert est[name] == pytest.approx(real[name], abs=0.015), name


def scored(i: int, rng: random.Random, score: float, label: int | None) -> PredictionEvent:
    """Event ``i`` of a binary classifier that predicts 1 from a score of 0.5 (one feature)."""
    return PredictionEvent(
        event_id=f"e{i}",
        model_id="m",
        timestamp=T0 + i,
        features={"x": rng.gauss(0, 1)},
        prediction=int(score > 0.5),
        score=score,
        label=label,
    )


def events(count: int, *, change: int, labels_stop: bool = True) -> Iterator[PredictionEvent]:
    """Scores that are the chance of class 1; after ``change`` they sit near 0.5 (accuracy
    0.8 -> 0.6) and, with ``labels_stop``, no label comes."""
    rng = random.Random(11)
    for i in range(count):
        after = i >= change
        if after:
            score = rng.uniform(0.3, 0.7)
        else:
            score = rng.choice((rng.uniform(0, 0.4), rng.uniform(0.6, 1)))
        label = int(rng.random() < score)
        yield scored(i, rng, score, None if after and labels_stop else label)


def run(monitor: ModelMonitor, stream: Any) -> list[Any]:
    return [out for event in stream for out in monitor.update(event)]


def test_a_drop_without_labels_raises_estimated_performance() -> None:
    monitor = ModelMonitor("m", ModelSpec(warmup_events=1000))
    outputs = run(monitor, events(9_000, change=5_000))
    summaries = [o for o in outputs if isinstance(o, WindowSummary)]
    before, after = summaries[3].performance, summaries[6].performance
    assert before["estimated_accuracy"] == pytest.approx(0.8, abs=0.04)
    assert before["estimation_error_accuracy"] == pytest.approx(0.0, abs=0.05)
    assert after["estimated_accuracy"] == pytest.approx(0.6, abs=0.04)
    assert "accuracy" not in after  # no label
    assert "estimation_error_accuracy" not in after
    fired = [
        o
        for o in outputs
        if isinstance(o, AlertEvent) and o.status == "firing" and o.kind == "performance"
    ]
    assert [(a.rule, a.severity, a.window_start) for a in fired] == [
        ("estimated_performance", "critical", T0 + 5_000)  # the first window without labels
    ]
    assert fired[0].statistic == "estimated_accuracy"
    assert fired[0].evidence["reference_value"] == pytest.approx(0.8, abs=0.04)


def test_with_labels_the_estimate_stays_quiet_and_late_labels_report_its_error() -> None:
    # The same drop, labels inline: the realised rule fires, the estimated one does not
    monitor = ModelMonitor("m", ModelSpec(warmup_events=1000))
    outputs = run(monitor, events(9_000, change=5_000, labels_stop=False))
    rules = {o.rule for o in outputs if isinstance(o, AlertEvent) and o.status == "firing"}
    assert "performance.accuracy" in rules
    assert "estimated_performance" not in rules
    # Labels that come late revise the window: realised beside estimated, and the error
    monitor = ModelMonitor("m", ModelSpec(warmup_events=1000))
    stream = list(events(7_000, change=5_000))
    run(monitor, stream)
    revised: list[Any] = []
    rng = random.Random(5)
    for event in stream[5_000:6_000]:
        label = int(rng.random() < (event.score or 0))
        revised += monitor.update_label(
            LabelEvent(event_id=event.event_id, model_id="m", timestamp=T0 + 7_000, label=label)
        )
    revised += monitor.revisions()  # as a worker does after a batch of labels
    final = [o for o in revised if isinstance(o, WindowSummary)][-1]
    assert final.revision >= 1
    perf = final.performance
    assert perf["estimation_error_accuracy"] == pytest.approx(
        perf["estimated_accuracy"] - perf["accuracy"]
    )
    assert abs(perf["estimation_error_accuracy"]) < 0.05


def test_the_calibration_survives_a_snapshot_and_estimation_can_be_switched_off() -> None:
    spec = ModelSpec(warmup_events=1000)
    stream = list(events(8_000, change=5_000))
    whole = ModelMonitor("m", spec)
    expected = run(whole, stream)
    first = ModelMonitor("m", spec)
    head = run(first, stream[:4_500])
    restored = ModelMonitor("m", spec)
    restored.restore(first.snapshot())
    assert restored.outcomes.calibration == first.outcomes.calibration is not None
    assert head + run(restored, stream[4_500:]) == expected
    off = ModelMonitor("m", ModelSpec(warmup_events=1000, performance={"estimation": False}))
    summaries = [o for o in run(off, stream) if isinstance(o, WindowSummary)]
    assert not any(k.startswith("estimat") for s in summaries for k in s.performance)


def test_regression_models_are_not_estimated() -> None:
    monitor = ModelMonitor("m", ModelSpec(warmup_events=100, task="regression"))
    assert monitor.outcomes.estimating is False


def narrowing(
    count: int, *, change: int | None, labelled: int = 2_000
) -> Iterator[PredictionEvent]:
    """A calibrated classifier right about 72% of the time (scores uniform on 0.06..0.94);
    after ``change`` its scores narrow to 0.12..0.88 (about 0.69). Labels on the first
    ``labelled`` events only."""
    rng = random.Random(21)
    for i in range(count):
        narrow = change is not None and i >= change
        score = rng.uniform(0.12, 0.88) if narrow else rng.uniform(0.06, 0.94)
        label = int(rng.random() < score)
        yield scored(i, rng, score, label if i < labelled else None)


def estimated_alerts(outputs: list[Any]) -> list[AlertEvent]:
    return [
        o
        for o in outputs
        if isinstance(o, AlertEvent) and o.rule == "estimated_performance" and o.status == "firing"
    ]


def test_a_fall_of_0_03_below_the_drop_thresholds_is_caught_by_the_band() -> None:
    """A fall of 0.03 is well inside warning_drop (0.05), but about 7 standard errors of a
    window's estimate: the band test finds it in the first window that is all narrowed."""
    monitor = ModelMonitor("m", ModelSpec(warmup_events=1000))
    outputs = run(monitor, narrowing(9_000, change=5_000))
    fired = estimated_alerts(outputs)
    assert [(a.severity, a.window_start) for a in fired] == [("warning", T0 + 5_000)]
    evidence = fired[0].evidence
    assert evidence["reference_value"] - fired[0].value == pytest.approx(0.03, abs=0.01)
    assert evidence["p_value"] < 1e-4
    assert evidence["worsening"] > 5 * evidence["standard_error"] / 2**0.5
    assert fired[0].threshold == pytest.approx(evidence["reference_value"] - 0.01)


def test_a_stationary_stream_without_labels_stays_silent_and_the_floor_holds() -> None:
    quiet = run(ModelMonitor("m", ModelSpec(warmup_events=1000)), narrowing(40_000, change=None))
    summaries = [o for o in quiet if isinstance(o, WindowSummary)]
    assert sum("estimated_accuracy" in s.performance for s in summaries) >= 37
    assert estimated_alerts(quiet) == []
    # The same fall under a floor of 0.05 is significant but too small to page for.
    spec = ModelSpec.model_validate(
        {"warmup_events": 1000, "performance": {"estimation_floor": 0.05}}
    )
    assert estimated_alerts(run(ModelMonitor("m", spec), narrowing(9_000, change=5_000))) == []


def test_the_estimates_standard_errors() -> None:
    """Accuracy's is the spread of each prediction's chance of being right over sqrt n; the
    others follow the realised metrics' formulas on the expected counts."""
    from stream_monitor.monitor.estimation import standard_error

    calibration = [b / 99 for b in range(100)]
    positive = [0] * 50 + [10] * 50  # predicted positive from a score of 0.5
    negative = [10] * 50 + [0] * 50
    right = [1 - p for p in calibration[:50]] + calibration[50:]
    mean = sum(right) / 100
    spread = (sum((r - mean) ** 2 for r in right) / 100 / 1_000) ** 0.5
    assert standard_error("accuracy", calibration, positive, negative) == pytest.approx(spread)
    for metric in ("precision", "recall", "f1", "roc_auc"):
        error = standard_error(metric, calibration, positive, negative)
        assert error is not None
        assert 0 < error < 0.05, metric
    assert standard_error("log_loss", calibration, positive, negative) is None
    assert standard_error("accuracy", calibration, [0] * 100, [0] * 100) is None
