"""Drift statistics between a reference distribution and a window, on binned counts.

Computed by the compiled core (``native/src/stats.rs``), p-values included, so closing a window
calls no scipy function; tests/unit/monitor/test_statistics.py checks every statistic and
distribution against scipy. Numeric features are binned on the reference's percentile edges, so
KS and Wasserstein are computed on the binned ECDF (resolution: one percentile; a slight
underestimate of the exact statistics, never an overestimate).

- ``psi(reference, current)``: population stability index, sum (c - r) ln(c / r) over bins,
  empty bins floored at ``EPSILON``.
- ``jensen_shannon(reference, current)``: Jensen-Shannon distance (base 2; between 0 and 1).
- ``chi_square(reference, current)``: chi-square test of homogeneity, (statistic, p-value);
  bins empty on both sides are not degrees of freedom.
- ``ks_binned(reference, current)``: two-sample Kolmogorov-Smirnov, (D, asymptotic p-value).
- ``wasserstein_binned(reference, current, widths, scale)``: Wasserstein-1 distance on the
  binned ECDFs divided by ``scale`` (the reference standard deviation).
"""

from __future__ import annotations

from stream_monitor._native import (
    chi2_sf,
    chi_square,
    jensen_shannon,
    kolmogorov_sf,
    ks_binned,
    psi,
    wasserstein_binned,
)

__all__ = [
    "EPSILON",
    "chi2_sf",
    "chi_square",
    "jensen_shannon",
    "kolmogorov_sf",
    "ks_binned",
    "psi",
    "wasserstein_binned",
]

EPSILON = 1e-4  # floor for empty bins in PSI / JS (native/src/stats.rs holds the same)
