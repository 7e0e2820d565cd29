"""One batch of records: decoded, fed to the monitors, failures kept with their positions."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import orjson
import pytest

from stream_monitor.config.models import ModelSpec
from stream_monitor.errors import BatchFailedError
from stream_monitor.events import EventCodec, encode_event
from stream_monitor.monitor import MonitorSet
from stream_monitor.runtime.outputs import dead_letter_headers, process_batch, process_records
from stream_monitor.runtime.processing import _advance

T0 = 1_795_800_000_000
CODEC = EventCodec()


def prediction(i: int, model: str = "fraud", **extra: object) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{i}",
            "model_id": model,
            "timestamp": T0 + i,
            "features": {"x": float(i % 7)},
            "prediction": i % 2,
            **extra,
        }
    )


def test_invalid_events_and_unknown_models_are_refused_in_place() -> None:
    monitors = MonitorSet({"fraud": ModelSpec(warmup_events=10)}, ModelSpec(), "reject")
    values = [prediction(0), b"{", prediction(1, "ghost"), prediction(2, score="high"), None]
    values += [prediction(i) for i in range(3, 30)]
    done = process_batch(CODEC, monitors, values, labels=False)
    assert [(i, e.field) for i, e in done.rejected] == [
        (1, "<event>"),
        (2, "model_id"),
        (3, "score"),
        (4, "<event>"),
    ]
    assert dict(done.models) == {"fraud": 28}
    assert list(monitors.monitors) == ["fraud"]
    assert monitors.monitors["fraud"].events == 28


def test_labels_are_joined_and_revise_closed_windows() -> None:
    spec = ModelSpec.model_validate(
        {"warmup_events": 10, "window": {"kind": "count", "events": 20}}
    )
    monitors = MonitorSet({}, spec)
    first = process_batch(CODEC, monitors, [prediction(i) for i in range(40)], labels=False)
    assert [o.window_index for o in first.outputs if hasattr(o, "window_index")] == [0, 1]
    labels = [
        orjson.dumps({"event_id": f"e{i}", "model_id": "fraud", "timestamp": T0 + 50, "label": 1})
        for i in range(5)
    ]
    done = process_batch(CODEC, monitors, [*labels, b'{"label": 1}'], labels=True)
    assert [(i, e.field) for i, e in done.rejected] == [(5, "event_id")]
    assert dict(done.models) == {"fraud": 5}
    assert not [o for o in done.outputs if hasattr(o, "revision")]
    # The revised window is published before the model's next prediction is counted.
    after = process_batch(CODEC, monitors, [prediction(40)], labels=False)
    [revised] = [o for o in after.outputs if getattr(o, "revision", 0) == 1]
    assert revised.window_index == 0
    assert revised.label_coverage == 5 / 20


def test_merged_predictions_and_labels_run_in_order_with_positions_kept() -> None:
    """One call over a partition's merged records: each run in its place, so a label finds the
    prediction before it, and refusals keep their positions in the merged sequence."""
    spec = ModelSpec.model_validate(
        {"warmup_events": 10, "window": {"kind": "count", "events": 20}}
    )

    def label(i: int) -> bytes:
        return orjson.dumps(
            {"event_id": f"e{i}", "model_id": "fraud", "timestamp": T0 + 50, "label": 1}
        )

    values = [prediction(i) for i in range(5)]
    values += [label(0), label(1), b"{"]
    values += [prediction(i) for i in range(5, 10)]
    values += [label(7), prediction(10, score="high")]
    kinds = [False] * 5 + [True] * 3 + [False] * 5 + [True, False]
    merged = MonitorSet({}, spec)
    done = process_records(CODEC, merged, values, kinds)
    assert [(i, e.field) for i, e in done.rejected] == [(7, "<event>"), (14, "score")]
    assert dict(done.models) == {"fraud": 10}
    assert dict(done.labels) == {"fraud": 3}
    # The same as the runs one by one.
    runs = MonitorSet({}, spec)
    for start, stop, labels in ((0, 5, False), (5, 8, True), (8, 13, False), (13, 14, True)):
        process_batch(CODEC, runs, values[start:stop], labels=labels)
    process_batch(CODEC, runs, values[14:], labels=False)
    assert merged.snapshot() == runs.snapshot()
    join = merged.monitors["fraud"].outcomes.join
    assert not join.labels()  # every label found the prediction before it
    assert join.counts["matched"] == 3


def test_a_batch_of_one_topic_is_one_run_counted_as_that_topic() -> None:
    spec = ModelSpec.model_validate({"warmup_events": 10})
    monitors = MonitorSet({}, spec)
    done = process_records(CODEC, monitors, [prediction(i) for i in range(4)], [False] * 4)
    assert (dict(done.models), dict(done.labels)) == ({"fraud": 4}, {})
    labels = [
        orjson.dumps({"event_id": f"e{i}", "model_id": "fraud", "timestamp": T0 + 9, "label": 0})
        for i in range(3)
    ]
    done = process_records(CODEC, monitors, [*labels, b"{"], [True] * 4)
    assert (dict(done.models), dict(done.labels)) == ({}, {"fraud": 3})
    assert [(i, e.field) for i, e in done.rejected] == [(3, "<event>")]
    assert monitors.monitors["fraud"].outcomes.join.counts["matched"] == 3


def test_a_batch_moves_each_topics_offset_past_its_last_record() -> None:
    def at(topic: str, offset: int) -> SimpleNamespace:
        return SimpleNamespace(topic=topic, offset=offset)

    offsets: dict[str, int] = {}
    _advance(offsets, [at("p", 3), at("p", 4), at("p", 9)], mixed=False)
    assert offsets == {"p": 10}
    _advance(offsets, [at("p", 10), at("l", 7), at("p", 11), at("l", 8)], mixed=True)
    assert offsets == {"p": 12, "l": 9}
    _advance(offsets, [at("l", 9), at("p", 12), at("l", 10)], mixed=True)
    assert offsets == {"p": 13, "l": 11}
    _advance(offsets, [at("l", 11)], mixed=False)
    assert offsets == {"p": 13, "l": 12}


def _summaries(values: list[bytes]) -> list[dict[str, object]]:
    monitors = MonitorSet({}, ModelSpec(warmup_events=20, window={"events": 25}), "monitor")
    outputs = process_batch(CODEC, monitors, values, labels=False).outputs
    outputs += monitors.flush()
    return [orjson.loads(encode_event(o)) for o in outputs]


def test_events_the_schema_converts_count_as_their_canonical_form() -> None:
    """ISO timestamps, fractional timestamps, NaN features and huge integers are deferred by the
    native decoder; the schema converts them and the core counts them in place."""
    plain = [prediction(i) for i in range(60)]
    iso = datetime.fromtimestamp((T0 + 3) / 1000, tz=UTC).isoformat(timespec="milliseconds")
    odd = list(plain)
    odd[3] = prediction(3, timestamp=iso)
    odd[7] = prediction(7, timestamp=T0 + 7 + 0.25)  # truncated to the millisecond
    assert _summaries(odd) == _summaries(plain)

    nan = list(plain)
    nan[40] = prediction(40).replace(b'"x":5.0', b'"x":NaN')
    big = list(plain)
    big[41] = prediction(41).replace(b'"x":6.0', b'"x":' + b"9" * 30)
    none = list(plain)
    none[40] = prediction(40).replace(b'"x":5.0', b'"x":null')
    with_nan, with_none = _summaries(nan), _summaries(none)
    quality = [s["quality"] for s in with_nan if s.get("quality")]
    assert any(q["x"]["non_finite_rate"] > 0 for q in quality)  # NaN is non-finite, not missing
    assert [s.get("drift") for s in with_nan] == [s.get("drift") for s in with_none]
    assert len(_summaries(big)) == len(_summaries(plain))


def test_a_model_core_saved_by_another_version_is_refused() -> None:
    monitors = MonitorSet({}, ModelSpec(warmup_events=10), "monitor")
    process_batch(CODEC, monitors, [prediction(i) for i in range(30)], labels=False)
    core = monitors.monitors["fraud"].core
    function, (state,) = core.__reduce__()
    assert function(state).events == 30  # the same state, read back
    with pytest.raises(ValueError, match=r"version 9 is not supported.*starts fresh"):
        function(bytes([9]) + state[1:])
    with pytest.raises(ValueError, match=r"truncated.*starts fresh"):
        function(state[: len(state) // 2])
    with pytest.raises(ValueError, match="trailing bytes"):
        function(state + b"\0")


def test_what_the_monitor_raises_becomes_a_batch_failure_naming_its_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monitors = MonitorSet({}, ModelSpec(warmup_events=10))

    def broken(*_: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(monitors, "update_native", broken)
    with pytest.raises(BatchFailedError) as failed:
        process_batch(CODEC, monitors, [prediction(0)], labels=False)
    assert failed.value.index is None  # somewhere in the batch
    failure = failed.value.failure
    assert failure.field == "<monitor>"
    assert "KeyError" in failure.reason
    assert "report it" in failure.reason
    headers = dict(dead_letter_headers(None, "t", 0, 7, failure))
    assert headers["error.class"] == b"KeyError"  # the bug's class, not the wrapper's
    assert headers["source.offset"] == b"7"
    monkeypatch.setattr(monitors, "update_label", broken)
    label = orjson.dumps({"event_id": "e0", "model_id": "m", "timestamp": T0, "label": 1})
    with pytest.raises(BatchFailedError) as failed:
        process_batch(CODEC, monitors, [b"{", label], labels=True)
    assert failed.value.index == 1  # the label that failed
