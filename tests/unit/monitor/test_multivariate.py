"""Multivariate drift: the joint reference, the window test, and the rule on a model."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import orjson
import pytest
from scipy.stats import norm

from stream_monitor.events import AlertEvent, PredictionEvent, WindowSummary
from stream_monitor.monitor import ModelMonitor, ReferenceProfile
from stream_monitor.monitor.multivariate import JointReference
from stream_monitor.monitor.multivariate import fit_joint as fit_scored
from stream_monitor.monitor.reference import (
    NumericReference,
    ReferenceError,
    build_feature_reference,
    profile_from_rows,
)

from .streams import T0, stream
from .test_model_monitor import alerts_of, run, spec


def on() -> Any:
    return spec(drift={"multivariate": {"enabled": True}})


def _columns(rows: np.ndarray) -> dict[str, list[float]]:
    return {f"x{j}": rows[:, j].tolist() for j in range(rows.shape[1])}


def _references(columns: dict[str, list[float]]) -> dict[str, NumericReference]:
    found = {name: build_feature_reference("numeric", values) for name, values in columns.items()}
    return {name: ref for name, ref in found.items() if isinstance(ref, NumericReference)}


def fit_joint(
    columns: dict[str, list[float]], names: list[str], share: float
) -> JointReference | None:
    """The joint reference as a warm-up fits it: on the features' own reference bins."""
    bins = {name: (ref.edges, ref.counts) for name, ref in _references(columns).items()}
    return fit_scored(columns, names, share, bins)


def normal_scores(values: np.ndarray, reference: NumericReference) -> np.ndarray:
    """Each value's normal score in the reference (as the core has them: in steps of 1/20)."""
    counts = np.asarray(reference.counts, dtype=float)
    shares = counts / counts.sum()
    floor = 0.5 / counts.sum()
    mid = np.clip(np.cumsum(shares) - shares / 2, floor, 1 - floor)
    scores = np.clip(np.round(norm.ppf(mid) * 20), -127, 127) / 20
    return scores[np.searchsorted(np.asarray(reference.edges), values, side="right")]


def test_nothing_joint_to_watch_gives_no_reference() -> None:
    rows = np.random.default_rng(0).normal(size=(500, 3))
    names = ["x0", "x1", "x2"]
    assert fit_joint(_columns(rows), names[:2], 0.9) is None  # fewer than 3 features
    assert fit_joint(_columns(rows[:99]), names, 0.9) is None  # fewer than 100 complete events
    rows[:, 2] = 4.0
    assert fit_joint(_columns(rows), names, 0.9) is None  # only 2 vary
    missing = np.random.default_rng(0).normal(size=(300, 3))
    missing[::2, 0] = np.nan  # half the events lack x0: 150 complete ones are enough
    joint = fit_joint(_columns(missing), names, 0.9)
    assert joint is not None
    assert joint.sample_size == 150


def test_the_reference_keeps_the_components_of_the_variance_share() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(2_000, 2))
    # x2 and x3 copy x0 and x1 with a little noise: two components hold ~99% of the variance
    rows = np.column_stack([base, base + rng.normal(scale=0.1, size=(2_000, 2))])
    joint = fit_joint(_columns(rows), ["x0", "x1", "x2", "x3"], 0.9)
    assert joint is not None
    assert joint.kept == 2
    assert joint.error_mean < 0.05  # what is left is the noise
    assert joint.correlations[1] == pytest.approx(0.995, abs=0.005)  # x0 with x2
    assert len(joint.discarded) == 2 * 4


def _events(rows: np.ndarray, first: int = 0) -> list[PredictionEvent]:
    return [
        PredictionEvent(
            event_id=f"e{first + i}",
            model_id="m",
            timestamp=T0 + first + i,
            features={f"x{j}": float(v) for j, v in enumerate(row)},
            prediction=1,
            score=0.5,
        )
        for i, row in enumerate(rows)
    ]


