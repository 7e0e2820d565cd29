"""MonitorSet housekeeping: handing freed memory back to the operating system."""

from __future__ import annotations

import gc

import pytest

from stream_monitor.config.models import ModelSpec
from stream_monitor.devtools.bench.workload import reference_events
from stream_monitor.events import PredictionEvent
from stream_monitor.events.codec import EventCodec
from stream_monitor.monitor import registry
from stream_monitor.runtime.outputs import process_batch

T0 = 1_795_800_000_000


@pytest.fixture
def trims(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[float]]:
    """The trims made (glibc's call replaced) and the clock they read (starts at 100 s)."""
    made: list[int] = []
    clock = [100.0]
    monkeypatch.setattr(registry, "_malloc_trim", lambda: made.append)
    monkeypatch.setattr(registry.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(registry, "_trims", registry._Trims())
    return made, clock


def test_the_heap_is_trimmed_after_freeing_batches_at_most_once_a_second(
    trims: tuple[list[int], list[float]],
) -> None:
    made, clock = trims

    def after_batch(at: float, *, freed: bool) -> int:
        clock[0] = at
        registry.release_memory(freed=freed)
        return len(made)

    assert after_batch(100.0, freed=False) == 0  # nothing freed: nothing to trim
    assert after_batch(100.1, freed=True) == 1
    assert after_batch(100.5, freed=True) == 1  # too soon: put off
    assert after_batch(100.9, freed=False) == 1
    assert after_batch(101.2, freed=False) == 2  # the put-off trim, after a later batch
    assert after_batch(105.0, freed=False) == 2
    assert made == [0, 0]


def test_without_glibc_nothing_is_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_malloc_trim", lambda: None)
    monkeypatch.setattr(registry, "_trims", registry._Trims())
    registry.release_memory(freed=True)
    assert registry._trims.due is False  # done, as far as this platform goes


def test_every_batch_gets_the_heap_trimmed_by_a_later_call(
    trims: tuple[list[int], list[float]],
) -> None:
    made, clock = trims
    spec = ModelSpec(warmup_events=10, window={"kind": "count", "events": 10})
    monitors = registry.MonitorSet({}, spec)
    events = [
        PredictionEvent(
            event_id=f"e{i}",
            model_id="m",
            timestamp=T0 + i,
            features={"x": float(i % 7)},
            prediction=i % 2,
        )
        for i in range(30)
    ]
    assert not registry._trims.due
    assert monitors.update_batch(events[:5]) == []  # warming up: its decoded columns freed
    assert registry._trims.due
    assert made == []  # trimmed for no earlier batch: there was none
    assert monitors.update_batch(events[5:30])  # the warm-up ends, windows close
    assert made == [0]  # for the first batch, before this one ran
    assert registry._trims.due  # and this one's is due
    clock[0] = 100.5
    later = events[-1].model_copy(update={"event_id": "e30", "timestamp": T0 + 30})
    monitors.update_batch([later])
    assert made == [0]  # too soon: put off
    clock[0] = 102.0
    registry.release_memory()  # the worker's loop, between batches
    assert made == [0, 0]
    assert not registry._trims.due


def test_models_not_listed_are_capped_per_set_and_their_events_refused_by_name() -> None:
    spec = ModelSpec(warmup_events=10)
    monitors = registry.MonitorSet({"listed": spec}, spec, max_unlisted_models=2)
    events = [
        PredictionEvent(
            event_id=f"e{i}", model_id=model, timestamp=T0 + i, features={"x": 1.0}, prediction=0
        )
        for i, model in enumerate(["a", "b", "c", "listed", "a", "c"])
    ]
    batch = registry.decode_batch([registry.encode_for_core(e) for e in events], trusted=True)
    admitted, refused = monitors.admit(batch)
    assert [m for m, _ in admitted] == ["a", "b", "listed"]
    assert [(i, e.field) for i, e in refused] == [(2, "model_id"), (5, "model_id")]
    assert "'c'" in str(refused[0][1])
    assert "monitoring.max_unlisted_models" in refused[0][1].reason
    restored = registry.MonitorSet({"listed": spec}, spec, max_unlisted_models=2)
    restored.restore(monitors.snapshot())
    with pytest.raises(registry.TooManyModelsError):
        restored.monitor("d")  # the restored set counts its unlisted models too
    assert restored.monitor("listed") is restored.monitors["listed"]


def test_a_models_state_is_measured_by_part_and_its_detectors_grow_with_the_log_of_events() -> None:
    import random

    import orjson

    from stream_monitor._native import decode_batch
    from stream_monitor.monitor import ModelMonitor

    rng = random.Random(4)
    joint_on = {"multivariate": {"enabled": True}}
    monitor = ModelMonitor(
        "m", ModelSpec.model_validate({"warmup_events": 1_000, "drift": joint_on})
    )

    def feed(start: int, stop: int) -> dict[str, int]:
        for first in range(start, stop, 2_000):
            batch = [
                orjson.dumps(
                    {
                        "event_id": f"e{i}",
                        "model_id": "m",
                        "timestamp": T0 + i,
                        "features": {f"x{j}": rng.gauss(0, 1) for j in range(3)},
                        "prediction": 1,
                        "score": rng.random(),
                        "latency_ms": rng.uniform(1.0, 2.0),
                    }
                )
                for i in range(first, min(first + 2_000, stop))
            ]
            monitor.update_native(decode_batch(batch), list(range(len(batch))))
        return dict(monitor.core.footprint())

    early = feed(0, 5_500)
    assert set(early) == {
        "edges", "references", "detectors", "windows", "sketches", "joint", "names", "other"
    }  # fmt: skip
    # three numeric features: their means and 1/sd (8 bytes each), slots (4 bytes), the one
    # component discarded (3 x 8 bytes) and 3 pairs' correlations (4 bytes each); the open
    # window's 3 sums and 6 products (8 bytes each): an allocation of each list
    reference = (3 * 8 + 16) * 3 + (3 * 4 + 16) * 2
    assert early["joint"] == reference + (3 * 8 + 16) + (6 * 8 + 16)
    # three features and the score, each with 99 percentile edges of 8 bytes (one allocation)
    assert early["edges"] == 4 * (99 * 4 + 16)  # f32 edges: the reference rounds them so
    # latencies between 1 and 2 ms: a row of 36 one-byte buckets (no lags: no record times)
    assert early["sketches"] <= 36 + 16
    late = feed(5_500, 69_000)
    # ADWIN keeps rows of at most 5 buckets of 2^i values: 16x the events, a few more rows
    assert early["detectors"] < late["detectors"] < 1.5 * early["detectors"]
    assert late["edges"] == early["edges"]


def test_windows_alerts_and_segments_leave_no_cyclic_garbage() -> None:
    # The worker freezes its set-up objects and collects young objects rarely (see
    # runtime.worker.steady_collector): sound only while the monitors free what they make by
    # reference counting alone.
    spec = ModelSpec.model_validate(
        {
            "warmup_events": 300,
            "window": {"kind": "count", "events": 300},
            "segments": {"by": ["channel"], "min_events": 50},
        }
    )
    monitors = registry.MonitorSet({}, spec)
    codec = EventCodec()
    calm = reference_events(6_000, models=2)
    shifted = reference_events(3_000, models=2, start=6_000, shift=3.0)
    for start in range(0, 3_000, 250):  # the warm-ups, as they come
        process_batch(codec, monitors, calm[start : start + 250], labels=False)
    gc.collect()
    gc.disable()
    try:
        outputs = []
        for events in (calm[3_000:], shifted):
            for start in range(0, len(events), 250):
                outputs += process_batch(
                    codec, monitors, events[start : start + 250], labels=False
                ).outputs
        assert any(o.segment == "channel=web" for o in outputs)
        assert any(getattr(o, "status", None) == "firing" for o in outputs)
        del outputs
        assert gc.collect() == 0
    finally:
        gc.enable()
