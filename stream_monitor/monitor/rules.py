"""Window rules: drift and data quality, with false-alarm control.

A rule breaches when its statistic reaches the warning (or critical) threshold *and* the matching
test is significant after a Bonferroni correction over everything tested in the window
(``drift.significance / tests``), and only when the window holds at least ``drift.min_samples``
usable values. The threshold keeps alerts to changes that matter; the significance gate keeps small
windows from alerting on noise, whatever the number of features.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

from stream_monitor._native import binom_cdf, binom_sf, norm_sf
from stream_monitor.config.models import ModelSpec
from stream_monitor.events.alerts import AlertKind, Severity
from stream_monitor.monitor.estimation import Band
from stream_monitor.monitor.lifecycle import RuleCheck
from stream_monitor.monitor.multivariate import JointCheck
from stream_monitor.monitor.performance import LOWER_IS_BETTER

Stats = dict[str, float | None]
# Whether a healthy check of (rule, feature) is wanted: an incident of it is open.
Tracks = Callable[[str, "str | None"], bool]

__all__ = [
    "DriftInput",
    "Tracks",
    "drift_checks",
    "estimation_check",
    "performance_check",
    "quality_checks",
]

_PVALUE_OF = {
    "psi": "chi_square_pvalue",
    "jensen_shannon": "chi_square_pvalue",
    "chi_square": "chi_square_pvalue",
    "ks": "ks_pvalue",
    "wasserstein": "ks_pvalue",
}


class DriftInput(NamedTuple):
    """Drift statistics of one signal (a feature or the prediction) in one window."""

    name: str
    stats: Stats
    usable: int  # values that were counted in bins (not missing or invalid)


def _statistic(stats: Stats, wanted: str, usable: int) -> tuple[str, float, float] | None:
    """(statistic name, value, p-value); numeric-only statistics fall back to PSI."""
    name = wanted if wanted in stats else "psi"
    value = stats.get(name)
    pvalue = stats.get(_PVALUE_OF[name])
    if value is None or pvalue is None:
        return None
    if name == "chi_square":  # scale-free: Pearson chi-square per observation
        value = value / usable
    return name, value, pvalue


def _severity(value: float, warning: float, critical: float) -> Severity | None:
    if value >= critical:
        return "critical"
    if value >= warning:
        return "warning"
    return None


def drift_checks(
    spec: ModelSpec,
    features: list[DriftInput],
    prediction: DriftInput | None,
    reference_id: str | None,
    joint: tuple[JointCheck, int] | None = None,
    *,
    tracks: Tracks | None = None,
) -> list[RuleCheck]:
    """Drift checks for every signal with enough values, features first, then the prediction,
    then the joint distribution (``joint``: the window's multivariate test and its events).
    ``tracks(rule, feature)``: whether a healthy check of that rule is wanted (all when None)."""
    drift = spec.drift
    signals = [(s, "drift") for s in features] + (
        [(prediction, "prediction_drift")] if prediction else []
    )
    measured: list[tuple[DriftInput, AlertKind, str, float, float]] = []
    for signal, kind in signals:
        if signal.usable < drift.min_samples:
            continue
        found = _statistic(signal.stats, drift.statistic, signal.usable)
        if found is not None:
            measured.append((signal, kind, *found))  # type: ignore[arg-type]
    tested = joint is not None and joint[1] >= drift.min_samples
    if not measured and not tested:
        return []
    alpha = drift.significance / (len(measured) + tested)
    ranked = sorted((m for m in measured if m[1] == "drift"), key=lambda m: (-m[3], m[0].name))
    top = [{"feature": m[0].name, m[2]: m[3]} for m in ranked[:3]]
    checks = []
    for signal, kind, statistic, value, pvalue in measured:
        severity = _severity(value, drift.warning, drift.critical) if pvalue < alpha else None
        feature = signal.name if kind == "drift" else None
        if severity is None and tracks is not None and not tracks(f"{kind}.{statistic}", feature):
            continue
        checks.append(
            RuleCheck(
                rule=f"{kind}.{statistic}",
                kind=kind,
                feature=feature,
                statistic=statistic,
                value=value,
                threshold=drift.critical if severity == "critical" else drift.warning,
                severity=severity,
                evidence={
                    "p_value": pvalue,
                    "alpha": alpha,
                    "sample_size": signal.usable,
                    "reference_id": reference_id,
                    "statistics": dict(signal.stats),
                    "top_features": top,
                },
            )
        )
    if tested:
        assert joint is not None  # noqa: S101 - tested implies it
        joint_check = _joint_check(spec, *joint, alpha, reference_id)
        if joint_check.severity is not None or tracks is None or tracks(joint_check.rule, None):
            checks.append(joint_check)
    return checks


def _joint_check(
    spec: ModelSpec, found: JointCheck, events: int, alpha: float, reference_id: str | None
) -> RuleCheck:
    multivariate = spec.drift.multivariate
    severity: Severity | None = None
    if found.p_value < alpha:
        severity = "critical" if found.value >= multivariate.critical_z else "warning"
    return RuleCheck(
        rule="drift.multivariate",
        kind="drift",
        feature=None,
        statistic="joint_z",
        value=found.value,
        threshold=multivariate.critical_z if severity == "critical" else None,
        severity=severity,
        evidence={
            "p_value": found.p_value,
            "alpha": alpha,
            "sample_size": events,
            "reference_id": reference_id,
            **found.evidence,
        },
    )


def quality_checks(
    spec: ModelSpec,
    *,
    quality: Mapping[str, Stats],
    events: int,
    baseline_missing: Mapping[str, float],
    range_null_rate: Mapping[str, float],
    reference_id: str | None,
    tracks: Tracks | None = None,
) -> list[RuleCheck]:
    """Missing-or-invalid and out-of-range checks per feature (``tracks`` as for
    :func:`drift_checks`: a rate below its warning level is healthy, untested unless wanted)."""
    if events < spec.drift.min_samples or not quality:
        return []
    rules = spec.quality
    tests = len(quality) + len(range_null_rate)
    alpha = spec.drift.significance / tests
    # (rule, feature, statistic, rate, expected rate, warning, critical)
    candidates: list[tuple[str, str, str, float, float, float, float]] = []
    for name, stats in quality.items():
        rate = sum(
            (stats.get(k) or 0.0) for k in ("missing_rate", "non_finite_rate", "type_mismatch_rate")
        )
        base = baseline_missing.get(name, 0.0)
        candidates.append(
            (
                "quality.missing",
                name,
                "missing_or_invalid_rate",
                rate,
                base,
                base + rules.missing_warning,
                base + rules.missing_critical,
            )
        )
        if name in range_null_rate and stats.get("out_of_range_rate") is not None:
            candidates.append(
                (
                    "quality.out_of_range",
                    name,
                    "out_of_range_rate",
                    stats["out_of_range_rate"] or 0.0,
                    range_null_rate[name],
                    rules.out_of_range_warning,
                    rules.out_of_range_critical,
                )
            )
    return [
        _rate_check(
            rule=rule,
            feature=feature,
            statistic=statistic,
            rate=rate,
            events=events,
            base=base,
            warning=warning,
            critical=critical,
            alpha=alpha,
            reference_id=reference_id,
        )
        for rule, feature, statistic, rate, base, warning, critical in candidates
        # below its warning level a rate is healthy whatever the test says: tested only when
        # an incident waits for it
        if rate >= warning or tracks is None or tracks(rule, feature)
    ]


def _rate_check(
    *,
    rule: str,
    feature: str,
    statistic: str,
    rate: float,
    events: int,
    base: float,
    warning: float,
    critical: float,
    alpha: float,
    reference_id: str | None,
) -> RuleCheck:
    hits = round(rate * events)
    # One-sided binomial test: is the rate really above what the reference leads us to expect?
    pvalue = binom_sf(hits - 1, events, min(max(base, 1e-3), 1.0)) if hits else 1.0
    severity = _severity(rate, warning, critical) if pvalue < alpha else None
    return RuleCheck(
        rule=rule,
        kind="data_quality",
        feature=feature,
        statistic=statistic,
        value=rate,
        threshold=critical if severity == "critical" else warning,
        severity=severity,
        evidence={
            "p_value": pvalue,
            "alpha": alpha,
            "expected_rate": base,
            "sample_size": events,
            "reference_id": reference_id,
        },
    )


def performance_check(
    spec: ModelSpec,
    metrics: Mapping[str, float | None],
    labelled: int,
    reference: Mapping[str, float | None],
    errors: tuple[float | None, float | None] = (None, None),
) -> RuleCheck | None:
    """The performance rule for one window, or None when it cannot be tested yet.

    A worsening alerts only when a one-sided test puts it below ``drift.significance``: a
    z-test on the metric's standard ``errors`` (the window's, then the reference's: see each
    performance's ``standard_error``; a reference from a profile file has none and counts as
    exact) where the window's has one, and proportions without one (accuracy, a binary
    classifier's precision and recall) by a two-proportion z-test or a binomial one."""
    perf = spec.performance
    metric = perf.metric
    value, baseline = metrics.get(metric), reference.get(metric)
    if labelled < perf.min_labels or value is None or baseline is None:
        return None
    worse = value - baseline if metric in LOWER_IS_BETTER else baseline - value
    pvalue = None
    if errors[0] is not None:
        deviation = math.hypot(errors[0], errors[1] or 0.0)
        pvalue = norm_sf(worse / deviation) if deviation > 0 else (0.0 if worse > 0 else 1.0)
    elif metric in _PROPORTIONS:
        reference_n = reference.get("labelled")
        if reference_n:
            # One-sided two-proportion z-test: the reference is an estimate too.
            pooled = (baseline * reference_n + value * labelled) / (reference_n + labelled)
            spread = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / reference_n + 1 / labelled))
            pvalue = norm_sf((baseline - value) / spread)
        else:
            # One-sided binomial test of the window's rate against a known reference rate.
            hits = round(value * labelled)
            pvalue = binom_cdf(hits, labelled, min(max(baseline, 1e-9), 1 - 1e-9))
    significant = pvalue is None or pvalue < spec.drift.significance
    severity = _severity(worse, perf.warning_drop, perf.critical_drop) if significant else None
    sign = 1 if metric in LOWER_IS_BETTER else -1
    drop = perf.critical_drop if severity == "critical" else perf.warning_drop
    return RuleCheck(
        rule=f"performance.{metric}",
        kind="performance",
        feature=None,
        statistic=metric,
        value=value,
        threshold=baseline + sign * drop,
        severity=severity,
        evidence={
            "reference_value": baseline,
            "worsening": worse,
            "labelled": labelled,
            "p_value": pvalue,
        },
        higher_is_better=metric not in LOWER_IS_BETTER,
    )


