"""Drift statistics between a reference distribution and a window, on binned counts.

All functions are pure and deterministic. Numeric features are binned on the reference's
percentile edges, so KS and Wasserstein are computed on the binned ECDF (resolution: one
percentile; a slight underestimate of the exact statistics, never an overestimate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy.special import kolmogorov
from scipy.stats import chi2

__all__ = [
    "EPSILON",
    "chi_square",
    "jensen_shannon",
    "ks_binned",
    "psi",
    "wasserstein_binned",
]

EPSILON = 1e-4  # floor for empty bins in PSI / JS, so an empty bin is a large but finite term


def _proportions(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    if total <= 0:
        return [0.0] * len(counts)
    return [c / total for c in counts]


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """Population stability index: sum (c - r) * ln(c / r) over bins, empty bins floored."""
    ref, cur = _proportions(reference), _proportions(current)
    total = 0.0
    for r_raw, c_raw in zip(ref, cur, strict=True):
        r, c = max(r_raw, EPSILON), max(c_raw, EPSILON)
        total += (c - r) * math.log(c / r)
    return total


def jensen_shannon(reference: Sequence[float], current: Sequence[float]) -> float:
    """Jensen-Shannon *distance* (square root of the divergence, base 2; between 0 and 1)."""
    ref, cur = _proportions(reference), _proportions(current)
    divergence = 0.0
    for r, c in zip(ref, cur, strict=True):
        m = (r + c) / 2
        if r > 0:
            divergence += 0.5 * r * math.log2(r / m)
        if c > 0:
            divergence += 0.5 * c * math.log2(c / m)
    return math.sqrt(max(divergence, 0.0))


def chi_square(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """Chi-square test of homogeneity of two binned samples: (statistic, p-value)."""
    n_ref, n_cur = float(sum(reference)), float(sum(current))
    if n_ref <= 0 or n_cur <= 0:
        return 0.0, 1.0
    total = n_ref + n_cur
    statistic = 0.0
    bins = 0
    for r, c in zip(reference, current, strict=True):
        column = r + c
        if column <= 0:
            continue
        bins += 1
        expected_ref = column * n_ref / total
        expected_cur = column * n_cur / total
        statistic += (r - expected_ref) ** 2 / expected_ref + (c - expected_cur) ** 2 / expected_cur
    if bins < 2:
        return 0.0, 1.0
    return statistic, float(chi2.sf(statistic, bins - 1))


def ks_binned(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov on binned ECDFs: (statistic D, asymptotic p-value)."""
    n_ref, n_cur = float(sum(reference)), float(sum(current))
    if n_ref <= 0 or n_cur <= 0:
        return 0.0, 1.0
    cum_ref = cum_cur = 0.0
    distance = 0.0
    for r, c in zip(reference, current, strict=True):
        cum_ref += r
        cum_cur += c
        distance = max(distance, abs(cum_ref / n_ref - cum_cur / n_cur))
    effective = math.sqrt(n_ref * n_cur / (n_ref + n_cur))
    return distance, float(kolmogorov(effective * distance))


def wasserstein_binned(
    reference: Sequence[float], current: Sequence[float], widths: Sequence[float], scale: float
) -> float:
    """Wasserstein-1 distance on binned ECDFs, divided by ``scale`` (the reference std)."""
    n_ref, n_cur = float(sum(reference)), float(sum(current))
    if n_ref <= 0 or n_cur <= 0 or scale <= 0:
        return 0.0
    cum_ref = cum_cur = 0.0
    area = 0.0
    # The ECDF difference after bin i holds over the gap to the next edge (widths[i]).
    for r, c, width in zip(reference, current, widths, strict=True):
        cum_ref += r
        cum_cur += c
        area += abs(cum_ref / n_ref - cum_cur / n_cur) * width
    return area / scale
