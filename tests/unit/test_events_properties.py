"""Property tests: round trips, and garbage never raises anything but our validation error."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_monitor.errors import EventValidationError
from stream_monitor.events import (
    AlertEvent,
    EventCodec,
    LabelEvent,
    PredictionEvent,
    WindowSummary,
    encode_event,
)

CODEC = EventCodec()
ids = st.text(min_size=1, max_size=40)
millis = st.integers(min_value=100_000_000_000, max_value=9_999_999_999_999)
finite = st.floats(allow_nan=False, allow_infinity=False)
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), finite, st.text(max_size=30)
)
label_values = st.one_of(st.booleans(), st.integers(-(2**53), 2**53), finite, st.text(max_size=20))

predictions = st.builds(
    PredictionEvent,
    event_id=ids,
    model_id=ids,
    model_version=st.none() | ids,
    timestamp=millis,
    features=st.dictionaries(st.text(max_size=20), scalar, max_size=15),
    prediction=label_values,
    score=st.none() | finite,
    label=st.none() | label_values,
    latency_ms=st.none() | st.floats(min_value=0, max_value=1e9),
    metadata=st.none() | st.dictionaries(st.text(max_size=10), scalar, max_size=3),
)
labels = st.builds(LabelEvent, event_id=ids, model_id=ids, timestamp=millis, label=label_values)
stat = st.none() | finite
alerts = st.builds(
    AlertEvent,
    alert_id=ids,
    dedup_key=ids,
    status=st.sampled_from(["firing", "resolved"]),
    severity=st.sampled_from(["info", "warning", "critical"]),
    model_id=ids,
    kind=st.sampled_from(["drift", "performance", "data_quality"]),
    rule=ids,
    feature=st.none() | ids,
    statistic=ids,
    value=stat,
    threshold=stat,
    window_start=millis,
    window_end=millis,
    sample_size=st.integers(0, 10**9),
    starts_at=millis,
    ends_at=st.none() | millis,
    summary=st.text(max_size=50),
    evidence=st.dictionaries(st.text(max_size=10), scalar, max_size=4),
    labels=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
)
summaries = st.builds(
    WindowSummary,
    model_id=ids,
    window_kind=st.sampled_from(["count", "tumbling", "hopping"]),
    window_index=st.integers(0, 10**6),
    window_start=millis,
    window_end=millis,
    sample_size=st.integers(0, 10**6),
    drift=st.dictionaries(ids, st.dictionaries(ids, stat, max_size=3), max_size=3),
    performance=st.dictionaries(ids, stat, max_size=3),
)


@given(predictions)
def test_prediction_round_trip(event: PredictionEvent) -> None:
    assert CODEC.decode_prediction(encode_event(event)) == event


@given(labels)
def test_label_round_trip(event: LabelEvent) -> None:
    assert CODEC.decode_label(encode_event(event)) == event


@given(alerts)
def test_alert_round_trip(event: AlertEvent) -> None:
    assert AlertEvent.model_validate_json(encode_event(event)) == event


@given(summaries)
def test_summary_round_trip(event: WindowSummary) -> None:
    assert WindowSummary.model_validate_json(encode_event(event)) == event


def failure_of(decode: Callable[[bytes], object], data: bytes) -> EventValidationError | None:
    """The validation error decoding raised, or None; any other exception fails the test."""
    try:
        decode(data)
    except EventValidationError as exc:
        return exc
    return None


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_garbage_bytes_raise_only_validation_errors(data: bytes) -> None:
    for decode in (CODEC.decode_prediction, CODEC.decode_label):
        error = failure_of(decode, data)
        assert error is None or (error.field and error.reason)


json_values = st.recursive(
    scalar | st.floats(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "event_id",
        "model_id",
        "timestamp",
        "features",
        "prediction",
        "score",
        "scores",
        "label",
        "latency_ms",
        "metadata",
        "schema_version",
        "model_version",
        "other",
    ]
)


@settings(max_examples=300)
@given(st.dictionaries(keys, json_values, max_size=10))
def test_garbage_objects_raise_only_validation_errors(obj: dict[str, object]) -> None:
    data = orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS) if obj else b"{}"
    for decode in (CODEC.decode_prediction, CODEC.decode_label):
        error = failure_of(decode, data)
        assert error is None or error.field
