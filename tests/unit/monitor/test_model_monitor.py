"""ModelMonitor: golden alert indices, determinism, data quality, policies, bad input."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.config import load_settings
from stream_monitor.config.models import ModelSpec
from stream_monitor.events import (
    AlertEvent,
    EventCodec,
    PredictionEvent,
    WindowSummary,
    encode_event,
)
from stream_monitor.monitor import ModelMonitor, MonitorSet, ReferenceProfile, UnknownModelError
from stream_monitor.monitor.model_monitor import PREDICTION
from stream_monitor.monitor.reference import profile_from_rows

from .streams import T0, stream


def spec(**overrides: Any) -> ModelSpec:
    return ModelSpec.model_validate({"warmup_events": 1000, **overrides})


def run(monitor: ModelMonitor, events: Any, flush: bool = False) -> list[Any]:
    out = [o for e in events for o in monitor.update(e)]
    return out + (monitor.flush() if flush else [])


def alerts_of(outputs: list[Any]) -> list[tuple[int, str, str | None, str, str]]:
    """(index of the last window closed before the alert, rule, feature, status, severity).

    A window rule's alert follows its own window's summary; a detector alert fires while the
    next window is still open.
    """
    rows = []
    window = -1
    for output in outputs:
        if isinstance(output, WindowSummary):
            window = output.window_index
        else:
            rows.append((window, output.rule, output.feature, output.status, output.severity))
    return rows


def test_golden_abrupt_shift_alert_indices() -> None:
    """0.5 sd shift of x0 at event 5,500: windows of 1,000 events (seeded, exact indices)."""
    monitor = ModelMonitor("m", spec())
    outputs = run(monitor, stream(12_000, shift=lambda i: 0.5 if i >= 5_500 else 0.0))
    summaries = [o for o in outputs if isinstance(o, WindowSummary)]
    assert [s.window_index for s in summaries] == list(range(12))
    assert all(s.sample_size == 1000 for s in summaries)
    assert alerts_of(outputs) == [
        (4, "detector.adwin", "x0", "firing", "warning"),  # during window 5, after the shift
        (6, "drift.psi", "x0", "firing", "critical"),  # first fully shifted window
        (8, "detector.adwin", "x0", "resolved", "warning"),  # 3 windows without detection
    ]
    # Window 0 is the warm-up (no reference yet); window 1 onwards measure against it.
    assert summaries[0].drift == {}
    assert summaries[1].reference_id == monitor.reference.reference_id  # type: ignore[union-attr]
    assert summaries[3].drift["x0"]["psi"] == pytest.approx(0.01197, abs=1e-5)
    assert summaries[5].drift["x0"]["psi"] == pytest.approx(0.08525, abs=1e-5)  # half shifted
    assert summaries[6].drift["x0"]["psi"] > 0.25
    assert summaries[6].drift["x1"]["psi"] < 0.05
    assert summaries[5].detections == {"x0": 1}
    # The alert carries its evidence.
    psi_alert = next(o for o in outputs if isinstance(o, AlertEvent) and o.rule == "drift.psi")
    assert psi_alert.statistic == "psi"
    assert psi_alert.threshold == 0.25
    assert psi_alert.value == pytest.approx(summaries[6].drift["x0"]["psi"])
    assert psi_alert.evidence["top_features"][0]["feature"] == "x0"
    assert psi_alert.evidence["p_value"] < psi_alert.evidence["alpha"]
    assert psi_alert.evidence["reference_id"] == summaries[6].reference_id
    assert psi_alert.window_start == T0 + 6_000 * 100
    assert psi_alert.sample_size == 1000


def test_stationary_stream_raises_no_alert() -> None:
    outputs = run(ModelMonitor("m", spec()), stream(30_000, seed=11))
    assert alerts_of(outputs) == []


def heavy_tails(scale_after: int | None = None) -> Any:
    """x0 Pareto (alpha 1.5, infinite variance), x1 zero-inflated spend (70% exactly 0);
    after ``scale_after`` events x0 is twice as large."""
    rng = random.Random(3)

    def hook(i: int, features: dict[str, Any]) -> None:
        factor = 2.0 if scale_after is not None and i >= scale_after else 1.0
        features["x0"] = rng.paretovariate(1.5) * factor
        features["x1"] = 0.0 if rng.random() < 0.7 else rng.lognormvariate(2.0, 1.2)

    return hook


def test_detectors_see_ranks_so_heavy_tails_and_atoms_raise_nothing() -> None:
    """Fed standardised raw values, ADWIN fired about once per 40,000 events on such features
    (a single huge value moves the mean); fed their normal scores in the reference, never."""
    events = stream(120_000, seed=5, feature_hook=heavy_tails())
    outputs = run(ModelMonitor("m", spec(drift={"multivariate": {"enabled": False}})), events)
    assert [a for a in alerts_of(outputs) if a[1].startswith("detector.")] == []


def test_a_heavy_tailed_feature_that_doubles_is_detected_at_once() -> None:
    events = stream(12_000, seed=5, feature_hook=heavy_tails(scale_after=5_500))
    outputs = run(ModelMonitor("m", spec()), events)
    first = next(o for o in outputs if isinstance(o, AlertEvent) and o.rule == "detector.adwin")
    assert first.feature == "x0"
    assert 5_500 <= (first.evidence["event_time"] - T0) // 100 < 6_000  # within 500 events


def test_same_stream_twice_gives_byte_identical_output() -> None:
    def once() -> list[bytes]:
        events = stream(6_000, shift=lambda i: 0.8 if i >= 3_000 else 0.0)
        return [encode_event(o) for o in run(ModelMonitor("m", spec()), events, flush=True)]

    first = once()
    assert any(b'"status":"firing"' in line for line in first)
    assert first == once()


def test_prediction_drift_on_the_score() -> None:
    def skew(i: int, features: dict[str, Any]) -> None:
        features["_i"] = i  # marker only; the score is changed below

    events = [
        event.model_copy(update={"score": (event.score or 0) * 0.3 + 0.7})
        if event.features["_i"] >= 2_000  # type: ignore[operator]
        else event
        for event in stream(5_000, feature_hook=skew)
    ]
    monitor = ModelMonitor("m", spec(features={"x0": "numeric"}))
    rules = {(rule, status) for _, rule, _, status, _ in alerts_of(run(monitor, events))}
    assert ("prediction_drift.psi", "firing") in rules
    assert monitor.signal == "score"
    assert PREDICTION in monitor.detectors


def test_data_quality_counts_bad_values_without_raising() -> None:
    def corrupt(i: int, features: dict[str, Any]) -> None:
        if i >= 2_000:
            if i % 4 == 0:
                features["x1"] = None  # missing
            elif i % 4 == 1:
                features["x1"] = "oops"  # type mismatch
            elif i % 4 == 2:
                features["x1"] = 1e6  # out of the reference range
            features["c0"] = "z" if i % 2 else features["c0"]  # unseen category
            features.pop("x2")  # absent field: missing

    monitor = ModelMonitor("m", spec(window={"kind": "count", "events": 1000}))
    outputs = run(monitor, stream(3_000, feature_hook=corrupt))
    last = [o for o in outputs if isinstance(o, WindowSummary)][-1]
    q = last.quality
    assert q["x1"]["missing_rate"] == pytest.approx(0.25)
    assert q["x1"]["type_mismatch_rate"] == pytest.approx(0.25)
    assert q["x1"]["out_of_range_rate"] == pytest.approx(0.25, abs=0.01)
    assert q["x2"]["missing_rate"] == 1.0
    assert q["c0"]["unseen_rate"] == pytest.approx(0.5)
    assert last.drift["c0"]["unseen_share"] == pytest.approx(0.5)
    assert set(last.latency_ms) == {"p50", "p95", "p99", "max"}
    assert last.latency_ms["p50"] == pytest.approx(4 * math.log(2), rel=0.1)  # exponential median
    fired = {
        (rule, feature) for _, rule, feature, status, _ in alerts_of(outputs) if status == "firing"
    }
    assert ("quality.missing", "x1") in fired
    assert ("quality.missing", "x2") in fired
    assert ("quality.out_of_range", "x1") in fired


def test_non_finite_features_are_counted_separately() -> None:
    codec = EventCodec()
    monitor = ModelMonitor(
        "m",
        spec(features={"a": "numeric"}, warmup_events=10, window={"kind": "count", "events": 10}),
    )
    outputs = []
    for i in range(20):
        value = "NaN" if i >= 15 else str(float(i))
        line = (
            f'{{"event_id": "{i}", "model_id": "m", "timestamp": {T0 + i}, '
            f'"features": {{"a": {value}}}, "prediction": 1}}'
        ).encode()
        outputs += monitor.update(codec.decode_prediction(line))
    last = [o for o in outputs if isinstance(o, WindowSummary)][-1]
    assert last.quality["a"]["non_finite_rate"] == 0.5
    assert last.quality["a"]["missing_rate"] == 0.0


def test_event_time_windows_report_late_events() -> None:
    monitor = ModelMonitor(
        "m",
        spec(warmup_events=50, window={"kind": "tumbling", "size": 10, "allowed_lateness": 2}),
    )
    events = list(stream(400, step_ms=100))  # 40 s of events, 10 s windows
    late = events[150].model_copy(update={"timestamp": T0})  # 15 s behind
    outputs = run(monitor, [*events[:200], late, *events[200:]], flush=True)
    summaries = [o for o in outputs if isinstance(o, WindowSummary)]
    assert [s.window_start - T0 for s in summaries] == [0, 10_000, 20_000, 30_000]
    assert sum(s.sample_size for s in summaries) + sum(s.late_events for s in summaries) == 401
    assert [s.late_events for s in summaries] == [0, 1, 0, 0]
    assert summaries[0].window_kind == "tumbling"
    assert summaries[1].event_lag_ms["max"] is not None


def test_unknown_models_monitor_or_reject(tmp_path: Path) -> None:
    event = next(stream(1, model_id="new-model"))
    inferred = MonitorSet({}, spec(), "monitor")
    inferred.update(event)
    assert "new-model" in inferred.monitors
    rejecting = MonitorSet({"known": spec()}, spec(), "reject")
    with pytest.raises(UnknownModelError) as info:
        rejecting.update(event)
    assert info.value.field == "model_id"
    assert "unknown_models is reject" in info.value.reason
    assert rejecting.update(next(stream(1, model_id="known"))) == []


def test_types_inferred_after_warmup_then_frozen() -> None:
    monitor = ModelMonitor("m", spec(warmup_events=100))
    run(monitor, stream(100))
    assert monitor.types == {"c0": "categorical", "x0": "numeric", "x1": "numeric", "x2": "numeric"}
    late_feature = next(stream(1)).model_copy(update={"features": {"new": 1.0}})
    monitor.update(late_feature)
    assert "new" not in monitor.types


def test_reference_from_profile_is_used_immediately() -> None:
    rows = [(e.features, e.score, e.prediction) for e in stream(2_000, seed=3)]
    profile = profile_from_rows("m", {}, "binary_classification", rows, source="file")
    loaded = ReferenceProfile.from_json(profile.to_json())
    monitor = ModelMonitor("m", spec(), loaded)
    outputs = run(monitor, stream(1_000, seed=4))
    summary = outputs[0]
    assert isinstance(summary, WindowSummary)
    assert summary.reference_id == profile.reference_id
    assert summary.drift["x0"]["psi"] < 0.05


def test_rebaseline_after_resolve_learns_a_new_reference() -> None:
    monitor = ModelMonitor(
        "m",
        spec(
            drift={"rebaseline_after_resolve": True, "detectors": []},
            alerting={"resolve_after": 1, "cooldown": 0},
        ),
    )
    # Shift for two windows, then back: the alert resolves and a new reference is learnt.
    shift = lambda i: 1.0 if 3_000 <= i < 5_000 else 0.0  # noqa: E731
    first_ref = None
    outputs = []
    for event in stream(9_000, shift=shift):
        outputs += monitor.update(event)
        if first_ref is None and monitor.reference is not None:
            first_ref = monitor.reference.reference_id
    statuses = [(rule, status) for _, rule, _, status, _ in alerts_of(outputs)]
    assert ("drift.psi", "resolved") in statuses
    assert monitor.reference is not None
    assert monitor.reference.reference_id != first_ref


def test_small_windows_do_not_alert_on_noise() -> None:
    """Below min_samples nothing is tested; the significance gate covers the rest."""
    monitor = ModelMonitor(
        "m", spec(window={"kind": "count", "events": 50}, drift={"detectors": []})
    )
    assert alerts_of(run(monitor, stream(20_000, seed=5))) == []


def test_settings_build_monitors(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "models:\n  fraud:\n    window: {kind: count, events: 500}\n"
        "monitoring:\n  unknown_models: reject\n",
        encoding="utf-8",
    )
    monitors = MonitorSet.from_settings(load_settings(path))
    assert monitors.monitor("fraud").spec.window.events == 500
    with pytest.raises(UnknownModelError):
        monitors.monitor("other")


feature_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(), st.text(max_size=5)
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["a", "b", "c"]), feature_values, max_size=3),
        min_size=1,
        max_size=80,
    )
)
def test_any_feature_values_never_raise(rows: list[dict[str, Any]]) -> None:
    monitor = ModelMonitor(
        "m",
        spec(
            features={"a": "numeric", "b": "categorical"},
            warmup_events=10,
            window={"kind": "count", "events": 10},
        ),
    )
    for i, features in enumerate(rows):
        event = PredictionEvent.model_construct(
            event_id=str(i),
            model_id="m",
            timestamp=T0 + i,
            features=features,
            prediction=1,
            score=None,
            scores=None,
            label=None,
            latency_ms=None,
            metadata=None,
            model_version=None,
            schema_version=1,
        )
        for output in monitor.update(event):
            encode_event(output)  # every output is serialisable
    monitor.flush()
