"""Drift statistics against independent implementations (scipy) and known values."""

from __future__ import annotations

import math
import random

import pytest
from scipy.spatial.distance import jensenshannon
from scipy.special import kolmogorov
from scipy.stats import chi2_contingency, ks_2samp

from stream_monitor.monitor.reference import NumericReference, build_feature_reference
from stream_monitor.monitor.statistics import (
    chi_square,
    jensen_shannon,
    ks_binned,
    psi,
    wasserstein_binned,
)


def test_identical_distributions_score_zero() -> None:
    counts = [10, 20, 30, 40]
    assert psi(counts, counts) == 0.0
    assert jensen_shannon(counts, counts) == 0.0
    assert chi_square(counts, [c * 2 for c in counts]) == (0.0, 1.0)
    assert ks_binned(counts, counts)[0] == 0.0


def test_psi_known_value() -> None:
    # (0.6-0.5) ln(0.6/0.5) + (0.4-0.5) ln(0.4/0.5)
    expected = 0.1 * math.log(1.2) - 0.1 * math.log(0.8)
    assert psi([50, 50], [60, 40]) == pytest.approx(expected, rel=1e-12)


def test_psi_floors_empty_bins() -> None:
    value = psi([100, 0], [50, 50])
    assert math.isfinite(value)
    assert value > 1.0


def test_jensen_shannon_matches_scipy() -> None:
    a, b = [5, 9, 13, 1], [7, 2, 8, 20]
    assert jensen_shannon(a, b) == pytest.approx(jensenshannon(a, b, base=2), rel=1e-12)
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)


def test_chi_square_matches_scipy_contingency() -> None:
    a, b = [120, 80, 50, 0], [90, 100, 60, 10]
    statistic, pvalue = chi_square(a, b)
    reference = chi2_contingency([a, b], correction=False)
    assert statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert pvalue == pytest.approx(reference.pvalue, rel=1e-12)
    # A bin empty on both sides does not count as a degree of freedom.
    assert chi_square([*a, 0], [*b, 0]) == (statistic, pvalue)


def test_degenerate_inputs() -> None:
    assert chi_square([0, 0], [1, 2]) == (0.0, 1.0)
    assert chi_square([5, 0], [3, 0]) == (0.0, 1.0)
    assert ks_binned([0, 0], [1, 1]) == (0.0, 1.0)
    assert wasserstein_binned([1], [1], [0.0], 0.0) == 0.0
    assert psi([0, 0], [0, 0]) == 0.0


def test_binned_ks_and_wasserstein_track_exact_values() -> None:
    rng = random.Random(3)
    reference_values = [rng.gauss(0, 1) for _ in range(5000)]
    window = [rng.gauss(0.5, 1) for _ in range(1000)]
    ref = build_feature_reference("numeric", reference_values)
    assert isinstance(ref, NumericReference)
    bins = [0] * len(ref.counts)
    for value in window:
        bins[ref.bin_of(value)] += 1
    d, p = ks_binned(ref.counts, bins)
    exact = ks_2samp(reference_values, window)
    assert d <= exact.statistic + 1e-12  # binning can only hide differences
    assert d == pytest.approx(exact.statistic, abs=0.02)  # one percentile of resolution
    assert p < 1e-10
    w = wasserstein_binned(ref.counts, bins, ref.widths, ref.std)
    assert w == pytest.approx(0.5, abs=0.08)  # a 0.5 sd mean shift


def test_ks_pvalue_is_the_asymptotic_kolmogorov_tail_of_scipy() -> None:
    rng = random.Random(8)
    for _ in range(50):
        reference = [rng.randint(0, 200) for _ in range(100)]
        current = [rng.randint(0, 20) for _ in range(100)]
        d, p = ks_binned(reference, current)
        n, m = sum(reference), sum(current)
        assert p == pytest.approx(float(kolmogorov(math.sqrt(n * m / (n + m)) * d)), rel=1e-12)
