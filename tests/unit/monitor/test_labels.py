"""Delayed labels: the bounded join, revisions of closed windows, performance alerts."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import pytest

from stream_monitor.config.models import ModelSpec
from stream_monitor.events import AlertEvent, LabelEvent, PredictionEvent, WindowSummary
from stream_monitor.monitor import ModelMonitor, MonitorSet
from stream_monitor.monitor.labels import LabelJoin, Pending

from .streams import T0
from .test_estimation import scored

P = Pending((0,), 0, 1, 0.9, None)


def add(join: LabelJoin, event_id: str, pending: Pending = P) -> Any:
    return join.add_prediction(
        event_id,
        list(pending.windows),
        pending.timestamp,
        pending.prediction,
        pending.score,
        pending.scores,
    )


def test_join_matches_waits_and_counts() -> None:
    join = LabelJoin(ttl_ms=1_000, max_predictions=2, max_labels=1)
    assert add(join, "a") is None
    assert Pending(*join.add_label("a", 1, 10)) == P
    assert join.add_label("early", 0, 20) is None  # waits for its prediction
    assert add(join, "early") == (0, 20)
    add(join, "b")
    add(join, "c")
    add(join, "d")  # evicts b
    assert join.predictions() == ["c", "d"]
    assert join.waiting("c")
    assert not join.waiting("b")
    join.add_label("x", 1, 0)
    join.add_label("y", 1, 5_000)  # evicts x: never matched
    join.expire(now=5_500)  # c and d (t=0) expire; y (t=5000) stays
    assert join.predictions() == []
    assert join.labels() == ["y"]
    join.expire(now=10_000)
    # b evicted, c and d expired: their windows are told
    assert join.take_dropped() == [(0, 3)]
    assert join.take_dropped() == []
    assert dict(join.counts) == {
        "matched": 1,
        "matched_early": 1,
        "evicted_predictions": 1,
        "unmatched_labels": 2,
        "expired_predictions": 2,
    }


def spec(**overrides: Any) -> ModelSpec:
    base: dict[str, Any] = {
        "warmup_events": 200,
        "window": {"kind": "count", "events": 200},
        "performance": {"reference_labels": 200, "min_labels": 100, "detectors": []},
        "drift": {"detectors": []},
    }
    base.update(overrides)
    return ModelSpec.model_validate(base)


def make_events(count: int, accuracy: Any, seed: int = 3) -> list[tuple[PredictionEvent, int]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        truth = int(rng.random() < 0.5)
        prediction = truth if rng.random() < accuracy(i) else 1 - truth
        event = PredictionEvent(
            event_id=f"e{i}",
            model_id="m",
            timestamp=T0 + i * 1000,
            features={"x": rng.gauss(0, 1)},
            prediction=prediction,
            score=None,
        )
        out.append((event, truth))
    return out


def label(event: PredictionEvent, truth: int, delay_ms: int) -> LabelEvent:
    return LabelEvent(
        event_id=event.event_id, model_id="m", timestamp=event.timestamp + delay_ms, label=truth
    )


def test_late_labels_revise_closed_windows_and_fire_performance_alerts() -> None:
    monitor = ModelMonitor("m", spec())
    events = make_events(1_400, lambda i: 0.95 if i < 800 else 0.6)
    outputs: list[Any] = []
    lag = 250  # labels arrive 250 events (250 s) after their prediction
    for i, (event, _) in enumerate(events):
        outputs += monitor.update(event)
        if i >= lag:
            late_event, truth = events[i - lag]
            outputs += monitor.update_label(label(late_event, truth, lag * 1000))
        if i % 50 == 0:
            outputs += monitor.revisions()
    outputs += monitor.revisions()
    summaries = [o for o in outputs if isinstance(o, WindowSummary)]
    first = [s for s in summaries if s.window_index == 0]
    assert [s.revision for s in first][:2] == [0, 1]
    assert first[0].performance == {}  # no label when the window closed
    latest = {s.window_index: s for s in summaries}  # last revision of each window
    assert latest[0].label_coverage == 1.0
    assert latest[0].performance["accuracy"] is not None
    assert latest[0].performance["accuracy"] > 0.9
    assert latest[0].label_delay_ms["p50"] is not None
    assert 240_000 <= latest[0].label_delay_ms["p50"] <= 260_000
    assert latest[4].performance["accuracy"] < 0.7
    alerts = [o for o in outputs if isinstance(o, AlertEvent)]
    performance = [a for a in alerts if a.rule == "performance.accuracy"]
    assert performance
    assert performance[0].status == "firing"
    assert performance[0].severity == "critical"
    assert performance[0].evidence["reference_value"] > 0.9
    assert performance[0].window_start >= events[800][0].timestamp - 200_000
    assert summaries[-1].label_stats["matched"] >= 1_000


def test_inline_labels_and_error_stream_detector() -> None:
    monitor = ModelMonitor("m", spec(performance={"reference_labels": 200, "detectors": ["ddm"]}))
    outputs: list[Any] = []
    for event, truth in make_events(3_000, lambda i: 0.95 if i < 1_500 else 0.55):
        outputs += monitor.update(event.model_copy(update={"label": truth}))
    rules = [(o.rule, o.kind, o.status) for o in outputs if isinstance(o, AlertEvent)]
    assert ("detector.ddm", "concept_drift", "firing") in rules
    assert ("performance.accuracy", "performance", "firing") in rules
    summary = next(o for o in outputs if isinstance(o, WindowSummary) and o.window_index == 2)
    assert summary.label_coverage == 1.0
    assert summary.label_delay_ms["max"] == 0.0
    # The rolling view (river) covers the last 1,000 labelled predictions: windows 1 and 2.
    assert summary.performance["rolling_accuracy"] == pytest.approx(0.95, abs=0.03)


def test_labels_for_forgotten_windows_are_counted() -> None:
    monitor = ModelMonitor("m", spec(performance={"revision_windows": 1, "detectors": []}))
    events = make_events(850, lambda i: 0.9)
    for event, _ in events:
        monitor.update(event)
    for event, truth in events[:10]:  # window 0 was dropped from the revision list
        monitor.update_label(label(event, truth, 1))
    assert monitor.outcomes.too_late == 10
    last = monitor.flush()[0]
    assert isinstance(last, WindowSummary)
    assert last.label_stats["labels_too_late"] == 10


def test_regression_reference_from_profile_performance() -> None:
    from stream_monitor.monitor.reference import profile_from_rows

    rows = [({"x": float(i)}, None, float(i)) for i in range(100)]
    profile = profile_from_rows("m", {}, "regression", rows, source="file")
    profile = type(profile)(**{**profile.__dict__, "reference_id": "", "performance": {"mae": 0.5}})
    monitor = ModelMonitor(
        "m",
        spec(
            task="regression",
            performance={
                "metric": "mae",
                "warning_drop": 0.5,
                "critical_drop": 1.0,
                "min_labels": 50,
                "detectors": [],
            },
        ),
        profile,
    )
    assert monitor.outcomes.reference == {"mae": 0.5}
    outputs: list[Any] = []
    for i in range(200):
        event = PredictionEvent(
            event_id=str(i),
            model_id="m",
            timestamp=T0 + i,
            features={"x": float(i)},
            prediction=float(i) + 2.0,
            label=float(i),
        )
        outputs += monitor.update(event)
    alert = next(o for o in outputs if isinstance(o, AlertEvent) and o.kind == "performance")
    assert (alert.rule, alert.severity, alert.value, alert.threshold) == (
        "performance.mae",
        "critical",
        2.0,
        1.5,
    )


def test_monitor_set_routes_labels() -> None:
    monitors = MonitorSet({}, spec(), "monitor")
    event, truth = make_events(1, lambda i: 1.0)[0]
    monitors.update(event)
    assert monitors.update_label(label(event, truth, 5)) == []
    assert monitors.monitor("m").outcomes.join.counts["matched"] == 1
    assert monitors.revisions() == []


def test_join_survives_pickling_and_refuses_bad_input() -> None:
    import pickle

    join = LabelJoin(ttl_ms=1_000, max_predictions=10, max_labels=10)
    add(join, "a", Pending((3, 4), 7, "cat", None, {"cat": 0.7, "dog": 0.3}))
    add(join, "big", Pending((5,), 8, 2**70, 0.5, None))
    join.add_label("early", True, 9)
    add(join, "b")
    add(join, "b")  # the same id again: the first is dropped
    copy = pickle.loads(pickle.dumps(join))  # noqa: S301 - our own bytes
    assert copy.predictions() == ["a", "big", "b"]
    assert copy.labels() == ["early"]
    assert dict(copy.counts) == dict(join.counts)
    assert copy.take_dropped() == [(0, 1)]
    assert copy.add_label("a", "dog", 20) == ((3, 4), 7, "cat", None, {"cat": 0.7, "dog": 0.3})
    assert copy.add_label("big", 1, 21) == ((5,), 8, 2**70, 0.5, None)
    assert add(copy, "early") == (True, 9)
    with pytest.raises(TypeError, match="not list"):
        join.add_prediction("c", [0], 1, [1, 2])
    with pytest.raises(ValueError, match="ttl_ms"):
        LabelJoin(ttl_ms=-1, max_predictions=1, max_labels=1)


def auc_events(count: int, *, shift_after: int, fall: float) -> Iterator[PredictionEvent]:
    """Inline labels; the score separates the classes by 1.2 sd until ``shift_after``, then
    by ``fall`` sd less (0.17: roc_auc about 0.035 lower)."""
    rng = random.Random(17)
    for i in range(count):
        label = int(rng.random() < 0.4)
        gap = 1.2 - (fall if i >= shift_after else 0.0)
        z = rng.gauss(gap if label else 0.0, 1.0)
        score = 1 / (1 + math.exp(-z))
        yield scored(i, rng, score, label)


def auc_alerts(fall: float) -> tuple[ModelMonitor, list[Any]]:
    spec = ModelSpec.model_validate(
        {
            "warmup_events": 1000,
            "performance": {"metric": "roc_auc", "warning_drop": 0.03, "critical_drop": 0.2},
        }
    )
    monitor = ModelMonitor("m", spec)
    events = auc_events(8_000, shift_after=4_000, fall=fall)
    return monitor, [o for e in events for o in monitor.update(e)]


def test_roc_auc_falling_by_its_noise_does_not_page_and_a_real_fall_does() -> None:
    """At 1,000 labels roc_auc's sampling noise is about 0.015: a fall of 0.035 against a
    reference of 1,000 labels is under 2 of their joint standard errors, not significant,
    although it is over warning_drop (0.03 here)."""
    monitor, outputs = auc_alerts(0.17)
    reference = monitor.outcomes.reference["roc_auc"]
    assert reference is not None
    falls = [
        reference - o.performance["roc_auc"]
        for o in outputs
        if isinstance(o, WindowSummary) and o.window_index >= 4
    ]
    assert sum(falls) / len(falls) == pytest.approx(0.035, abs=0.015)
    assert max(falls) > 0.03  # a threshold alone would have paged
    assert not [o for o in outputs if getattr(o, "rule", "") == "performance.roc_auc"]
    # A fall of about 0.2 is far outside the noise: it pages, with its p-value.
    _, steep = auc_alerts(0.8)
    fired = [o for o in steep if getattr(o, "rule", "") == "performance.roc_auc"]
    assert fired
    assert fired[0].status == "firing"
    assert fired[0].evidence["p_value"] < 1e-4
