"""The ``compare`` rule: the values of one segmentation side by side in the same window.

Meant for model versions (``segments.by: [model_version]``): a champion and its challengers
score the same stream, and each window says whether a challenger's performance or prediction
distribution differs from the champion's (the ``baseline``: configured, else the version seen
first, which is live before its challengers). Two checks per challenger:

- ``compare.performance``: the challenger's metric is worse than the baseline's by
  ``performance_drop`` or more, both with ``performance.min_labels`` labels, and for the
  proportions (accuracy, precision, recall) a one-sided two-proportion z-test agrees;
- ``compare.prediction``: the PSI between the two windows' predictions reaches
  ``prediction_psi`` and a chi-square test of homogeneity agrees. Predictions are compared on
  the baseline's bins (the deciles of its reference that lie within the challenger's; the
  challenger's counts are read off its own binned distribution by interpolating its
  cumulative counts), or by class.

The tests share ``drift.significance`` among the checks of the window (Bonferroni), so
comparing versions adds no false alarms on a stationary stream. Pure: summaries in, checks out.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from stream_monitor._native import chi_square, norm_sf, psi
from stream_monitor.config.models import ModelSpec
from stream_monitor.events.alerts import WindowSummary
from stream_monitor.monitor.lifecycle import RuleCheck
from stream_monitor.monitor.performance import LOWER_IS_BETTER

__all__ = ["compare_checks", "on_common_bins"]

PREDICTION = "<prediction>"  # the distributions key of the prediction signal
_PROPORTIONS = frozenset({"accuracy", "precision", "recall"})


def _labelled(summary: WindowSummary) -> int:
    coverage = summary.label_coverage or 0.0
    return round(coverage * summary.sample_size)


def compare_checks(
    spec: ModelSpec, windows: Sequence[WindowSummary], first: str | None = None
) -> list[tuple[WindowSummary, RuleCheck]]:
    """The compare checks of one window: (challenger's summary, check) for every value of the
    compared entry but the baseline. ``windows``: the entry's segments' summaries of the
    window (segment ``<by>=<value>``); ``first``: the segment seen first, the baseline unless
    ``compare.baseline`` names one."""
    compare = spec.segments.compare
    prefix = f"{compare.by}="
    present = [w for w in windows if w.segment and w.segment.startswith(prefix)]
    if len(present) < 2:
        return []
    wanted = prefix + compare.baseline if compare.baseline is not None else first
    baseline = next((w for w in present if w.segment == wanted), None)
    if baseline is None:
        return []
    others = [w for w in present if w is not baseline]
    alpha = spec.drift.significance / (2 * len(others))
    out: list[tuple[WindowSummary, RuleCheck]] = []
    for other in others:
        out.append((other, _performance(spec, baseline, other, alpha)))
        out.append((other, _prediction(spec, baseline, other, alpha)))
    return out


def _performance(
    spec: ModelSpec, baseline: WindowSummary, other: WindowSummary, alpha: float
) -> RuleCheck:
    compare, metric = spec.segments.compare, spec.performance.metric
    base, value = baseline.performance.get(metric), other.performance.get(metric)
    n_base, n_other = _labelled(baseline), _labelled(other)
    severity = None
    worse = pvalue = None
    enough = min(n_base, n_other) >= spec.performance.min_labels
    if enough and base is not None and value is not None:
        worse = value - base if metric in LOWER_IS_BETTER else base - value
        if metric in _PROPORTIONS:
            pooled = (base * n_base + value * n_other) / (n_base + n_other)
            spread = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n_base + 1 / n_other))
            pvalue = norm_sf((base - value) / spread)
        if worse >= compare.performance_drop and (pvalue is None or pvalue < alpha):
            severity = "critical" if worse >= 2 * compare.performance_drop else "warning"
    return RuleCheck(
        rule="compare.performance",
        kind="performance",
        feature=None,
        statistic=metric,
        value=value if enough else None,
        threshold=compare.performance_drop,
        severity=severity,  # type: ignore[arg-type]
        evidence={
            "baseline": baseline.segment,
            "baseline_value": base,
            "worsening": worse,
            "labelled": n_other,
            "baseline_labelled": n_base,
            "p_value": pvalue,
            "alpha": alpha,
        },
        higher_is_better=metric not in LOWER_IS_BETTER,
    )


def _prediction(
    spec: ModelSpec, baseline: WindowSummary, other: WindowSummary, alpha: float
) -> RuleCheck:
    compare = spec.segments.compare
    pair = on_common_bins(
        baseline.distributions.get(PREDICTION), other.distributions.get(PREDICTION)
    )
    value = pvalue = None
    severity = None
    if pair is not None and min(map(sum, pair)) >= spec.segments.min_events:
        value = psi(*pair)
        pvalue = chi_square(*pair)[1]
        if value >= compare.prediction_psi and pvalue < alpha:
            severity = "critical" if value >= 2.5 * compare.prediction_psi else "warning"
    return RuleCheck(
        rule="compare.prediction",
        kind="prediction_drift",
        feature=None,
        statistic="psi",
        value=value,
        threshold=compare.prediction_psi,
        severity=severity,  # type: ignore[arg-type]
        evidence={"baseline": baseline.segment, "p_value": pvalue, "alpha": alpha},
    )


def on_common_bins(
    first: dict[str, Any] | None, second: dict[str, Any] | None
) -> tuple[list[float], list[float]] | None:
    """Two windows' distributions (as summaries carry them) as counts on common bins: the
    first's edges within the second's range for numbers, the union of classes for categories;
    None when either is missing or they are of different kinds."""
    if not first or not second:
        return None
    if "categories" in first and "categories" in second:
        counts_a = dict(zip(first["categories"], first["window"], strict=True))
        counts_b = dict(zip(second["categories"], second["window"], strict=True))
        names = sorted(set(counts_a) | set(counts_b), key=str)
        return [float(counts_a.get(n, 0)) for n in names], [
            float(counts_b.get(n, 0)) for n in names
        ]
    if "edges" in first and "edges" in second and first["edges"] and second["edges"]:
        # The first's edges within the second's range: where both cumulative counts are known
        # (beyond its outer edges, how the second's values spread is not).
        edges, other = first["edges"], second["edges"]
        cut = [x for x in edges if other[0] <= x <= other[-1]] or [edges[len(edges) // 2]]
        return _rebin(edges, first["window"], cut), _rebin(other, second["window"], cut)
    return None


def _rebin(edges: Sequence[float], counts: Sequence[float], cut: Sequence[float]) -> list[float]:
    """Counts on the bins of ``edges`` (``len(edges) + 1`` bins: below the first edge, between
    edges, from the last on) moved to the bins of ``cut``: the cumulative count at each cut,
    interpolated linearly between the edges, differenced."""
    total = float(sum(counts))
    below = [0.0]  # cumulative count below each edge
    for count in counts[:-1]:
        below.append(below[-1] + count)
    below = below[1:]

    def cumulative(x: float) -> float:
        i = bisect_right(edges, x)
        if i == 0:  # below the first edge: where the lowest bin's values lie is unknown
            return 0.0
        if i >= len(edges):
            return below[-1]
        left, right = edges[i - 1], edges[i]
        share = 0.0 if right <= left else (x - left) / (right - left)
        return below[i - 1] + share * (below[i] - below[i - 1])

    points = [cumulative(x) for x in cut]
    bounds = [0.0, *points, total]
    return [max(bounds[k + 1] - bounds[k], 0.0) for k in range(len(bounds) - 1)]
