"""Reference profiles: bins, frequencies, serialisation and clear errors."""

from __future__ import annotations

import random

import pytest

from stream_monitor.monitor.reference import (
    PROFILE_FORMAT,
    CategoricalReference,
    NumericReference,
    ReferenceError,
    ReferenceProfile,
    build_feature_reference,
    category_of,
    infer_type,
    numeric_value,
    profile_from_rows,
)


def test_numeric_reference_bins_hold_every_value() -> None:
    rng = random.Random(1)
    values = [rng.gauss(10, 2) for _ in range(2000)] + [None] * 500
    ref = build_feature_reference("numeric", values)
    assert isinstance(ref, NumericReference)
    assert sum(ref.counts) == 2000
    assert len(ref.counts) == len(ref.edges) + 1 == 100
    assert sum(ref.coarse_counts) == 2000
    assert len(ref.coarse_counts) == 10
    assert all(190 <= c <= 210 for c in ref.coarse_counts)  # deciles
    assert ref.missing_rate == pytest.approx(0.2)
    assert ref.sample_size == 2500
    assert ref.mean == pytest.approx(10, abs=0.2)
    assert ref.std == pytest.approx(2, abs=0.1)
    assert ref.quantiles["p50"] == pytest.approx(10, abs=0.2)
    assert ref.minimum < ref.quantiles["p01"] < ref.quantiles["p99"] < ref.maximum


def test_discrete_values_collapse_edges_consistently() -> None:
    ref = build_feature_reference("numeric", [1, 1, 1, 2, 2, 3] * 100)
    assert isinstance(ref, NumericReference)
    assert list(ref.edges) == sorted(set(ref.edges))
    assert sum(ref.counts) == 600
    assert sum(ref.coarse_counts) == 600
    assert ref.counts[ref.bin_of(1.0)] == 300


def test_an_atom_gets_a_bin_of_its_own() -> None:
    """95% of the values at 1.0 (a default), the rest spread: 1.0 is alone in its bin, so a
    default that moves to 1.5 (or 0.999) is not counted as the default."""
    rng = random.Random(2)
    values = [1.0 if rng.random() < 0.95 else rng.gauss(5, 2) for _ in range(2_000)]
    ref = build_feature_reference("numeric", values)
    assert isinstance(ref, NumericReference)
    atom = ref.bin_of(1.0)
    assert ref.counts[atom] == values.count(1.0)
    assert ref.bin_of(1.5) != atom
    assert ref.bin_of(0.999) != atom
    assert list(ref.edges) == sorted(set(ref.edges))
    # an atom that is no f32 number (0.1) is isolated too, between the f32 numbers around it
    tenths = build_feature_reference("numeric", [0.1] * 500 + [rng.random() for _ in range(500)])
    assert isinstance(tenths, NumericReference)
    assert tenths.counts[tenths.bin_of(0.1)] == 500
    assert tenths.bin_of(0.1001) != tenths.bin_of(0.1)
    # a continuous feature has no atom: its edges are the percentiles alone
    smooth = build_feature_reference("numeric", [rng.gauss(0, 1) for _ in range(2_000)])
    assert isinstance(smooth, NumericReference)
    assert len(smooth.edges) == 99


def test_categorical_reference_top_other_and_known() -> None:
    values = ["a"] * 50 + ["b"] * 30 + [f"rare{i}" for i in range(60)] + [None] * 10
    ref = build_feature_reference("categorical", values)
    assert isinstance(ref, CategoricalReference)
    assert ref.categories[:2] == ("a", "b")
    assert len(ref.categories) == 50
    assert sum(ref.counts) == 140
    assert ref.counts[-1] == 12  # rare categories beyond the top 50
    assert "rare59" in ref.known
    assert ref.missing_rate == pytest.approx(10 / 150)


def test_no_usable_values_gives_no_reference() -> None:
    assert build_feature_reference("numeric", [None, "x"]) is None
    assert build_feature_reference("categorical", [None]) is None


def test_value_helpers() -> None:
    assert numeric_value(True) == 1.0
    assert numeric_value(float("nan")) is None
    assert numeric_value("3") is None
    assert category_of(True) == "true"
    assert category_of(3) == "3"
    assert category_of(None) is None
    assert category_of([1]) is None
    assert infer_type([1, 2.5, None]) == "numeric"
    assert infer_type([1, "a"]) == "categorical"
    assert infer_type([True, False]) == "categorical"
    assert infer_type([None]) == "categorical"


def rows() -> list[tuple[dict[str, object], float | None, int]]:
    rng = random.Random(5)
    return [
        ({"x": rng.gauss(0, 1), "c": rng.choice("xy"), "empty": None}, rng.random(), 1)
        for _ in range(500)
    ]


def test_profile_round_trip_and_stable_id() -> None:
    profile = profile_from_rows("m", {}, "binary_classification", rows())
    assert set(profile.features) == {"x", "c"}  # "empty" had no value to learn from
    assert profile.prediction_signal == "score"
    again = ReferenceProfile.from_json(profile.to_json())
    assert again.features == profile.features
    assert again.prediction == profile.prediction
    assert again.reference_id == profile.reference_id
    assert profile_from_rows("m", {}, "binary_classification", rows()).reference_id == (
        profile.reference_id
    )
    other = profile_from_rows("other", {}, "binary_classification", rows())
    assert other.reference_id != profile.reference_id


def test_prediction_signal_without_scores() -> None:
    data = [({"x": float(i)}, None, i % 3) for i in range(100)]
    classification = profile_from_rows("m", {}, "multiclass_classification", data)
    assert classification.prediction_signal == "prediction"
    assert classification.prediction is not None
    assert classification.prediction.kind == "categorical"
    regression = profile_from_rows("m", {"x": "numeric"}, "regression", data)
    assert regression.prediction is not None
    assert regression.prediction.kind == "numeric"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "is not JSON"),
        (b"[]", "is not 'stream-monitor.reference/1'"),
        (b'{"format": "other/9"}', "format 'other/9'"),
        (f'{{"format": "{PROFILE_FORMAT}"}}'.encode(), "field 'features' is missing or invalid"),
        (
            f'{{"format": "{PROFILE_FORMAT}", "features": {{"x": {{"type": "weird"}}}}}}'.encode(),
            "is missing or invalid",
        ),
    ],
)
def test_broken_profiles_are_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(ReferenceError, match=r"^ref\.json: "):
        ReferenceProfile.from_json(data, source="ref.json")
    with pytest.raises(ReferenceError) as info:
        ReferenceProfile.from_json(data, source="ref.json")
    assert message in str(info.value)
