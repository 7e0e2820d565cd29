"""The compiled core against its references: scipy for distributions, river for detectors.

River's detector tests feed seeded streams and assert detection indices; these do the same for
our ADWIN and HDDM_A, and check p-values against scipy to 1e-12 (relative).
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import drift
from scipy.special import kolmogorov
from scipy.stats import chi2

from stream_monitor import _native
from stream_monitor._native import Adwin, Hddma, LogHistogram
from stream_monitor.monitor.accumulators import CategoricalAccumulator
from stream_monitor.monitor.reference import (
    CategoricalReference,
    build_feature_reference,
    category_of,
)
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
    values[10] = math.nan  # skipped, as the Python detector wrapper skips it
    values[7_995] = 1e300  # clamped to 1e9 standardised
    expected_values = [min(max((v - 3.0) * 0.5, -1e9), 1e9) for v in values if not math.isnan(v)]
    positions = [i for i, v in enumerate(values) if not math.isnan(v)]
    expected = [positions[i] for i in Adwin(1e-6, 32).update_many(expected_values)]
    assert Adwin(1e-6, 32).update_standardised(values, 3.0, 0.5) == expected
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
    with pytest.raises(ValueError, match=r"state version 9, this build reads 1.*start fresh"):
        fresh.__setstate__(bytes([9]) + state[1:])
    with pytest.raises(ValueError, match="truncated"):
        fresh.__setstate__(state[:-5])
    with pytest.raises(ValueError, match="trailing bytes"):
        fresh.__setstate__(state + b"\0")
    with pytest.raises(ValueError, match="truncated"):
        Hddma().__setstate__(bytes([1, 0]))


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


category_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([1.0, 2.5, math.nan, math.inf, -0.0]),
    st.sampled_from(["a", "b", "c", "d", "rare", "new", "1", "true"]),
    st.just([1]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(category_values, max_size=80))
def test_categorical_counts_follow_the_category_rules(column: list[Any]) -> None:
    reference = build_feature_reference("categorical", ["a"] * 5 + ["b"] * 3 + ["1"] * 2 + ["rare"])
    assert isinstance(reference, CategoricalReference)
    accumulator = CategoricalAccumulator(reference)
    accumulator.add_many(column[:30])
    accumulator.add_many(column[30:])
    expected_bins = [0] * (len(reference.counts) + 1)
    missing = non_finite = invalid = n = unseen = 0
    for value in column:  # the rules, written out: categories as reference.category_of says
        if value is None:
            missing += 1
        elif type(value) is float and not math.isfinite(value):
            non_finite += 1
        elif (category := category_of(value)) is None:
            invalid += 1
        else:
            n += 1
            if category in reference.index:
                expected_bins[reference.index[category]] += 1
            elif category in reference.known:
                expected_bins[-2] += 1
            else:
                expected_bins[-1] += 1
                unseen += 1
    assert list(accumulator.bins) == expected_bins
    assert (accumulator.missing, accumulator.non_finite, accumulator.invalid) == (
        missing,
        non_finite,
        invalid,
    )
    assert (accumulator.n, accumulator.unseen) == (n, unseen)


def test_category_arguments_come_together() -> None:
    with pytest.raises(ValueError, match="come together"):
        _native.count_categories(["a"], {"a": 0}, None, None)
