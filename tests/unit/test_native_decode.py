"""The native decoder accepts only what the schema accepts, and reads it the same way.

Whatever the bytes, an event the native decoder accepts must be accepted by the pydantic schema
(``EventCodec.decode_prediction``) with the same values and types; anything else it defers to
the schema. Generated events, generated near-events and mutated bytes are checked.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor._native import decode_predictions
from stream_monitor.config.settings import LimitsSettings
from stream_monitor.errors import EventValidationError
from stream_monitor.events import EventCodec, PredictionEvent, encode_event

from .test_events_properties import predictions

FIELDS = tuple(name for name in PredictionEvent.model_fields if name not in ("metadata",))
T0 = 1_795_800_000_000


def typed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def schema_fields(event: PredictionEvent) -> dict[str, Any]:
    out = {name: typed(getattr(event, name)) for name in FIELDS if name != "schema_version"}
    return out | {"non_finite_features": list(event.non_finite_features)}


def native_fields(decoded: dict[str, Any]) -> dict[str, Any]:
    return {
        name: typed(value) if name != "non_finite_features" else value
        for name, value in decoded.items()
    }


def agree(data: bytes, limits: LimitsSettings | None = None) -> bool:
    """Assert the native decision is safe; True when the native decoder accepted the event."""
    limits = limits or LimitsSettings()
    [native] = decode_predictions(
        [data],
        limits.max_event_bytes,
        limits.max_features,
        limits.max_string_length,
        limits.non_finite_features == "reject",
    )
    if native is None:
        return False
    try:
        event = EventCodec(limits).decode_prediction(data)
    except EventValidationError as exc:  # pragma: no cover - shown when the property fails
        pytest.fail(f"native accepted what the schema refuses ({exc}): {data!r}")
    assert native_fields(native) == schema_fields(event), data
    return True


@settings(max_examples=400, deadline=None)
@given(predictions)
def test_every_valid_event_is_decoded_natively_as_the_schema_reads_it(
    event: PredictionEvent,
) -> None:
    assert agree(encode_event(event))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["1.5", "2026-11-27T17:00:00Z", "", "NaN"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
keys = st.sampled_from(
    [
        "event_id",
        "model_id",
        "model_version",
        "timestamp",
        "features",
        "prediction",
        "score",
        "scores",
        "label",
        "latency_ms",
        "metadata",
        "schema_version",
        "extra",
    ]
)
good = {
    "event_id": st.text(max_size=300),
    "model_id": st.text(min_size=1, max_size=10),
    "model_version": st.none() | st.text(max_size=5),
    "timestamp": st.integers(0, 2 * 10**13) | st.floats(1e11, 1e13) | st.just(T0),
    "features": st.dictionaries(st.text(max_size=6), json_values, max_size=6),
    "prediction": json_values,
    "score": st.none() | st.floats() | st.integers(-3, 3) | st.booleans(),
    "scores": st.none() | st.dictionaries(st.text(max_size=3), json_values, max_size=3),
    "label": json_values,
    "latency_ms": st.none() | st.floats() | st.integers(-2, 2),
    "metadata": st.none() | st.dictionaries(st.text(max_size=3), json_values, max_size=3),
    "schema_version": st.sampled_from([1, 2, 1.0, True, "1", None]),
    "extra": json_values,
}


@st.composite
def near_events(draw: st.DrawFn) -> bytes:
    chosen = draw(st.sets(keys, min_size=3, max_size=13))
    base = {"event_id": "e", "model_id": "m", "timestamp": T0, "features": {}, "prediction": 1}
    for key in chosen:
        base[key] = draw(good[key])
    for key in draw(st.sets(st.sampled_from(sorted(base)), max_size=2)):
        del base[key]
    # json.dumps writes NaN and Infinity, as Python producers do
    text = json.dumps(base, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=1_500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_events())
def test_near_events_are_accepted_only_when_the_schema_accepts_them(data: bytes) -> None:
    agree(data)


@settings(max_examples=1_500, deadline=None)
@given(predictions, st.data())
def test_mutated_bytes_are_accepted_only_when_the_schema_accepts_them(
    event: PredictionEvent, data: st.DataObject
) -> None:
    raw = bytearray(encode_event(event))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "dup", "insert"]))
        byte = data.draw(st.sampled_from(b'{}[]",:0123456789.eE-+ntfuNI\\\x00\xff a'))
        if action == "flip":
            raw[at] = byte
        elif action == "drop":
            del raw[at]
        elif action == "dup":
            raw[at:at] = raw[at : at + data.draw(st.integers(1, 8))]
        else:
            raw.insert(at, byte)
    agree(bytes(raw))


@pytest.mark.parametrize(
    ("limits", "accepted"),
    [
        ({}, True),
        ({"max_features": 2}, False),
        ({"max_string_length": 8}, False),
        ({"max_event_bytes": 256}, True),
        ({"non_finite_features": "reject"}, False),
    ],
)
def test_limits_decide_alike(limits: dict[str, Any], accepted: bool) -> None:
    data = (
        b'{"event_id":"e-1","model_id":"m","timestamp":%d,'
        b'"features":{"a":1,"b":NaN,"c":"nine chars"},"prediction":1}' % T0
    )
    assert agree(data, LimitsSettings(**limits)) is accepted


def test_non_bytes_records_are_deferred() -> None:
    assert decode_predictions([None, "text", b""]) == [None, None, None]  # type: ignore[list-item]
    assert decode_predictions([orjson.dumps({"event_id": "e"})]) == [None]
