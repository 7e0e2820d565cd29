"""One batch of records: decoded, fed to the monitors, failures kept with their positions."""

from __future__ import annotations

import orjson

from stream_monitor.config.models import ModelSpec
from stream_monitor.events import EventCodec
from stream_monitor.monitor import MonitorSet
from stream_monitor.runtime.outputs import process_batch

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
    [revised] = [o for o in done.outputs if getattr(o, "revision", 0) == 1]
    assert revised.window_index == 0
    assert revised.label_coverage == 5 / 20
