"""Snapshots: a monitor restored mid-stream gives byte-identical output; bad snapshots refused."""

from __future__ import annotations

import hashlib
import pickle
import random
from typing import Any

import cramjam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.config.models import ModelSpec
from stream_monitor.events import LabelEvent, PredictionEvent, encode_event
from stream_monitor.monitor import ModelMonitor, MonitorSet
from stream_monitor.monitor.snapshot import (
    MAGIC,
    SNAPSHOT_VERSION,
    SnapshotError,
    dump_state,
    load_state,
)

from .streams import stream

SPEC = ModelSpec.model_validate(
    {
        "warmup_events": 300,
        "window": {"kind": "tumbling", "size": 60, "allowed_lateness": 5},
        "performance": {"reference_labels": 100, "min_labels": 50, "detectors": ["hddm_a"]},
    }
)
KEY = b"snapshot-signing-key"


def mixed_stream() -> list[PredictionEvent | LabelEvent]:
    """Two models, drift half way, labels arriving late and out of order, a late event."""
    rng = random.Random(9)
    items: list[PredictionEvent | LabelEvent] = []
    waiting: list[PredictionEvent] = []
    events = list(stream(2_400, step_ms=250, shift=lambda i: 1.0 if i > 1_200 else 0.0))
    for i, original in enumerate(events):
        model = "a" if i % 3 else "b"
        event = original.model_copy(
            update={
                "model_id": model,
                "event_id": f"{model}{i}",
                "timestamp": original.timestamp - (80_000 if i == 900 else 0),  # one late event
            }
        )
        items.append(event)
        waiting.append(event)
        if i % 7 == 0 and waiting:
            for _ in range(min(len(waiting), 6)):
                old = waiting.pop(rng.randrange(len(waiting)))
                items.append(
                    LabelEvent(
                        event_id=old.event_id,
                        model_id=old.model_id,
                        timestamp=event.timestamp,
                        label=int(rng.random() < 0.7),
                    )
                )
    return items


ITEMS = mixed_stream()


def feed(monitors: MonitorSet, items: list[Any]) -> list[bytes]:
    out = []
    for item in items:
        if isinstance(item, LabelEvent):
            outputs = monitors.update_label(item)
        else:
            outputs = monitors.update(item)
        out += [encode_event(o) for o in outputs]
    return out


def fresh() -> MonitorSet:
    return MonitorSet({}, SPEC, "monitor")


UNINTERRUPTED = feed(fresh(), ITEMS)


def test_the_stream_exercises_everything() -> None:
    joined = b"".join(UNINTERRUPTED)
    for fragment in (
        b'"status":"firing"',
        b'"revision":1',
        b'"late_events":1',
        b'"performance":{"accuracy"',
    ):
        assert fragment in joined


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, len(ITEMS) - 1), min_size=1, max_size=3, unique=True), st.booleans())
def test_restored_at_any_cut_points_gives_identical_output(cuts: list[int], signed: bool) -> None:
    key = KEY if signed else None
    output: list[bytes] = []
    monitors = fresh()
    start = 0
    for cut in sorted(cuts):
        output += feed(monitors, ITEMS[start:cut])
        data = monitors.snapshot(key)
        monitors = fresh()  # a new process: nothing carried over but the bytes
        monitors.restore(data, key)
        start = cut
    output += feed(monitors, ITEMS[start:])
    assert output == UNINTERRUPTED


def test_model_monitor_snapshot_round_trip() -> None:
    first = ModelMonitor("m", SPEC)
    events = list(stream(700, step_ms=250))
    before = [encode_event(o) for e in events[:400] for o in first.update(e)]
    second = ModelMonitor("m", SPEC)
    second.restore(first.snapshot())
    rest = [encode_event(o) for e in events[400:] for o in second.update(e)]
    reference = ModelMonitor("m", SPEC)
    assert before + rest == [encode_event(o) for e in events for o in reference.update(e)]


def make_snapshot() -> bytes:
    monitor = ModelMonitor("m", SPEC)
    for event in stream(50):
        monitor.update(event)
    return monitor.snapshot(KEY)


@pytest.mark.parametrize(
    ("mutate", "key", "message"),
    [
        (lambda d: b"NOTSNAP" + d[7:], KEY, "not a stream-monitor snapshot"),
        (lambda d: d[:20], KEY, "not a stream-monitor snapshot"),
        (lambda d: d[:6] + bytes([99]) + d[7:], KEY, "format version 99 is not supported"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), KEY, "signature does not match"),
        (lambda d: d, b"another key", "signature does not match"),
        (lambda d: d, None, "signed but no state.signing_key is configured"),
    ],
)
def test_bad_snapshots_are_refused(mutate: Any, key: bytes | None, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        ModelMonitor("m", SPEC).restore(mutate(make_snapshot()), key)


def test_unsigned_snapshot_corruption_and_policy() -> None:
    monitor = ModelMonitor("m", SPEC)
    data = monitor.snapshot()
    corrupted = data[:-3] + b"xyz"
    with pytest.raises(SnapshotError, match="is corrupted"):
        ModelMonitor("m", SPEC).restore(corrupted)
    with pytest.raises(SnapshotError, match=r"not signed but state\.signing_key is configured"):
        ModelMonitor("m", SPEC).restore(data, KEY)


def test_foreign_classes_are_never_unpickled() -> None:
    class Boom:
        def __reduce__(self) -> tuple[Any, ...]:
            import os

            return (os.system, ("echo pwned",))

    payload = bytes(cramjam.zstd.compress(pickle.dumps(Boom())))
    header = MAGIC + bytes([SNAPSHOT_VERSION, 0])
    data = header + hashlib.sha256(header + payload).digest() + payload
    with pytest.raises(SnapshotError, match=r"refers to posix\.system, which is not allowed"):
        load_state(data)
    garbage = bytes(cramjam.zstd.compress(b"not a pickle"))
    data = header + hashlib.sha256(header + garbage).digest() + garbage
    with pytest.raises(SnapshotError, match="cannot be decoded"):
        load_state(data)


def test_snapshot_of_another_model_or_spec_is_refused() -> None:
    data = ModelMonitor("m", SPEC).snapshot()
    with pytest.raises(SnapshotError, match=r"snapshot is of model 'm', not 'other'"):
        ModelMonitor("other", SPEC).restore(data)
    changed = SPEC.model_copy(update={"warmup_events": 301})
    with pytest.raises(SnapshotError, match="configuration changed since the snapshot"):
        ModelMonitor("m", changed).restore(data)
    with pytest.raises(SnapshotError, match="does not hold a set state"):
        fresh().restore(data)
    with pytest.raises(SnapshotError, match="does not hold a model state"):
        ModelMonitor("m", SPEC).restore(dump_state(("set", "", {})))


def test_a_snapshot_of_the_previous_format_is_refused_saying_start_fresh() -> None:
    """Version 1 held river's ADWIN and Python detectors, version 2 ADWIN buckets' variances and
    64-bit score histograms, version 3 no joint moments, versions 5 and 6 the monitor's parts
    under their former modules; the partition starts fresh."""
    current = dump_state({"x": 1})
    assert current[len(MAGIC)] == SNAPSHOT_VERSION == 7  # written as zstd
    for version in (1, 2, 3, 5, 6):
        previous = current[:6] + bytes([version]) + current[7:]
        with pytest.raises(SnapshotError, match=rf"version {version} is not supported.*rebuild"):
            load_state(previous)
