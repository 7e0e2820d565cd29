"""Performance metrics per window against direct computation."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_monitor._native import decode_batch
from stream_monitor.config.models import ModelSpec
from stream_monitor.events import PredictionEvent
from stream_monitor.monitor.encoding import encode_for_core
from stream_monitor.monitor.outcomes import Outcomes
from stream_monitor.monitor.performance import (
    BinaryPerformance,
    MulticlassPerformance,
    RegressionPerformance,
    label_key,
    label_keys,
    make_performance,
)
from stream_monitor.monitor.runs import LazyRunColumns


def test_label_key_unifies_binary_spellings() -> None:
    assert {label_key(v) for v in (True, 1, 1.0, "true", "TRUE")} == {"1"}
    assert {label_key(v) for v in (False, 0, "false")} == {"0"}
    assert label_key("cat") == "cat"
    assert label_key(None) is None


def test_binary_counts_and_metrics() -> None:
    perf = BinaryPerformance("1")
    pairs = [(1, 1), (1, 0), (0, 0), (0, 1), (1, 1), (0, 0), (True, "true")]
    wrong = [perf.add(p, None, None, y) for p, y in pairs]
    assert wrong == [False, True, False, True, False, False, False]
    assert (perf.tp, perf.fp, perf.tn, perf.fn) == (3, 1, 2, 1)
    metrics = perf.metrics()
    assert metrics["accuracy"] == pytest.approx(5 / 7)
    assert metrics["precision"] == pytest.approx(3 / 4)
    assert metrics["recall"] == pytest.approx(3 / 4)
    assert metrics["f1"] == pytest.approx(3 / 4)
    assert metrics["roc_auc"] is None  # no scores
    assert metrics["log_loss"] is None


def test_roc_auc_and_log_loss_from_scores() -> None:
    rng = random.Random(2)
    perf = BinaryPerformance("1")
    rows = []
    for _ in range(4000):
        y = int(rng.random() < 0.3)
        score = min(max(rng.gauss(0.65 if y else 0.4, 0.15), 0.0), 1.0)
        rows.append((score, y))
        perf.add(int(score > 0.5), score, None, y)
    positives = [s for s, y in rows if y]
    negatives = [s for s, y in rows if not y]
    exact = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives) / (
        len(positives) * len(negatives)
    )
    assert perf.roc_auc() == pytest.approx(exact, abs=0.005)  # 100 score bins
    expected_loss = -sum(
        math.log(min(max(s, 1e-15), 1 - 1e-15)) if y else math.log(min(max(1 - s, 1e-15), 1))
        for s, y in rows
    ) / len(rows)
    assert perf.metrics()["log_loss"] == pytest.approx(expected_loss, rel=1e-9)


def test_multiclass_macro_and_per_class() -> None:
    perf = make_performance("multiclass_classification", "1")
    assert isinstance(perf, MulticlassPerformance)
    data = [("a", "a"), ("a", "b"), ("b", "b"), ("c", "c"), ("c", "a")]
    for prediction, label in data:
        perf.add(prediction, None, {"a": 0.5, "b": 0.3, "c": 0.2}, label)
    metrics = perf.metrics()
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    # per class: a: tp1 fp1 fn1 -> f1 .5; b: tp1 fp0 fn1 -> 2/3; c: tp1 fp0 fn1 -> 2/3
    assert metrics["f1[a]"] == pytest.approx(0.5)
    assert metrics["f1[b]"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)
    assert metrics["log_loss"] == pytest.approx(
        -(math.log(0.5) + math.log(0.3) + math.log(0.3) + math.log(0.2) + math.log(0.5)) / 5
    )


def test_multiclass_pools_rare_classes() -> None:
    perf = MulticlassPerformance()
    for i in range(80):
        perf.add(f"c{i}", None, None, f"c{i}")
    assert len([k for k in perf.metrics() if k.startswith("f1[")]) == 51  # 50 + <other>


def test_regression_metrics_and_bad_values() -> None:
    perf = RegressionPerformance()
    for prediction, label in [(1.0, 2.0), (3.0, 3.0), (5.0, 2.0)]:
        assert perf.add(prediction, None, None, label) is False
    assert perf.add("x", None, None, 1.0) is True
    assert perf.add(True, None, None, 1.0) is True
    assert perf.add(float("inf"), None, None, 1.0) is True
    metrics = perf.metrics()
    assert metrics["mae"] == pytest.approx(4 / 3)
    assert metrics["rmse"] == pytest.approx(math.sqrt(10 / 3))
    labels = [2.0, 3.0, 2.0]
    mean = sum(labels) / 3
    assert metrics["r2"] == pytest.approx(1 - 10 / sum((y - mean) ** 2 for y in labels))
    assert RegressionPerformance().metrics() == {"mae": None, "rmse": None, "r2": None}


def test_rolling_mean_keeps_the_latest_values_exactly() -> None:
    from stream_monitor.monitor.rolling import RollingMean

    rolling = RollingMean(3)
    assert rolling.get() is None
    for value in (1.0, 0.0, 1.0):
        rolling.update(value)
    assert rolling.get() == pytest.approx(2 / 3)
    rolling.update(0.0)  # drops the first 1.0
    assert rolling.get() == pytest.approx(1 / 3)
    for _ in range(10_000):
        rolling.update(0.1)
    assert rolling.get() == 0.1 or rolling.get() == pytest.approx(0.1, abs=1e-15)


@pytest.mark.parametrize("chunk", [1, 3, 10, 250])
def test_rolling_mean_many_at_once_is_one_by_one(chunk: int) -> None:
    import random

    from stream_monitor.monitor.rolling import RollingMean

    rng = random.Random(8)
    values = [rng.random() * 10 for _ in range(700)]
    single, batched = RollingMean(64), RollingMean(64)
    for start in range(0, len(values), chunk):
        for value in values[start : start + chunk]:
            single.update(value)
        batched.update_many(values[start : start + chunk])
        assert (batched.get(), batched.count, batched.position) == (
            single.get(),
            single.count,
            single.position,
        )


@given(
    st.lists(st.booleans(), max_size=300),
    st.integers(1, 70),
    st.lists(st.integers(1, 40), min_size=1, max_size=5),
)
def test_rolling_hits_are_the_rolling_mean_of_ones_and_zeros(
    hits: list[bool], size: int, chunks: list[int]
) -> None:
    from stream_monitor.monitor.rolling import RollingHits, RollingMean

    expected, rolling, start = RollingMean(size), RollingHits(size), 0
    while start < len(hits):
        chunk = hits[start : start + chunks[start % len(chunks)]]
        for hit in chunk:
            expected.update(float(hit))
        if len(chunk) == 1:
            rolling.update(chunk[0])
        else:
            rolling.update_many(iter(chunk))
        start += len(chunk)
        assert (rolling.get(), rolling.count, rolling.position) == (
            expected.get(),
            expected.count,
            expected.position,
        )
    assert len(rolling.bits) == (size + 7) // 8  # a bit a prediction


class_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 0.0, -0.0, 1.0, 2.5, math.nan, math.inf, 1e16]),
    st.floats(),
    st.sampled_from(["1", "0", "TRUE", "False", "tRuE", "yes", "İ", "true "]),
    st.text(max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(class_values, max_size=40))
def test_native_label_keys_are_label_key_of_each_value(values: list[Any]) -> None:
    assert label_keys(values) == [label_key(v) for v in values]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0, 1, True, False, "1", "yes", None]),
            st.sampled_from([0, 1, True, "0", "true", 2]),
            st.none() | st.floats(-0.5, 1.5) | st.sampled_from([math.nan, -0.0, 1.0, 0.999999]),
        ),
        max_size=60,
    )
)
def test_binary_counts_at_once_equal_one_by_one(rows: list[tuple[Any, Any, Any]]) -> None:
    predictions = [p for p, _, _ in rows]
    labels = [y for _, y, _ in rows]
    scores = [s for _, _, s in rows]
    single, batched = BinaryPerformance("1"), BinaryPerformance("1")
    expected = [
        single.add(p, s, None, y) for p, y, s in zip(predictions, labels, scores, strict=True)
    ]
    got = batched.add_many(predictions, scores, [None] * len(rows), labels)
    assert got == expected
    assert (batched.tp, batched.fp, batched.fn, batched.tn) == (
        single.tp,
        single.fp,
        single.fn,
        single.tn,
    )
    assert list(batched.pos_scores) == list(single.pos_scores)
    assert list(batched.neg_scores) == list(single.neg_scores)
    assert batched.log_loss_sum == single.log_loss_sum
    assert batched.log_loss_sq == single.log_loss_sq
    assert batched.log_loss_n == single.log_loss_n


@pytest.mark.parametrize("kind", ["hits", "mean"])
def test_updating_a_rolling_view_leaves_no_new_object_behind(kind: str) -> None:
    """Counters past 256 are new int objects in attributes; made among a batch's temporaries
    (many windows' summaries), one of them per model kept whole arenas of Python's allocator
    resident (114 MB instead of 58 MB for 1,000 models just after their windows closed)."""
    import gc
    import tracemalloc

    from stream_monitor.monitor import performance
    from stream_monitor.monitor.rolling import RollingHits, RollingMean

    rolling = RollingHits(1_000) if kind == "hits" else RollingMean(1_000)
    rolling.update_many([1.5] * 700)  # position, count and total all past the small ints
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        rolling.update_many([1.0, 0.0, 1.0])
        rolling.update(1.0)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    left = [
        stat
        for stat in after.compare_to(before, "filename")
        if stat.size_diff > 0 and stat.traceback[0].filename == performance.__file__
    ]
    assert left == []
    assert (rolling.position, rolling.count) == (704, 704)


def test_rolling_bits_refuse_a_ring_too_small() -> None:
    from stream_monitor._native import roll_bits

    assert roll_bits(bytearray(1), 6, 8, [True, True, False]) == (1, 2, 3)
    for bits, position, size in ((bytearray(1), 0, 9), (bytearray(2), 9, 9), (bytearray(1), 0, 0)):
        with pytest.raises(ValueError, match="too small"):
            roll_bits(bits, position, size, [True])


def _labelled_runs(
    rows: list[tuple[Any, Any, float | None]], cuts: list[int], *, general: bool
) -> tuple[Outcomes, list[list[tuple[int, list[str]]]]]:
    """Outcomes of a binary classifier (its reference known) after ``rows`` (prediction, label,
    score), every one labelled in its event, as runs cut at ``cuts`` counting in two windows
    at once (hopping); ``general``: through the columns, not the native labelled path."""
    spec = ModelSpec.model_validate({"performance": {"detectors": ["hddm_a", "ddm"]}})
    outcomes = Outcomes(spec, {"accuracy": 0.5})
    if general:  # the path of runs with events that wait for their label
        outcomes._labelled_run = lambda run, keys: None  # type: ignore[method-assign]
    events = [
        encode_for_core(
            PredictionEvent(
                event_id=f"e{i}",
                model_id="m",
                timestamp=1_795_800_000_000 + i,
                features={},
                prediction=prediction,
                score=score,
                label=label,
            )
        )
        for i, (prediction, label, score) in enumerate(rows)
    ]
    batch = decode_batch(events, trusted=True)
    fired = []
    bounds = [0, *sorted({cut for cut in cuts if 0 < cut < len(rows)}), len(rows)]
    for start, stop in itertools.pairwise(bounds):
        run = LazyRunColumns(batch, list(range(start, stop)))
        fired.append(outcomes.on_run(run, (7, 8)))
    return outcomes, fired


def _state(outcomes: Outcomes) -> list[Any]:
    state: list[Any] = [outcomes.rolling.get(), bytes(outcomes.rolling.bits)]
    for key in (7, 8):
        outcome = outcomes.windows[key]
        performance = outcome.performance
        assert isinstance(performance, BinaryPerformance)
        state += [
            (performance.tp, performance.fp, performance.fn, performance.tn),
            list(performance.scores),
            performance.log_loss_sum,
            performance.log_loss_sq,
            performance.log_loss_n,
            outcome.labelled,
            (outcome.delays.count, outcome.delays.zeros),
            None if outcome.scored is None else list(outcome.scored),
        ]
    return state


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0, 1, True, "1", "true", 2, "cat"]),
            st.sampled_from([0, 1, True, False, "0", "TRUE", "yes", 2.0, 0.0]),
            st.none() | st.floats(-0.5, 1.5),
        ),
        min_size=1,
        max_size=80,
    ),
    st.lists(st.integers(0, 80), max_size=4),
)
def test_labelled_runs_count_natively_as_through_the_columns(
    rows: list[tuple[Any, Any, float | None]], cuts: list[int]
) -> None:
    native, native_fired = _labelled_runs(rows, cuts, general=False)
    general, general_fired = _labelled_runs(rows, cuts, general=True)
    assert _state(native) == _state(general)
    assert native_fired == general_fired
    assert native.windows[7].labelled == len(rows)


def test_a_run_with_an_unlabelled_event_takes_the_general_path() -> None:
    rows: list[tuple[Any, Any, float | None]] = [(1, 1, 0.9), (0, 1, 0.2)]
    outcomes, _ = _labelled_runs(rows, [], general=False)
    spec = ModelSpec.model_validate({})
    waiting = Outcomes(spec, {"accuracy": 0.5})
    event = PredictionEvent(
        event_id="u", model_id="m", timestamp=1_795_800_000_000, features={}, prediction=1
    )
    batch = decode_batch([encode_for_core(event)], trusted=True)
    assert batch.binary_labelled([0], "1", [], [], []) is None
    waiting.on_run(LazyRunColumns(batch, [0]), (3,))
    assert waiting.windows[3].pending == 1
    assert waiting.windows[3].scored is None  # no score: no histogram, as before
    assert outcomes.windows[7].labelled == 2


def test_standard_errors_are_those_of_the_terms() -> None:
    """Log loss and MAE as means of their terms, RMSE by the delta method: against numpy."""
    rng = np.random.default_rng(4)
    binary = BinaryPerformance("1")
    labels = rng.integers(0, 2, size=500)
    scores = rng.uniform(0.01, 0.99, size=500)
    for y, s in zip(labels, scores, strict=True):
        binary.add(int(s > 0.5), float(s), None, int(y))
    terms = -np.log(np.where(labels == 1, scores, 1 - scores))
    error = binary.standard_error
    assert error("log_loss") == pytest.approx(terms.std() / np.sqrt(500), rel=1e-9)
    assert 0 < (error("roc_auc") or 0) < 0.05
    assert 0 < (error("f1") or 0) < 0.05
    assert error("accuracy") is None  # a proportion: tested as one
    regression = RegressionPerformance()
    truth = rng.normal(size=400)
    guess = truth + rng.standard_t(5, size=400)
    for p, y in zip(guess, truth, strict=True):
        regression.add(float(p), None, None, float(y))
    e = guess - truth
    error = regression.standard_error
    assert error("mae") == pytest.approx(np.abs(e).std() / np.sqrt(400), rel=1e-9)
    rmse = np.sqrt((e**2).mean())
    assert error("rmse") == pytest.approx((e**2).std() / np.sqrt(400) / (2 * rmse), rel=1e-9)
    assert error("r2") == pytest.approx((e**2).std() / np.sqrt(400) / truth.var(), rel=1e-9)
    assert RegressionPerformance().standard_error("mae") is None


def test_multiclass_macro_scores_have_standard_errors_from_their_classes() -> None:
    rng = random.Random(6)
    performance = MulticlassPerformance()
    for _ in range(3_000):
        label = rng.choice("abc")
        prediction = label if rng.random() < 0.7 else rng.choice("abc")
        performance.add(prediction, None, {label: 0.6}, label)
    error = performance.standard_error
    assert all(error(m) is not None for m in ("precision", "recall", "f1"))
    assert error("accuracy") is None
    assert error("log_loss") == 0.0  # every term is -ln 0.6
    # three classes of about 1,000: about the binomial error of one class over sqrt 3
    assert error("precision") == pytest.approx((0.8 * 0.2 / 1_000) ** 0.5 / 3**0.5, rel=0.2)
    assert MulticlassPerformance().standard_error("f1") is None


def test_the_rule_tests_a_metric_against_its_standard_errors() -> None:
    from stream_monitor.monitor.rules import performance_check

    spec = ModelSpec.model_validate({"performance": {"metric": "log_loss", "warning_drop": 0.05}})
    reference = {"log_loss": 0.50, "labelled": 1000.0}
    noisy = performance_check(spec, {"log_loss": 0.56}, 1000, reference, (0.03, None))
    assert noisy is not None
    assert noisy.severity is None  # 0.06 worse is 2 standard errors: not significant
    assert noisy.evidence["p_value"] == pytest.approx(0.02275, rel=1e-3)
    real = performance_check(spec, {"log_loss": 0.70}, 1000, reference, (0.03, 0.02))
    assert real is not None
    assert real.severity == "critical"  # 0.20 worse, 5.5 of sqrt(0.03^2 + 0.02^2)
    # Without a standard error, a proportion is still tested as one (binary precision).
    precise = ModelSpec.model_validate({"performance": {"metric": "precision"}})
    binary = performance_check(precise, {"precision": 0.74}, 1000, {"precision": 0.8})
    assert binary is not None
    assert binary.evidence["p_value"] < 1e-5  # binomial: 0.06 below 0.8 at n = 1,000
    macro = performance_check(precise, {"precision": 0.74}, 1000, {"precision": 0.8}, (0.03, None))
    assert macro is not None
    assert macro.severity is None  # a macro average's own error is wider
