"""The compiled core against its references: scipy for distributions, river for detectors.

River's detector tests feed seeded streams and assert detection indices; these do the same for
our ADWIN and HDDM_A, and check p-values against scipy to 1e-12 (relative).
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import drift
from scipy.special import kolmogorov
from scipy.stats import binom, chi2, norm

from stream_monitor import _native
from stream_monitor._native import Adwin, Hddma, LogHistogram, SignalDetector
from stream_monitor.monitor.snapshot import dump_state, load_state

REL = 1e-12


@pytest.mark.parametrize("df", [1, 2, 3, 9, 10, 31, 50, 51])
def test_chi2_survival_matches_scipy(df: int) -> None:
    points = np.concatenate([np.linspace(1e-3, 5, 120), np.geomspace(1e-2, 1_400, 250)])
    for x in points:
        expected = float(chi2.sf(x, df))
        if expected < 1e-300:  # beyond double precision for both
            continue
        assert _native.chi2_sf(float(x), df) == pytest.approx(expected, rel=REL), (x, df)


def test_chi2_survival_edges() -> None:
    assert _native.chi2_sf(0.0, 3) == 1.0
    assert _native.chi2_sf(-1.0, 3) == 1.0
    assert _native.chi2_sf(math.inf, 3) == 0.0
    assert _native.chi2_sf(1e7, 3) == 0.0
    assert math.isnan(_native.chi2_sf(math.nan, 3))
    assert math.isnan(_native.chi2_sf(1.0, 0))


def test_kolmogorov_survival_matches_scipy() -> None:
    for x in np.concatenate([np.linspace(1e-3, 3, 1_500), np.linspace(3, 18, 300)]):
        expected = float(kolmogorov(x))
        if expected < 1e-300:
            continue
        assert _native.kolmogorov_sf(float(x)) == pytest.approx(expected, rel=REL), x
    assert _native.kolmogorov_sf(0.0) == 1.0
    assert _native.kolmogorov_sf(-2.0) == 1.0


def test_statistics_refuse_counts_of_different_lengths() -> None:
    with pytest.raises(ValueError, match=r"differ in length \(2 and 3\)"):
        _native.psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="differ in length"):
        _native.wasserstein_binned([1, 2], [1, 2], [1.0], 1.0)


def _river_detections(detector: object, values: list[float]) -> list[int]:
    fired = []
    for i, x in enumerate(values):
        detector.update(x)  # type: ignore[attr-defined]
        if detector.drift_detected:  # type: ignore[attr-defined]
            fired.append(i)
    return fired


@pytest.mark.parametrize("seed", range(6))
def test_adwin_matches_river_on_seeded_streams(seed: int) -> None:
    rng = random.Random(seed)
    shift = rng.uniform(0.3, 1.5)
    values = [rng.gauss(shift if (i // 3_000) % 2 else 0.0, 1.0) for i in range(15_000)]
    for delta in (0.002, 1e-6):
        expected = _river_detections(drift.ADWIN(delta=delta), values)
        assert Adwin(delta, 32).update_many(values) == expected
        assert expected, "the stream shifts"


def test_adwin_standardised_feed_equals_feeding_standardised_values() -> None:
    rng = random.Random(11)
    values = [rng.gauss(5.0 if i > 4_000 else 3.0, 2.0) for i in range(8_000)]
    values[10] = math.nan  # skipped, as the core skips it
    values[7_995] = 1e300  # clamped to 1e9 standardised
    expected_values = [min(max((v - 3.0) * 0.5, -1e9), 1e9) for v in values if not math.isnan(v)]
    positions = [i for i, v in enumerate(values) if not math.isnan(v)]
    expected = [positions[i] for i in Adwin(1e-6, 32).update_many(expected_values)]
    # the core's detector of a signal with reference mean 3 and std 2 (scale 0.5)
    assert SignalDetector("adwin", 1e-6, 3.0, 2.0).update_many(values) == expected
    assert expected


def test_adwin_and_hddm_snapshots_continue_exactly() -> None:
    rng = random.Random(3)
    values = [rng.gauss(1.0 if i > 5_000 else 0.0, 1.0) for i in range(10_000)]
    errors = [float(rng.random() < (0.5 if i > 5_000 else 0.2)) for i in range(10_000)]
    adwin, hddm = Adwin(1e-6, 32), Hddma(1e-6)
    adwin.update_many(values[:4_321])
    hddm.update_many(errors[:4_321])
    restored = load_state(dump_state((adwin, hddm)))
    assert restored[0].update_many(values[4_321:]) == adwin.update_many(values[4_321:])
    assert restored[1].update_many(errors[4_321:]) == hddm.update_many(errors[4_321:])
    assert (restored[0].width, restored[0].estimation) == (adwin.width, adwin.estimation)


def test_native_state_of_another_version_or_truncated_is_refused() -> None:
    adwin = Adwin(0.002, 32)
    adwin.update_many([0.0, 1.0] * 100)
    state = adwin.__getstate__()
    fresh = load_state(dump_state(Adwin()))
    # version 1 kept each ADWIN bucket's variance; 9 is from a newer build
    for version in (1, 9):
        with pytest.raises(
            ValueError, match=rf"state version {version}, this build reads 2.*fresh"
        ):
            fresh.__setstate__(bytes([version]) + state[1:])
    with pytest.raises(ValueError, match="truncated"):
        fresh.__setstate__(state[:-5])
    with pytest.raises(ValueError, match="trailing bytes"):
        fresh.__setstate__(state + b"\0")
    with pytest.raises(ValueError, match="truncated"):
        Hddma().__setstate__(bytes([2, 0]))


@pytest.mark.parametrize(
    ("counts", "coarse_of", "message"),
    [
        ([1.5, 2.0], [0, 0], "counts must be whole numbers"),
        ([5e9, 2.0], [0, 0], "counts must be whole numbers from 0 to 4294967295"),
        ([1.0, 2.0, 3.0], [0, 0, 0], "counts, edges and the coarse map do not agree"),
        ([1.0, 2.0], [0, 300], "more than 256 coarse bins"),
    ],
)
def test_a_reference_that_does_not_hold_together_is_refused_naming_the_feature(
    counts: list[float], coarse_of: list[int], message: str
) -> None:
    core = _native.ModelCore(("count", 10), 10, [], ["adwin"], 1e-6, 1, [("x", "numeric")])
    reference = ("numeric", [0.0], counts, coarse_of, 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match=f'feature "x": numeric reference: {message}'):
        core.set_reference([("x", "numeric")], [reference], "score", None, [])
    wide = ("numeric", [0.0], [70_000.0, 1.0], [0, 1], 0.0, 1.0, 1.0)
    core.set_reference([("x", "numeric")], [wide], "score", None, [])  # wide counts are kept


def test_detector_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="delta 0 must be between 0 and 1"):
        Adwin(0.0)
    with pytest.raises(ValueError, match="drift_confidence 2 must be between 0 and 1"):
        Hddma(2.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1e12) | st.integers(-5, 10**9), max_size=300),
    st.floats(0, 1),
    st.integers(0, 300),
)
def test_log_histogram_quantile_is_within_two_percent_of_the_nearest_rank(
    values: list[float], q: float, cut: int
) -> None:
    sketch, left, right = LogHistogram(), LogHistogram(), LogHistogram()
    sketch.add_many(values)
    left.add_many(values[:cut])
    for value in values[cut:]:
        right.add(value)
    left.merge(right)
    assert left == sketch  # parts merge exactly
    assert load_state(dump_state(sketch)) == sketch
    if not values:
        assert sketch.quantile(q) is None
        assert sketch.percentiles() == {}
        return
    ordered = sorted(max(float(v), 0.0) for v in values)
    exact = ordered[max(1, math.ceil(q * len(ordered))) - 1]  # nearest rank
    got = sketch.quantile(q)
    assert got is not None
    assert exact / 1.02 <= got <= exact * 1.02 or (exact == 0.0 and got == 0.0)
    assert sketch.percentiles()["max"] == ordered[-1]


@pytest.mark.parametrize("n_max", [60, 1_000, 20_000])
def test_binomial_tails_match_scipy(n_max: int) -> None:
    rng = random.Random(n_max)
    for _ in range(1_500):
        n = rng.randint(1, n_max)
        p = rng.choice([1e-3, 1e-9, 0.01, 0.1, 0.4, 0.5, 0.9, 1 - 1e-9, rng.random()])
        k = rng.randint(-1, n)
        for ours, theirs in ((_native.binom_sf, binom.sf), (_native.binom_cdf, binom.cdf)):
            expected = float(theirs(k, n, p))
            if expected < 1e-200:  # the far tail: scipy's own accuracy is the limit there
                assert ours(k, n, p) < 1e-190
                continue
            assert ours(k, n, p) == pytest.approx(expected, rel=1e-9), (ours.__name__, k, n, p)


def test_normal_tail_matches_scipy() -> None:
    for x in np.linspace(-8, 37, 2_000):
        assert _native.norm_sf(float(x)) == pytest.approx(float(norm.sf(x)), rel=1e-12)
