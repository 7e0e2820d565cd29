"""Our detectors (the compiled ADWIN and HDDM_A included) signal exactly where river's do."""

from __future__ import annotations

import random

import numpy as np
import pytest
from river import drift

from stream_monitor._native import Adwin, Hddma
from stream_monitor.monitor.accumulators import NumericColumn
from stream_monitor.monitor.detectors import BlockErrorDetector, StandardisedDetector


def error_stream(seed: int) -> list[int]:
    rng = random.Random(seed)
    before, after = rng.uniform(0.05, 0.4), rng.uniform(0.3, 0.9)
    return [int(rng.random() < (before if i < 3_000 else after)) for i in range(9_000)]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("confidence", [1e-3, 1e-6])
def test_hddm_a_signals_where_rivers_does(seed: int, confidence: float) -> None:
    values = error_stream(seed)
    river = drift.binary.HDDMA(drift_confidence=confidence, warning_confidence=confidence * 5)
    expected = []
    for i, x in enumerate(values):
        river.update(x)
        if river.drift_detected:
            expected.append(i)
    ours = Hddma(confidence)
    got = ours.update_many(values[:1_234])
    got += [1_234 + i for i in ours.update_many(values[1_234:])]
    assert got == expected
    assert expected  # the stream does drift


def test_hddm_a_one_update_at_a_time() -> None:
    ours = Hddma(1e-3)
    flags = []
    for x in error_stream(1):
        ours.update(x)
        flags.append(ours.drift_detected)
    assert [i for i, f in enumerate(flags) if f] == Hddma(1e-3).update_many(error_stream(1))


@pytest.mark.parametrize("block", [1, 4])
def test_block_error_detector_batches_like_single_updates(block: int) -> None:
    values = [bool(x) for x in error_stream(2)]
    single = BlockErrorDetector("hddm_a", block)
    expected = [i for i, x in enumerate(values) if single.update(x)]
    batched = BlockErrorDetector("hddm_a", block)
    got = batched.update_many(values[:500]) + [500 + i for i in batched.update_many(values[500:])]
    assert got == expected
    assert expected


@pytest.mark.parametrize(("name", "block"), [("adwin", 1), ("adwin", 8), ("page_hinkley", 1)])
def test_standardised_detector_batches_like_single_updates(name: str, block: int) -> None:
    rng = random.Random(4)
    values = [rng.gauss(0 if i < 4_000 else 1.5, 1) for i in range(10_000)]
    single = StandardisedDetector(name, 0.002, 0.0, 1.0, block)
    expected = [i for i, x in enumerate(values) if single.update(x)]
    batched = StandardisedDetector(name, 0.002, 0.0, 1.0, block)
    got: list[int] = []
    for start in range(0, len(values), 333):
        got += [start + i for i in batched.update_many(np.array(values[start : start + 333]))]
    assert got == expected
    assert batched.detections == single.detections == len(expected) > 0


def test_values_beyond_the_float_range_are_clamped_alike() -> None:
    values = [0.0, 1e308, -1e308, 0.5] * 50
    single = StandardisedDetector("page_hinkley", 0.002, -1e308, 0.5)
    expected = [i for i, x in enumerate(values) if single.update(x)]
    batched = StandardisedDetector("page_hinkley", 0.002, -1e308, 0.5)
    assert batched.update_many(np.array(values)) == expected
    assert batched.detector._x_mean.get() == single.detector._x_mean.get()


@pytest.mark.parametrize("repeat", [1, 8])  # short runs in lists, long ones in numpy
def test_numeric_column_sorts_out_every_kind_of_value(repeat: int) -> None:
    column = NumericColumn([1.5, None, "x", True, float("nan"), float("inf"), 2, 10**400] * repeat)
    assert (column.missing, column.invalid, column.non_finite) == (repeat, repeat, 3 * repeat)
    assert list(column.values) == [1.5, 1.0, 2.0] * repeat
    assert [p % 8 for p in column.positions] == [0, 3, 6] * repeat
    values, positions = column.for_detectors()  # booleans are counted, not measured
    assert (list(values), [p % 8 for p in positions]) == ([1.5, 2.0] * repeat, [0, 6] * repeat)


@pytest.mark.parametrize("repeat", [1, 20])
def test_numeric_column_keeps_positions_of_finite_values(repeat: int) -> None:
    column = NumericColumn([1.0, float("-inf"), 3] * repeat)
    assert column.non_finite == repeat
    assert [p % 3 for p in column.positions] == [0, 2] * repeat
    assert list(column.for_detectors()[0]) == [1.0, 3.0] * repeat


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
@pytest.mark.parametrize(("delta", "clock"), [(0.002, 32), (1e-6, 32), (0.01, 1)])
def test_native_adwin_signals_where_rivers_does(chunk: int, delta: float, clock: int) -> None:
    rng = random.Random(5)
    values = [rng.gauss((i // 2_500) % 2 * 1.5, 1) for i in range(10_000)]  # three shifts
    river = drift.ADWIN(delta=delta, clock=clock)
    expected = []
    for i, x in enumerate(values):
        river.update(x)
        if river.drift_detected:
            expected.append(i)
    ours = Adwin(delta, clock)
    got: list[int] = []
    for start in range(0, len(values), chunk):
        got += [start + i for i in ours.update_many(values[start : start + chunk])]
        end = min(start + chunk, len(values)) - 1
        assert ours.drift_detected == (bool(got) and got[-1] == end)
    assert got == expected
    assert len(expected) >= 3
    assert (ours.width, ours.estimation) == (river.width, river.estimation)
    assert ours.update_many([]) == []
