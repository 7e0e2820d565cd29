"""A batch is counted column by column, yet gives exactly what event-by-event processing gives."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.config.models import ModelSpec
from stream_monitor.events import LabelEvent, PredictionEvent, encode_event
from stream_monitor.monitor import ModelMonitor, MonitorSet

from .streams import stream

DETECTORS = {"detectors": ["adwin", "page_hinkley"]}
ERRORS = {"reference_labels": 100, "min_labels": 30, "detectors": ["hddm_a", "ddm"]}
SPECS = {
    "count": {"warmup_events": 300, "window": {"kind": "count", "events": 250}},
    "tumbling": {
        "warmup_events": 300,
        "window": {"kind": "tumbling", "size": 30, "allowed_lateness": 4},
    },
    "hopping": {
        "warmup_events": 200,
        "window": {"kind": "hopping", "size": 40, "step": 20, "allowed_lateness": 2},
    },
}


def spec(kind: str) -> ModelSpec:
    return ModelSpec.model_validate({**SPECS[kind], "drift": DETECTORS, "performance": ERRORS})


def odd_stream(count: int = 2_400, seed: int = 3) -> list[PredictionEvent]:
    """Drift and worse predictions half way, bad values, late events, new model versions."""
    rng = random.Random(seed)
    events = []
    for i, event in enumerate(
        stream(count, seed=seed, step_ms=100, shift=lambda i: 3.0 if i > count // 2 else 0.0)
    ):
        features: dict[str, Any] = dict(event.features)
        roll = rng.random()
        if roll < 0.04:
            features["x1"] = None
        elif roll < 0.06:
            features["x1"] = "oops"
        elif roll < 0.08:
            features["x2"] = True
        elif roll < 0.1:
            features["x2"] = float("inf")
        elif roll < 0.12:
            del features["x0"]
        elif roll < 0.13:
            features["c0"] = 7
        wrong = 0.6 if i > count // 2 else 0.1
        truth = event.prediction if rng.random() > wrong else 1 - int(event.prediction)
        late = rng.random() < 0.03
        events.append(
            event.model_copy(
                update={
                    "features": features,
                    "label": truth if rng.random() < 0.7 else None,
                    # a new version, then two at once (versions change inside runs)
                    "model_version": "v1"
                    if i <= count * 0.7
                    else ("v2" if i <= count * 0.8 or rng.random() < 0.5 else "v3"),
                    "timestamp": event.timestamp - (rng.randrange(1_000, 9_000) if late else 0),
                    "latency_ms": None if rng.random() < 0.1 else event.latency_ms,
                }
            )
        )
    return events


EVENTS = odd_stream()


def late_labels(events: list[PredictionEvent]) -> list[LabelEvent]:
    return [
        LabelEvent(event_id=e.event_id, model_id=e.model_id, timestamp=e.timestamp + 500, label=1)
        for e in events
        if e.label is None and int(e.event_id[1:]) % 3 == 0
    ]


def run(monitor: ModelMonitor, sizes: list[int] | None = None) -> list[bytes]:
    """Blocks of 97 events, each followed by late labels; ``sizes`` batches each block."""
    out: list[Any] = []
    for chunk in chunked(EVENTS, [97] * 30):
        if sizes is None:
            for event in chunk:
                out += monitor.update(event)
        else:
            for batch in chunked(chunk, sizes):
                out += monitor.update_batch(batch)
        for label in late_labels(chunk):
            out += monitor.update_label(label)
        out += monitor.revisions()
    out += monitor.flush()
    return [encode_event(o) for o in out]


def chunked(events: list[PredictionEvent], sizes: list[int]) -> list[list[PredictionEvent]]:
    chunks, start = [], 0
    for size in sizes:
        chunks.append(events[start : start + size])
        start += size
    return [*chunks, events[start:]]


EXPECTED = {kind: run(ModelMonitor("m", spec(kind))) for kind in SPECS}


@pytest.mark.parametrize("kind", list(SPECS))
def test_the_stream_exercises_every_detector(kind: str) -> None:
    joined = b"".join(EXPECTED[kind])
    for fragment in (
        b'"rule":"detector.adwin"',
        b'"rule":"detector.hddm_a"',
        b'"non_finite_rate":0.0',
        b'"type_mismatch_rate":0.0',
        b'"revision":1',
        b'"model_version":"v2"',
    ):
        assert fragment in joined, fragment
    assert b'"non_finite_rate":0.0,' in joined
    assert b'"non_finite_rate":0.01' in joined


def test_detector_alerts_name_the_version_of_their_event() -> None:
    # v2 and v3 alternate inside runs: an alert carries the version of the event it is about
    versions = {
        fragment
        for kind in SPECS
        for output in EXPECTED[kind]
        if b'"rule":"detector.' in output
        for fragment in (b'"model_version":"v2"', b'"model_version":"v3"')
        if fragment in output
    }
    assert versions == {b'"model_version":"v2"', b'"model_version":"v3"'}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(list(SPECS)),
    st.lists(st.integers(1, 400), min_size=1, max_size=40),
)
def test_any_batching_gives_the_event_by_event_output(kind: str, sizes: list[int]) -> None:
    # the same label calls after the same events: only the batching differs
    assert run(ModelMonitor("m", spec(kind)), sizes) == EXPECTED[kind]


def test_a_monitor_set_batch_gives_each_model_its_event_by_event_output() -> None:
    models = ("a", "b", "c")
    events = [
        e.model_copy(update={"model_id": models[i % 3], "event_id": f"{models[i % 3]}{i}"})
        for i, e in enumerate(EVENTS)
    ]
    alone = MonitorSet({}, spec("count"))
    expected: dict[str, list[bytes]] = {m: [] for m in models}
    for event in events:
        expected[event.model_id] += [encode_event(o) for o in alone.update(event)]
    together = MonitorSet({}, spec("count"))
    got: dict[str, list[bytes]] = {m: [] for m in models}
    for start in range(0, len(events), 500):
        for output in together.update_batch(events[start : start + 500]):
            got[output.model_id].append(encode_event(output))
    assert got == expected
    assert all(got[m] for m in models)