def test_the_window_test_matches_its_definition() -> None:
    """The core's test from its fixed-point sums against numpy on the window's events."""
    rng = np.random.default_rng(9)
    warm = rng.normal(size=(1_000, 6))
    window = rng.normal(size=(1_000, 6))
    window[:, 1] = 0.9 * window[:, 0] + np.sqrt(0.19) * window[:, 1]  # marginals unchanged
    monitor = ModelMonitor("m", on())
    outputs = run(monitor, _events(warm) + _events(window, 1_000))
    summary = [o for o in outputs if isinstance(o, WindowSummary)][-1]
    joint = fit_joint(_columns(warm), [f"x{j}" for j in range(6)], 0.9)  # as the warm-up did
    assert joint is not None
    references = _references(_columns(warm))
    scored = np.column_stack([normal_scores(window[:, j], references[f"x{j}"]) for j in range(6)])
    z = (scored - np.asarray(joint.mean)) / np.asarray(joint.sd)
    centred = z - z.mean(axis=0)
    discarded = np.asarray(joint.discarded).reshape(6 - joint.kept, 6)
    error = float(((centred @ discarded.T) ** 2).sum(axis=1).mean())
    found = summary.multivariate
    assert found["reconstruction_error"] == pytest.approx(error, rel=1e-5)
    r = np.corrcoef(z[:, 0], z[:, 1])[0, 1]
    r0 = joint.correlations[0]
    spread = np.sqrt(1 / 997 + 1 / (joint.sample_size - 3)) * np.sqrt(joint.pair_spread[0])
    pair_z = (np.arctanh(r) - np.arctanh(r0)) / spread
    assert found["max_pair_z"] == pytest.approx(pair_z, rel=1e-4)  # r0 kept in 4 bytes
    assert found["joint_z"] == found["max_pair_z"]
    assert found["p_value"] < 1e-100
    alert = next(o for o in outputs if getattr(o, "rule", None) == "drift.multivariate")
    assert alert.evidence["pairs"][0]["features"] == ["x0", "x1"]
    assert alert.evidence["pairs"][0]["correlation"] == pytest.approx(r, rel=1e-6)


def test_windows_like_the_reference_are_not_significant() -> None:
    rng = np.random.default_rng(100)
    monitor = ModelMonitor("m", on())
    outputs = run(monitor, _events(rng.normal(size=(21_000, 6))))
    found = [o.multivariate for o in outputs if isinstance(o, WindowSummary) and o.multivariate]
    assert len(found) == 20  # every window after the warm-up was tested
    assert min(f["p_value"] for f in found) > 1e-4  # the family-wise gate
    assert not [o for o in outputs if getattr(o, "rule", None) == "drift.multivariate"]


def test_a_window_where_a_feature_did_not_vary_is_not_tested() -> None:
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(2_000, 6))
    rows[1_000:, 3] = 0.25  # one feature stuck at one value for the second window
    outputs = run(ModelMonitor("m", on()), _events(rows))
    summaries = [o for o in outputs if isinstance(o, WindowSummary)]
    assert summaries[-1].multivariate == {}


def _correlated_after(start: int) -> Any:
    def hook(i: int, features: dict[str, Any]) -> None:
        if i >= start:
            features["x1"] = 0.9 * features["x0"] + 0.19**0.5 * features["x1"]

    return hook


def test_a_correlation_change_with_unchanged_marginals_alerts_within_two_windows() -> None:
    monitor = ModelMonitor("m", on())
    events = stream(8_000, numeric=6, categorical=1, feature_hook=_correlated_after(4_000))
    outputs = run(monitor, events)
    alerts = alerts_of(outputs)
    assert alerts[0][:2] == (4, "drift.multivariate")  # the first window after the change
    assert all(rule == "drift.multivariate" for _, rule, *_ in alerts)  # no marginal moved
    alert = next(o for o in outputs if getattr(o, "rule", None) == "drift.multivariate")
    assert alert.severity == "critical"
    assert alert.evidence["pairs"][0]["features"] == ["x0", "x1"]
    assert alert.feature is None


def test_a_stationary_stream_gives_no_multivariate_alert() -> None:
    monitor = ModelMonitor("m", on())
    outputs = run(monitor, stream(30_000, numeric=6, categorical=1, seed=11))
    assert not [a for a in alerts_of(outputs) if a[1] == "drift.multivariate"]
    assert sum(isinstance(o, WindowSummary) for o in outputs) == 30


def test_multivariate_is_on_by_default_and_can_be_turned_off() -> None:
    events = list(stream(8_000, numeric=6, categorical=1, feature_hook=_correlated_after(4_000)))
    default = ModelMonitor("m", spec())
    found = [a for a in alerts_of(run(default, events)) if a[1] == "drift.multivariate"]
    assert found
    assert default.joint is not None
    monitor = ModelMonitor("m", spec(drift={"multivariate": {"enabled": False}}))
    outputs = run(monitor, events)
    assert not alerts_of(outputs)
    assert monitor.joint is None
    assert all(not o.multivariate for o in outputs if isinstance(o, WindowSummary))


