"""The compare rule: a challenger model version against its champion in the same window."""

from __future__ import annotations

import random
from typing import Any

import pytest

from stream_monitor.config.models import ModelSpec
from stream_monitor.events import AlertEvent, LabelEvent, PredictionEvent, WindowSummary
from stream_monitor.monitor import ModelMonitor
from stream_monitor.monitor.compare import compare_checks, on_common_bins

T0 = 1_795_800_000_000
SPEC: dict[str, Any] = {
    "warmup_events": 300,
    "window": {"kind": "count", "events": 600},
    "performance": {"min_labels": 100},
    "segments": {"by": ["model_version"], "warmup_events": 100},
}


def versions(
    count: int,
    *,
    challenger_from: int = 600,
    right: float = 0.8,
    challenger_right: float = 0.8,
    challenger_shift: float = 0.0,
    labelled: bool = True,
) -> list[PredictionEvent]:
    """v1 alone, then v1 and v2 half and half from ``challenger_from``."""
    rng = random.Random(3)
    out = []
    for i in range(count):
        version = "v2" if i >= challenger_from and rng.random() < 0.5 else "v1"
        shift = challenger_shift if version == "v2" else 0.0
        score = min(1.0, max(0.0, rng.random() * 0.8 + shift))
        prediction = int(score > 0.5)
        hit = rng.random() < (challenger_right if version == "v2" else right)
        out.append(
            PredictionEvent(
                event_id=f"e{i}",
                model_id="m",
                model_version=version,
                timestamp=T0 + i * 10,
                features={"x": rng.gauss(0, 1)},
                prediction=prediction,
                score=score,
                label=(prediction if hit else 1 - prediction) if labelled else None,
            )
        )
    return out


def alerts(out: list[Any], rule: str) -> list[AlertEvent]:
    return [o for o in out if isinstance(o, AlertEvent) and o.rule == rule]


def test_a_worse_challenger_raises_compare_performance_naming_it() -> None:
    monitor = ModelMonitor("m", ModelSpec.model_validate(SPEC))
    out = monitor.update_batch(versions(6_000, challenger_right=0.6))
    fired = [a for a in alerts(out, "compare.performance") if a.status == "firing"]
    assert fired
    first = fired[0]
    assert first.segment == "model_version=v2"
    assert first.evidence["baseline"] == "model_version=v1"
    assert first.evidence["worsening"] >= 0.05
    assert first.evidence["p_value"] < first.evidence["alpha"]
    assert first.labels["segment"] == "model_version=v2"
    assert not alerts(out, "compare.prediction")  # the scores did not move


def test_equal_versions_raise_nothing_and_a_better_challenger_is_no_alert() -> None:
    for challenger in (0.8, 0.95):
        monitor = ModelMonitor("m", ModelSpec.model_validate(SPEC))
        out = monitor.update_batch(versions(6_000, challenger_right=challenger))
        assert not [o for o in out if isinstance(o, AlertEvent) and o.rule.startswith("compare")]


def test_a_challenger_whose_scores_moved_raises_compare_prediction() -> None:
    monitor = ModelMonitor("m", ModelSpec.model_validate(SPEC))
    out = monitor.update_batch(versions(6_000, challenger_shift=0.25, labelled=False))
    fired = [a for a in alerts(out, "compare.prediction") if a.status == "firing"]
    assert fired
    assert fired[0].segment == "model_version=v2"
    assert fired[0].value is not None
    assert fired[0].value >= 0.1


def test_a_configured_baseline_and_late_labels() -> None:
    spec = ModelSpec.model_validate(
        {**SPEC, "segments": {**SPEC["segments"], "compare": {"baseline": "v2"}}}
    )
    monitor = ModelMonitor("m", spec)
    events = versions(3_000, right=0.6, labelled=False)  # v1 is the worse one here
    out = monitor.update_batch(events)
    assert not alerts(out, "compare.performance")  # no labels yet: nothing to compare
    rng = random.Random(5)
    for event in events:
        hit = rng.random() < (0.6 if event.model_version == "v1" else 0.8)
        monitor.update_label(
            LabelEvent(
                event_id=event.event_id,
                model_id="m",
                timestamp=event.timestamp + 5,
                label=event.prediction if hit else 1 - event.prediction,
            )
        )
    revised = monitor.revisions()
    fired = [a for a in alerts(revised, "compare.performance") if a.status == "firing"]
    assert fired
    assert fired[0].segment == "model_version=v1"
    assert fired[0].evidence["baseline"] == "model_version=v2"


def summary(segment: str, **fields: Any) -> WindowSummary:
    base: dict[str, Any] = {
        "model_id": "m",
        "segment": segment,
        "window_kind": "count",
        "window_index": 3,
        "window_start": T0,
        "window_end": T0 + 1,
        "sample_size": 500,
        "label_coverage": 1.0,
    }
    return WindowSummary(**{**base, **fields})


def test_compare_checks_need_two_values_and_the_baseline() -> None:
    spec = ModelSpec.model_validate(SPEC)
    one = [summary("model_version=v1", performance={"accuracy": 0.8})]
    assert compare_checks(spec, one, "model_version=v1") == []
    two = [*one, summary("model_version=v2", performance={"accuracy": 0.6})]
    assert compare_checks(spec, two, None) == []  # no baseline known
    other = ModelSpec.model_validate(
        {**SPEC, "segments": {**SPEC["segments"], "compare": {"baseline": "v9"}}}
    )
    assert compare_checks(other, two, "model_version=v1") == []
    checks = compare_checks(spec, two, "model_version=v1")
    assert [(s.segment, c.rule, c.severity) for s, c in checks] == [
        ("model_version=v2", "compare.performance", "critical"),
        ("model_version=v2", "compare.prediction", None),
    ]
    few = [*one, summary("model_version=v2", performance={"accuracy": 0.6}, sample_size=50)]
    check = compare_checks(spec, few, "model_version=v1")[0][1]
    assert check.value is None
    assert check.severity is None


def test_distributions_on_common_bins() -> None:
    # The same values binned on different edges come out alike on the first's edges.
    values = [i / 1_000 for i in range(1_000)]

    def binned(edges: list[float]) -> dict[str, Any]:
        window = [0] * (len(edges) + 1)
        for v in values:
            window[sum(v >= e for e in edges)] += 1
        return {"edges": edges, "window": window}

    first = binned([0.1 * k for k in range(1, 10)])
    second = binned([0.05 + 0.1 * k for k in range(10)])
    ours, theirs = on_common_bins(first, second)  # type: ignore[misc]
    assert sum(ours) == sum(theirs) == 1_000
    assert theirs == pytest.approx(ours, abs=2)
    cats = on_common_bins(
        {"categories": ["a", "b"], "window": [3, 4]}, {"categories": ["b", "c"], "window": [5, 6]}
    )
    assert cats == ([3.0, 4.0, 0.0], [0.0, 5.0, 6.0])
    assert on_common_bins(None, first) is None
    assert on_common_bins(first, {"categories": ["a"], "window": [1]}) is None
