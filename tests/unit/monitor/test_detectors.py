"""Our detectors (the compiled ADWIN and HDDM_A included) signal exactly where river's do."""

from __future__ import annotations

import math
import random

import pytest
from river import drift

from stream_monitor._native import Adwin, Hddma, SignalDetector
from stream_monitor.monitor.detectors import BlockErrorDetector


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


def _river(name: str, block: int) -> object:
    if name == "adwin":
        return drift.ADWIN(delta=0.002, clock=max(1, 32 // block))
    return drift.PageHinkley(min_instances=100, delta=0.05, threshold=50.0)


def _river_on_block_means(
    name: str, values: list[float], mean: float, std: float, block: int
) -> list[int]:
    """River's detector on standardised, clamped block means: the indices that end a block
    after which it signalled."""
    detector = _river(name, block)
    fired = []
    for end in range(block - 1, len(values), block):
        chunk = values[end - block + 1 : end + 1]
        x = ((sum(chunk, 0.0) / block) - mean) / std if std > 0 else sum(chunk, 0.0) / block - mean
        if math.isnan(x):
            continue
        detector.update(min(max(x, -1e9), 1e9))  # type: ignore[attr-defined]
        if detector.drift_detected:  # type: ignore[attr-defined]
            fired.append(end)
    return fired


@pytest.mark.parametrize(
    ("name", "block"), [("adwin", 1), ("adwin", 8), ("page_hinkley", 1), ("page_hinkley", 4)]
)
def test_native_signal_detector_signals_where_river_does(name: str, block: int) -> None:
    rng = random.Random(4)
    values = [rng.gauss(0 if i < 4_000 else 1.5, 1) for i in range(10_000)]
    expected = _river_on_block_means(name, values, 0.0, 1.0, block)
    single = SignalDetector(name, 0.002, 0.0, 1.0, block)
    assert [i for i, x in enumerate(values) if single.update(x)] == expected
    batched = SignalDetector(name, 0.002, 0.0, 1.0, block)
    got: list[int] = []
    for start in range(0, len(values), 333):
        got += [start + i for i in batched.update_many(values[start : start + 333])]
    assert got == expected
    assert batched.detections == single.detections == len(expected) > 0


def test_values_beyond_the_float_range_are_clamped_as_river_sees_them() -> None:
    values = [0.0, 1e308, -1e308, 0.5] * 50
    detector = SignalDetector("page_hinkley", 0.002, -1e308, 0.5)
    got = detector.update_many(values)
    river = drift.PageHinkley(min_instances=100, delta=0.05, threshold=50.0)
    expected = []
    for i, v in enumerate(values):
        x = (v - -1e308) * 2.0  # infinite for the large values: clamped to 1e9
        river.update(min(max(x, -1e9), 1e9) if math.isfinite(x) else math.copysign(1e9, x))
        if river.drift_detected:
            expected.append(i)
    assert got == expected


def test_unknown_native_detectors_are_refused() -> None:
    with pytest.raises(ValueError, match='no native detector "kswin"'):
        SignalDetector("kswin", 0.002, 0.0, 1.0)


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
