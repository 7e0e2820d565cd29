"""Multivariate drift: the joint reference, the window test, and the rule on a model."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from stream_monitor.events import WindowSummary
from stream_monitor.monitor import ModelMonitor, ReferenceProfile
from stream_monitor.monitor.multivariate import JointReference, fit_joint, joint_statistics
from stream_monitor.monitor.reference import ReferenceError, profile_from_rows

from .streams import stream
from .test_model_monitor import alerts_of, run, spec


def _columns(rows: np.ndarray) -> dict[str, list[float]]:
    return {f"x{j}": rows[:, j].tolist() for j in range(rows.shape[1])}


def _reference(seed: int = 1, size: int = 1_000, features: int = 6) -> JointReference:
    rows = np.random.default_rng(seed).normal(size=(size, features))
    joint = fit_joint(_columns(rows), [f"x{j}" for j in range(features)], 0.9)
    assert joint is not None
    return joint


def _moments(rows: np.ndarray, joint: JointReference) -> tuple[int, list[float], list[float]]:
    """What the native core counts for these rows (without its fixed point)."""
    z = np.clip((rows - np.asarray(joint.mean)) / np.asarray(joint.sd), -16, 16)
    f = z.shape[1]
    cross = [float((z[:, i] * z[:, j]).sum()) for i in range(f) for j in range(i, f)]
    return len(z), z.sum(axis=0).tolist(), cross


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


def test_the_window_test_matches_its_definition() -> None:
    joint = _reference()
    rows = np.random.default_rng(9).normal(size=(1_000, 6))
    rows[:, 1] = 0.9 * rows[:, 0] + np.sqrt(0.19) * rows[:, 1]  # same marginals, correlated
    found = joint_statistics(joint, *_moments(rows, joint))
    assert found is not None
    z = (rows - np.asarray(joint.mean)) / np.asarray(joint.sd)
    centred = z - z.mean(axis=0)
    discarded = np.asarray(joint.discarded).reshape(6 - joint.kept, 6)
    error = float(((centred @ discarded.T) ** 2).sum(axis=1).mean())
    assert found.evidence["reconstruction_error"] == pytest.approx(error, rel=1e-9)
    top = found.evidence["pairs"][0]
    assert top["features"] == ["x0", "x1"]
    assert top["correlation"] == pytest.approx(np.corrcoef(z[:, 0], z[:, 1])[0, 1], rel=1e-9)
    assert found.value == pytest.approx(abs(top["z"]))
    assert found.p_value < 1e-100


def test_a_window_like_the_reference_is_not_significant() -> None:
    joint = _reference()
    p_values = []
    for seed in range(20):
        rows = np.random.default_rng(100 + seed).normal(size=(1_000, 6))
        found = joint_statistics(joint, *_moments(rows, joint))
        assert found is not None
        p_values.append(found.p_value)
    assert min(p_values) > 1e-4  # the family-wise gate of a window with 7 signals


def test_windows_the_test_cannot_read_give_nothing() -> None:
    joint = _reference()
    n, sums, cross = _moments(np.random.default_rng(2).normal(size=(50, 6)), joint)
    assert joint_statistics(joint, 3, sums, cross) is None  # too few events
    assert joint_statistics(joint, n, sums[:5], cross) is None  # not its features
    constant = np.ones((50, 6))
    assert joint_statistics(joint, *_moments(constant, joint)) is None  # nothing varied


def _correlated_after(start: int) -> Any:
    def hook(i: int, features: dict[str, Any]) -> None:
        if i >= start:
            features["x1"] = 0.9 * features["x0"] + 0.19**0.5 * features["x1"]

    return hook


def test_a_correlation_change_with_unchanged_marginals_alerts_within_two_windows() -> None:
    monitor = ModelMonitor("m", spec())
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
    monitor = ModelMonitor("m", spec())
    outputs = run(monitor, stream(30_000, numeric=6, categorical=1, seed=11))
    assert not [a for a in alerts_of(outputs) if a[1] == "drift.multivariate"]
    assert sum(isinstance(o, WindowSummary) for o in outputs) == 30


def test_multivariate_can_be_turned_off() -> None:
    off = spec(drift={"multivariate": {"enabled": False}})
    monitor = ModelMonitor("m", off)
    events = stream(8_000, numeric=6, categorical=1, feature_hook=_correlated_after(4_000))
    assert not alerts_of(run(monitor, events))
    assert monitor.joint is None


def test_a_snapshot_mid_window_continues_the_joint_moments() -> None:
    events = list(stream(7_000, numeric=6, categorical=1, feature_hook=_correlated_after(4_000)))
    whole = run(ModelMonitor("m", spec()), events)
    first = ModelMonitor("m", spec())
    before = run(first, events[:4_500])
    second = ModelMonitor("m", spec())
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


def test_a_model_state_of_the_previous_version_or_cut_short_is_refused() -> None:
    from stream_monitor._native import _restore_model_core

    monitor = ModelMonitor("m", spec())
    run(monitor, stream(1_500, numeric=6, categorical=1))  # a reference, a window half full
    restore, (state,) = monitor.core.__reduce__()
    assert restore is _restore_model_core
    assert _restore_model_core(state).__reduce__()[1][0] == state  # byte for byte
    # version 1 had no joint moments; 9 is from a newer build
    for version in (1, 9):
        with pytest.raises(ValueError, match=rf"version {version} is not supported.*fresh"):
            _restore_model_core(bytes([version]) + state[1:])
    for cut in (1, 9, 100):  # inside the last window's joint moments, or earlier
        with pytest.raises(ValueError, match="truncated|trailing|wrong size|starts fresh"):
            _restore_model_core(state[:-cut])