def test_a_snapshot_mid_window_continues_the_joint_moments() -> None:
    events = list(stream(7_000, numeric=6, categorical=1, feature_hook=_correlated_after(4_000)))
    whole = run(ModelMonitor("m", on()), events)
    first = ModelMonitor("m", on())
    before = run(first, events[:4_500])
    second = ModelMonitor("m", on())
    second.restore(first.snapshot())
    after = run(second, events[4_500:])
    assert [o.model_dump() for o in before + after] == [o.model_dump() for o in whole]


def test_the_profile_file_carries_the_joint_reference() -> None:
    rng = random.Random(5)
    rows = [({f"x{j}": rng.gauss(0, 1) for j in range(4)}, rng.random(), 1) for _ in range(500)]
    types: dict[str, Any] = dict.fromkeys(("x0", "x1", "x2", "x3"), "numeric")
    profile = profile_from_rows("m", types, "binary", rows)
    assert profile.joint is not None
    again = ReferenceProfile.from_json(profile.to_json())
    assert again.joint == profile.joint
    assert again.reference_id == profile.reference_id
    bare = profile_from_rows("m", types, "binary", rows[:50])  # too few events for one
    assert bare.joint is None
    assert b'"joint"' not in bare.to_json()  # profiles without one keep their ids


def test_a_broken_joint_section_names_the_field() -> None:
    rng = random.Random(5)
    rows = [({f"x{j}": rng.gauss(0, 1) for j in range(4)}, rng.random(), 1) for _ in range(500)]
    profile = profile_from_rows("m", dict.fromkeys(("x0", "x1", "x2", "x3"), "numeric"), "b", rows)
    document = profile.to_json().replace(b'"kept": 3', b'"kept": 9')
    with pytest.raises(ReferenceError, match=r"field joint\.kept is missing or invalid"):
        ReferenceProfile.from_json(document, source="p.json")


def test_a_joint_section_fitted_on_raw_values_is_refused() -> None:
    """Profiles made before the moments took normal scores cannot be compared with them."""
    rng = random.Random(5)
    rows = [({f"x{j}": rng.gauss(0, 1) for j in range(4)}, rng.random(), 1) for _ in range(500)]
    profile = profile_from_rows("m", dict.fromkeys(("x0", "x1", "x2", "x3"), "numeric"), "b", rows)
    document = orjson.loads(profile.to_json())
    assert document["joint"].pop("transform") == "normal_scores"
    with pytest.raises(ReferenceError, match=r"field joint\.transform is missing or invalid"):
        ReferenceProfile.from_json(orjson.dumps(document), source="p.json")


def _shaped(rng: random.Random) -> Any:
    """Stationary features of the shapes production has: Pareto tails, an atom at 0, a
    near-constant one, and a pair that depends on each other but not linearly."""

    def hook(i: int, features: dict[str, Any]) -> None:
        x = rng.uniform(-2, 2)
        features["x0"] = rng.paretovariate(1.5)
        features["x1"] = 0.0 if rng.random() < 0.7 else rng.lognormvariate(2, 1.2)
        features["x2"] = 1.0 if rng.random() < 0.95 else rng.gauss(5, 2)
        features["x3"] = x
        features["x4"] = x * x + rng.gauss(0, 0.3)

    return hook


def test_shapes_that_broke_the_moments_raise_no_multivariate_alert() -> None:
    """On standardised raw values such features moved the error and the pairs' correlations
    far more than a normal band allows (20 false alerts in 1,000,000 events)."""
    events = stream(
        60_000, numeric=6, categorical=1, seed=4, feature_hook=_shaped(random.Random(4))
    )
    monitor = ModelMonitor("m", on())
    outputs = run(monitor, events)
    assert monitor.joint is not None
    found = [o.multivariate for o in outputs if isinstance(o, WindowSummary) and o.multivariate]
    assert len(found) == 59
    assert min(f["p_value"] for f in found) > 1e-4
    assert not [
        a for a in alerts_of(outputs) if a[1] == "drift.multivariate" or a[2] == "__joint__"
    ]


