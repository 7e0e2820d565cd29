"""The msgspec fast path decodes exactly what the pydantic path does, or leaves it to it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from stream_monitor.config.settings import LimitsSettings
from stream_monitor.errors import EventValidationError
from stream_monitor.events import EventCodec, PredictionEvent, encode_event
from stream_monitor.events.fast import Prediction

from .test_events_properties import predictions

CODEC = EventCodec()
FIELDS = tuple(PredictionEvent.model_fields)
T0 = 1_795_800_000_000


def fields(event: Any) -> dict[str, Any]:
    values = {name: getattr(event, name) for name in FIELDS}
    # compare types too: 1, 1.0 and True are equal in Python but not to the monitors
    return {
        name: (type(v).__name__, v)
        if not isinstance(v, dict)
        else {k: (type(x).__name__, x) for k, x in v.items()}
        for name, v in values.items()
    } | {"non_finite_features": event.non_finite_features}


@settings(max_examples=300, deadline=None)
@given(predictions)
def test_fast_path_equals_the_schema_on_valid_events(event: PredictionEvent) -> None:
    data = encode_event(event)
    [fast] = CODEC.decode_predictions([data])
    assert fields(fast) == fields(CODEC.decode_prediction(data))


def raw(**changes: Any) -> bytes:
    event: dict[str, Any] = {
        "event_id": "e-1",
        "model_id": "fraud",
        "timestamp": T0,
        "features": {"amount": 12.5, "country": "FR", "new": True, "n": 3, "gone": None},
        "prediction": 1,
        "score": 0.8,
    }
    event.update(changes)
    return orjson.dumps({k: v for k, v in event.items() if v is not ...})


def test_plain_events_take_the_fast_path() -> None:
    [event] = CODEC.decode_predictions([raw(label=1, latency_ms=3, metadata={"h": "a"})])
    assert isinstance(event, Prediction)
    assert event.features == {"amount": 12.5, "country": "FR", "new": True, "n": 3, "gone": None}
    assert (event.score, event.latency_ms) == (0.8, 3.0)
    assert type(event.latency_ms) is float


@pytest.mark.parametrize(
    "data",
    [
        raw(timestamp="2026-11-27T17:00:00Z"),  # ISO-8601: converted by the schema
        raw(timestamp=float(T0) + 0.5),
        b'{"event_id":"e","model_id":"m","timestamp":%d,"features":{"x":NaN},"prediction":1}' % T0,
    ],
)
def test_what_needs_more_than_a_type_check_goes_through_the_schema(data: bytes) -> None:
    [event] = CODEC.decode_predictions([data])
    assert isinstance(event, PredictionEvent)
    assert event == CODEC.decode_prediction(data)


@pytest.mark.parametrize(
    ("data", "limits", "field"),
    [
        (raw(score=0.5, scores={"a": 0.5}), None, "<event>"),
        (raw(extra=1), None, "extra"),
        (raw(event_id=""), None, "event_id"),
        (raw(timestamp=1_700_000_000), None, "timestamp"),
        (raw(latency_ms=-1), None, "latency_ms"),
        (raw(prediction=...), None, "prediction"),
        (raw(features={"x": [1, 2]}), None, "features.x"),
        (raw(schema_version=2), None, "schema_version"),
        (raw(features={f"f{i}": i for i in range(5)}), {"max_features": 4}, "features"),
        (raw(model_id="m" * 200), {"max_string_length": 100}, "model_id"),
        (raw(features={"x": "v" * 200}), {"max_string_length": 100}, "features.x"),
        (raw(features={"k" * 200: 1}), {"max_string_length": 100}, "features"),
        (raw(label="y" * 200), {"max_string_length": 100}, "label"),
        (b"x" * 300, {"max_event_bytes": 256}, "<event>"),
        (b"[1]", None, "<event>"),
        (b"\xff\xfe", None, "<event>"),
        (None, None, "<event>"),
    ],
)
def test_refused_events_get_the_schema_error(
    data: bytes | None, limits: dict[str, int] | None, field: str
) -> None:
    codec = EventCodec(LimitsSettings(**limits) if limits else None)
    [result] = codec.decode_predictions([data])
    assert isinstance(result, EventValidationError)
    assert result.field == field
    with pytest.raises(EventValidationError) as slow:
        codec.decode_prediction(data)
    assert str(result) == str(slow.value)


def test_a_bad_event_costs_its_neighbours_nothing() -> None:
    results = CODEC.decode_predictions([raw(), b"{", raw(event_id="e-2")])
    assert [type(r).__name__ for r in results] == [
        "Prediction",
        "EventValidationError",
        "Prediction",
    ]
