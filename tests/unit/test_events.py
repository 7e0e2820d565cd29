"""Event schemas and the codec: canonical forms, limits, and clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream_monitor.config.settings import LimitsSettings
from stream_monitor.errors import EventValidationError
from stream_monitor.events import (
    AlertEvent,
    EventCodec,
    LabelEvent,
    PredictionEvent,
    WindowSummary,
    alert_id_for,
    dedup_key_for,
    encode_event,
)

T0 = 1_795_800_000_000  # 2026-11-27T17:20:00Z


def prediction(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "e-1",
        "model_id": "fraud",
        "timestamp": T0,
        "features": {"amount": 12.5, "country": "DE", "new_customer": True, "age": None},
        "prediction": 1,
        "score": 0.83,
    }
    event.update(overrides)
    return event


def decode(event: dict[str, Any] | bytes, codec: EventCodec | None = None) -> PredictionEvent:
    data = event if isinstance(event, bytes) else orjson.dumps(event)
    return (codec or EventCodec()).decode_prediction(data)


def error_of(
    event: dict[str, Any] | bytes, codec: EventCodec | None = None
) -> EventValidationError:
    with pytest.raises(EventValidationError) as info:
        decode(event, codec)
    return info.value


def test_valid_prediction_keeps_types() -> None:
    event = decode(prediction())
    assert event.features == {"amount": 12.5, "country": "DE", "new_customer": True, "age": None}
    assert event.prediction == 1
    assert type(event.prediction) is int
    assert event.score == 0.83
    assert event.schema_version == 1


@pytest.mark.parametrize(
    "timestamp",
    [
        T0,
        float(T0),
        "2026-11-27T17:20:00Z",
        "2026-11-27T18:20:00+01:00",
        "2026-11-27T17:20:00.000Z",
    ],
)
def test_timestamps_have_one_canonical_form(timestamp: object) -> None:
    assert decode(prediction(timestamp=timestamp)).timestamp == T0


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        (1_795_800_000, "probably seconds; multiply by 1000"),
        ("2026-11-27T17:20:00", "has no time zone; add Z or an offset"),
        ("yesterday", "is not ISO-8601"),
        (True, "must be epoch milliseconds or ISO-8601"),
        (None, "must be epoch milliseconds or ISO-8601"),
        ("9999-12-31T00:00:00Z", "is out of range"),
    ],
)
def test_bad_timestamps(timestamp: object, reason: str) -> None:
    error = error_of(prediction(timestamp=timestamp))
    assert error.field == "timestamp"
    assert reason in error.reason


def test_round_trip_through_the_wire_format() -> None:
    event = decode(prediction(model_version="v3", latency_ms=4.2, metadata={"region": "eu"}))
    again = EventCodec().decode_prediction(encode_event(event))
    assert again == event


def test_label_event() -> None:
    label = EventCodec().decode_label(
        orjson.dumps({"event_id": "e-1", "model_id": "fraud", "timestamp": T0, "label": 0})
    )
    assert label == LabelEvent(event_id="e-1", model_id="fraud", timestamp=T0, label=0)
    with pytest.raises(EventValidationError, match="label: is required"):
        EventCodec().decode_label(orjson.dumps({"event_id": "e", "model_id": "m", "timestamp": T0}))


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (b"", "<event>", "is empty"),
        (b"[1, 2]", "<event>", "must be a JSON object"),
        (b"\xff\xfe{}", "<event>", "is not valid UTF-8"),
        (b'{"event_id": ', "<event>", "is not valid JSON"),
        (b'{"a": NaN', "<event>", "is not valid JSON"),
    ],
)
def test_undecodable_bytes(data: bytes, field: str, reason: str) -> None:
    error = error_of(data)
    assert (error.field, reason in error.reason) == (field, True)


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"model_id": None}, "model_id", "is invalid: input should be a valid string"),
        ({"event_id": ""}, "event_id", "should have at least 1 character"),
        ({"features": [1, 2]}, "features", "should be a valid dictionary"),
        ({"features": {"x": [1]}}, "features.x", "is invalid"),
        ({"score": "high"}, "score", "should be a valid number"),
        ({"latency_ms": -1}, "latency_ms", "greater than or equal to 0"),
        ({"scores": {"a": 0.1}}, "<event>", "either score (binary) or scores"),
        ({"feature": {}}, "feature", "is not a field of this event"),
        ({"schema_version": 2}, "schema_version", "should be 1"),
    ],
)
def test_invalid_fields_are_named(overrides: dict[str, Any], field: str, reason: str) -> None:
    error = error_of(prediction(**overrides))
    assert error.field == field
    assert reason in error.reason


def test_missing_field() -> None:
    event = prediction()
    del event["prediction"]
    error = error_of(event)
    assert (error.field, error.reason) == ("prediction", "is required")
    assert str(error) == "prediction: is required"


def test_event_size_limit() -> None:
    codec = EventCodec(LimitsSettings(max_event_bytes=300))
    big = prediction(features={f"f{i}": i for i in range(50)})
    error = error_of(big, codec)
    assert error.field == "<event>"
    assert "exceeds limits.max_event_bytes (300)" in error.reason
    assert error.value.endswith("bytes")


def test_feature_count_limit() -> None:
    codec = EventCodec(LimitsSettings(max_features=3))
    error = error_of(prediction(), codec)
    assert (error.field, error.value) == ("features", "4 features")
    assert decode(prediction(features={"a": 1, "b": 2, "c": 3}), codec).features["c"] == 3


def test_string_length_limits() -> None:
    codec = EventCodec(LimitsSettings(max_string_length=10))
    error = error_of(prediction(model_id="m" * 11), codec)
    assert (error.field, error.value) == ("model_id", "11 characters")
    error = error_of(prediction(features={"country": "x" * 11}), codec)
    assert error.field == "features.country"
    error = error_of(prediction(features={"a_very_long_name": 1}), codec)
    assert error.field == "features"
    assert "name exceeds limits.max_string_length (10)" in error.reason


def test_non_finite_features_become_missing_and_are_recorded() -> None:
    raw = json.dumps(prediction(features={"a": float("nan"), "b": float("inf"), "c": 1.0}))
    event = decode(raw.encode())
    assert event.features == {"a": None, "b": None, "c": 1.0}
    assert event.non_finite_features == ("a", "b")
    assert decode(prediction()).non_finite_features == ()


def test_non_finite_features_rejected_when_configured() -> None:
    codec = EventCodec(LimitsSettings(non_finite_features="reject"))
    raw = json.dumps(prediction(features={"a": float("-inf")}))
    error = error_of(raw.encode(), codec)
    assert (error.field, error.value) == ("features.a", "-inf")
    assert "send null for a missing value" in error.reason


@pytest.mark.parametrize("field", ["score", "latency_ms"])
def test_non_finite_outside_features_always_rejected(field: str) -> None:
    error = error_of(json.dumps(prediction(**{field: float("nan")})).encode())
    assert error.field == field
    assert "finite" in error.reason


def test_dedup_key_is_stable_and_distinguishes_incidents() -> None:
    key = dedup_key_for("fraud", "drift.psi", "amount")
    assert key == dedup_key_for("fraud", "drift.psi", "amount")
    assert (
        len(
            {
                key,
                dedup_key_for("fraud", "drift.psi", "age"),
                dedup_key_for("fraud", "drift.psi"),
                dedup_key_for("churn", "drift.psi", "amount"),
                dedup_key_for("fraud", "drift.psiamount"),
            }
        )
        == 5
    )
    firing = alert_id_for(key, "firing", T0)
    assert firing == alert_id_for(key, "firing", T0)
    assert firing != alert_id_for(key, "resolved", T0)
    assert firing != alert_id_for(key, "firing", T0, sequence=1)


def _json_blocks(markdown: str) -> dict[str, dict[str, Any]]:
    blocks = re.findall(r"<!-- example: (\w+) -->\s*```json\n(.*?)```", markdown, re.S)
    return {name: json.loads(body) for name, body in blocks}


def test_examples_in_docs_events_md_are_valid() -> None:
    text = (Path(__file__).parents[2] / "docs" / "events.md").read_text(encoding="utf-8")
    examples = _json_blocks(text)
    assert set(examples) == {"prediction", "prediction_iso", "label", "alert", "summary"}
    codec = EventCodec()
    codec.decode_prediction(orjson.dumps(examples["prediction"]))
    codec.decode_prediction(orjson.dumps(examples["prediction_iso"]))
    codec.decode_label(orjson.dumps(examples["label"]))
    AlertEvent.model_validate(examples["alert"])
    WindowSummary.model_validate(examples["summary"])