def test_the_non_linear_pair_spreads_wider_than_a_normal_pair() -> None:
    rng = random.Random(8)
    columns: dict[str, list[float]] = {f"x{j}": [] for j in range(4)}
    for _ in range(2_000):
        x = rng.uniform(-2, 2)
        for name, value in zip(
            columns, (x, x * x + rng.gauss(0, 0.3), rng.gauss(0, 1), rng.gauss(0, 1)), strict=True
        ):
            columns[name].append(value)
    joint = fit_joint(columns, list(columns), 0.9)
    assert joint is not None
    assert joint.pair_spread[0] > 1.5  # (x0, x1): dependent, barely correlated
    assert all(v == pytest.approx(1.0, abs=0.3) for v in joint.pair_spread[3:])  # independent
    assert sum(joint.error_counts) == joint.held_out - 1  # each held-out event and the next


def test_windows_below_the_minimum_are_not_tested() -> None:
    rng = np.random.default_rng(7)
    monitor = ModelMonitor(
        "m",
        spec(window={"kind": "count", "events": 400}, drift={"multivariate": {"enabled": True}}),
    )
    outputs = run(monitor, _events(rng.normal(size=(4_000, 6))))
    assert monitor.joint is not None
    assert all(not o.multivariate for o in outputs if isinstance(o, WindowSummary))


def test_a_model_state_of_the_previous_version_or_cut_short_is_refused() -> None:
    from stream_monitor._native import _restore_model_core

    monitor = ModelMonitor("m", on())
    run(monitor, stream(1_500, numeric=6, categorical=1))  # a reference, a window half full
    restore, (state,) = monitor.core.__reduce__()
    assert restore is _restore_model_core
    assert _restore_model_core(state).__reduce__()[1][0] == state  # byte for byte
    # version 1 had no joint moments; 9 is from a newer build
    for version in (1, 9):
        with pytest.raises(ValueError, match=rf"version {version} is not supported.*fresh"):
            _restore_model_core(bytes([version]) + state[1:])
    for cut in (1, 9, 100):  # inside the last window's joint moments, or earlier
        with pytest.raises(ValueError, match=r"truncated|trailing|wrong size|starts fresh"):
            _restore_model_core(state[:-cut])


def test_metrics_expose_the_windows_multivariate_statistics() -> None:
    from stream_monitor.observability.metrics import WorkerMetrics

    events = stream(6_000, numeric=6, categorical=1, feature_hook=_correlated_after(4_000))
    summaries = [o for o in run(ModelMonitor("m", on()), events) if isinstance(o, WindowSummary)]
    metrics = WorkerMetrics()
    for summary in summaries:
        metrics.summary(summary)
    text = metrics.exposition().decode()
    last = summaries[-1].multivariate
    line = (
        'stream_monitor_drift_statistic{feature="__joint__",model="m",segment="",'
        'statistic="joint_z"}'
    )
    assert f"{line} {last['joint_z']}" in text
    assert 'feature="__joint__",model="m",segment="",statistic="p_value"' in text


def _decoupled_after(start: int) -> Any:
    """x1 follows x0 closely (x0 + 0.1 noise) until ``start``, then moves on its own with the
    same spread: the reference's PCA leaves out the x0 - x1 direction, where the error jumps."""

    def hook(i: int, features: dict[str, Any]) -> None:
        if i < start:
            features["x1"] = (features["x0"] + 0.1 * features["x1"]) / 1.005**0.5

    return hook


def test_the_detector_on_each_events_error_finds_a_change_inside_a_window() -> None:
    events = stream(6_000, numeric=4, categorical=1, feature_hook=_decoupled_after(4_300))
    monitor = ModelMonitor("m", spec())
    outputs = run(monitor, events)
    found = [
        o
        for o in outputs
        if isinstance(o, AlertEvent)
        and o.rule == "detector.adwin"
        and o.feature == "__joint__"
        and o.status == "firing"
    ]
    assert found
    at = found[0].evidence["event_time"]
    assert T0 + 4_300 * 100 < at < T0 + 4_500 * 100  # within 200 events, before the close
    assert "reconstruction error" in found[0].evidence["signal"]
    later = [s for s in outputs if isinstance(s, WindowSummary) and s.window_index == 4]
    assert later[0].detections.get("__joint__") == 1
    # nothing before the change: the pairs' errors match the reference band
    assert not [o for o in outputs[: outputs.index(found[0])] if isinstance(o, AlertEvent)]


def test_a_mean_shift_alone_does_not_move_the_pairs_error() -> None:
    events = stream(9_000, numeric=4, categorical=1, shift=lambda i: 1.0 if i >= 4_000 else 0.0)
    outputs = run(ModelMonitor("m", spec()), events)
    assert [a for a in alerts_of(outputs) if a[1] == "detector.adwin" and a[2] == "x0"]
    assert not [a for a in alerts_of(outputs) if a[2] == "__joint__"]