_PROPORTIONS = frozenset({"accuracy", "precision", "recall"})


def estimation_check(
    spec: ModelSpec,
    metrics: Mapping[str, float | None],
    labelled: int,
    sample_size: int,
    band: tuple[Band, float] | None,
) -> RuleCheck | None:
    """The estimated-performance rule for one window: the estimated metric (see
    :mod:`stream_monitor.monitor.estimation`) against the reference's estimate of it, while the
    window has fewer labels than ``performance.min_labels`` (with as many, the performance rule
    judges and this one reads healthy). It alerts when the fall leaves the band of the two
    estimates' spread (one-sided, below ``drift.significance``) and reaches
    ``performance.estimation_floor``; critical from ``critical_drop``. Both estimates come
    from scores through the same calibration, so neither carries the noise of the reference's
    labels. None when nothing is estimated."""
    perf = spec.performance
    metric = perf.metric
    value = metrics.get(f"estimated_{metric}")
    if value is None or band is None or sample_size < perf.min_labels:
        return None
    reference, spread = band
    baseline = reference.value
    worse = baseline - value
    deviation = math.hypot(spread, reference.standard_error)
    pvalue = norm_sf(worse / deviation) if deviation > 0 else (0.0 if worse > 0 else 1.0)
    severity: Severity | None = None
    if pvalue < spec.drift.significance and worse >= perf.estimation_floor:
        severity = "critical" if worse >= perf.critical_drop else "warning"
    if labelled >= perf.min_labels:
        severity = None  # labels judge this window: the performance rule
    drop = perf.critical_drop if severity == "critical" else perf.estimation_floor
    return RuleCheck(
        rule="estimated_performance",
        kind="performance",
        feature=None,
        statistic=f"estimated_{metric}",
        value=value,
        threshold=baseline - drop,
        severity=severity,
        evidence={
            "reference_value": baseline,
            "worsening": worse,
            "labelled": labelled,
            "estimated_from": sample_size,
            "p_value": pvalue,
            "standard_error": deviation,
        },
        higher_is_better=True,
    )
